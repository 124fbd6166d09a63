"""The monitoring mixin: it compiles, the shipped build is current, promtool accepts and tests every alert, every
alert has its annotations and runbook, and SLO thresholds come from one definition."""

import re
import subprocess

import pytest
import yaml

from dashboards.build import MIXIN, SHIPPED, BuildError, build, compile_mixin, render, rule_groups
from dashboards.lint import exposition_names, lint
from tests.helpers import REPO, SHARED_DATA

TESTS = sorted((MIXIN / "tests").glob("*.test.yaml"))
RUNBOOKS = REPO / "docs" / "runbooks"


@pytest.fixture(scope="module")
def compiled():
    return compile_mixin()


def alerts(compiled) -> list[dict]:
    return [r for g in compiled["alerts"]["groups"] for r in g["rules"]]


def test_the_shipped_build_is_current(compiled):
    for name, text in render(compiled).items():
        shipped = SHIPPED / name
        assert shipped.exists() and shipped.read_text() == text, (
            f"{shipped} is out of date: run `headroom dashboards build`"
        )


def test_the_generated_docs_are_current(compiled):
    from dashboards.docs import render_docs

    for name, text in render_docs(compiled).items():
        assert (REPO / "docs" / name).read_text() == text, (
            f"docs/{name} is out of date: run `headroom dashboards build --docs docs`"
        )


def test_promtool_checks_the_rules(tmp_path):
    build(tmp_path)
    run = subprocess.run(
        ["promtool", "check", "rules", str(tmp_path / "prometheus-rules.yaml")],
        check=False,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize("test_file", TESTS, ids=lambda p: p.name)
def test_promtool_unit_tests(test_file):
    run = subprocess.run(["promtool", "test", "rules", str(test_file)], check=False, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_every_alert_has_a_promtool_test_firing_and_not(compiled):
    tested = [t for path in TESTS for t in yaml.safe_load(path.read_text())["tests"]]
    cases = [case for t in tested for case in t.get("alert_rule_test", [])]
    for alert in alerts(compiled):
        name = alert["alert"]
        assert any(c["alertname"] == name and c["exp_alerts"] for c in cases), f"{name}: no test where it fires"
        assert any(c["alertname"] == name and not c["exp_alerts"] for c in cases), (
            f"{name}: no test where it stays quiet"
        )


def test_every_alert_has_severity_annotations_and_a_runbook(compiled):
    for alert in alerts(compiled):
        name = alert["alert"]
        assert alert["labels"]["severity"] in ("critical", "warning", "info"), name
        assert {"summary", "description", "runbook_url"} <= set(alert["annotations"]), name
        assert alert["annotations"]["runbook_url"].endswith(f"/docs/runbooks/{name}.md")
        text = (RUNBOOKS / f"{name}.md").read_text()
        for section in ("## Meaning", "## Impact", "## Diagnosis", "## Mitigation"):
            assert section in text, f"{name}'s runbook has no {section}"


def test_every_runbook_names_an_existing_alert(compiled):
    names = {a["alert"] for a in alerts(compiled)}
    for runbook in RUNBOOKS.glob("*.md"):
        assert runbook.stem in names, f"{runbook.name}: no alert of that name"


def test_every_query_passes_the_lint(compiled):
    known = exposition_names((SHARED_DATA / "reference" / "vllm-0.20.2-metrics.txt").read_text())
    for group in rule_groups(compiled)["groups"]:
        for rule in group["rules"]:
            assert lint(rule["expr"], known) == [], (rule.get("record") or rule.get("alert"), lint(rule["expr"], known))


def test_slos_come_from_the_autoscalers_config(tmp_path):
    config = tmp_path / "autoscaler.yaml"
    config.write_text(
        yaml.safe_dump({"targets": [{"name": "chat", "slo": {"ttft_s": 0.5, "itl_s": 0.025}, "capacity": {"rps": 2}}]})
    )
    from headroom.cli import slo_by_model

    build(tmp_path / "out", slo_by_model(str(config)))
    rules = yaml.safe_load((tmp_path / "out" / "prometheus-rules.yaml").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"] if "record" in r and "ttft_errors" in r["record"]]
    assert any('model_name="chat", le="0.5"' in e for e in exprs)  # chat at its own threshold
    assert any('model_name!~"chat", le="1.0"' in e for e in exprs)  # every other model at the default


def latency_rule(compiled, record: str) -> str:
    return next(r["expr"] for g in compiled["rules"]["groups"] for r in g["rules"] if r.get("record") == record)


def test_latency_slis_prefer_the_gateways_counts_and_fall_back_to_vllm_buckets():
    expr = latency_rule(compile_mixin(), "model_name:headroom_slo_ttft_errors:ratio_rate5m")
    gateway, histogram = expr.split("\nor\n")
    assert 'headroom_gateway_slo_requests_total{job="gateway", slo="ttft", result="missed"}' in gateway
    assert 'vllm:time_to_first_token_seconds_bucket{job="vllm", le="1.0"}' in histogram


def test_a_threshold_between_bucket_edges_is_counted_at_the_gateway_only():
    expr = latency_rule(
        compile_mixin({"slo": {"ttftSeconds": 0.7}}), "model_name:headroom_slo_ttft_errors:ratio_rate5m"
    )
    assert "headroom_gateway_slo_requests_total" in expr and "vllm:" not in expr


def test_a_threshold_between_bucket_edges_is_refused_without_the_gateways_counts():
    with pytest.raises(BuildError, match=re.escape("TTFT SLO of 0.7 s is not a vLLM bucket edge")):
        compile_mixin({"slo": {"ttftSeconds": 0.7}, "gatewaySli": False})


def test_inhibition_rules_load_in_alertmanager_and_name_real_alerts(compiled, tmp_path):
    config = {"route": {"receiver": "log"}, "receivers": [{"name": "log"}], "inhibit_rules": compiled["inhibit_rules"]}
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    run = subprocess.run(["amtool", "check-config", str(path)], check=False, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    names = {a["alert"] for a in alerts(compiled)}
    for rule in compiled["inhibit_rules"]:
        for matcher in rule["source_matchers"] + rule["target_matchers"]:
            if matcher.startswith("alertname"):
                pattern = matcher.split("=", 1)[1].lstrip("~").strip('"')
                assert any(re.fullmatch(pattern, n) for n in names), f"{matcher} matches no alert"


def test_a_jsonnet_user_imports_the_mixin_with_their_own_config(tmp_path):
    import json

    import _jsonnet

    main = tmp_path / "main.jsonnet"
    main.write_text("""local headroom = (import 'dashboards/mixin/mixin.libsonnet') + {
  _config+:: { vllmSelector: 'job="vllm", namespace="llm"', slo+: { ttftSeconds: 0.5 }, runbookUrlBase: 'https://x/' },
};
{ rules: headroom.prometheusRules, alerts: headroom.prometheusAlerts, dashboards: headroom.grafanaDashboards }""")
    out = json.loads(_jsonnet.evaluate_file(str(main), jpathdir=[str(REPO)]))
    ttft = next(
        r["expr"]
        for g in out["rules"]["groups"]
        for r in g["rules"]
        if r.get("record") == "model_name:headroom_slo_ttft_errors:ratio_rate5m"
    )
    assert 'vllm:time_to_first_token_seconds_bucket{job="vllm", namespace="llm", le="0.5"}' in ttft
    assert "tpotSeconds" not in ttft and len(out["dashboards"]) == 5  # the other SLO fields kept their defaults
    assert all(
        a["annotations"]["runbook_url"].startswith("https://x/") for g in out["alerts"]["groups"] for a in g["rules"]
    )
