"""Every dashboard's structure: stable uid, templated datasource, unique ids, no overlapping panels, a unit on every
panel, every variable used, $__rate_interval in every rate, and every series a query names known to exist."""

import asyncio
import re

import pytest
from prometheus_client import generate_latest

from dashboards.build import compile_mixin, rule_groups
from dashboards.lint import exposition_names, lint, metric_names
from tests.helpers import SHARED_DATA


@pytest.fixture(scope="module")
def compiled():
    return compile_mixin()


def exported_headroom_names() -> set[str]:
    """The series Headroom's own exporters expose (the gateway and the autoscaler), with a histogram's parts."""
    from autoscaler.metrics import AutoscalerMetrics
    from exporters.gateway.config import parse_gateway_config
    from exporters.gateway.gateway import Gateway
    from exporters.gateway.metrics import ListenerCollector

    async def exposition() -> str:
        gateway = Gateway(parse_gateway_config({}))  # its client session wants a running loop
        gateway.registry.register(
            ListenerCollector(lambda: {"open": 0, "max_connections": 0, "header_timeout": 0, "malformed": 0})
        )
        text = generate_latest(gateway.registry).decode()
        await gateway.close()
        return text

    names = exposition_names(asyncio.run(exposition()))
    names |= exposition_names(generate_latest(AutoscalerMetrics().registry).decode())
    return names | {f"{n}{s}" for n in names for s in ("_total", "_bucket", "_count", "_sum")}


@pytest.fixture(scope="module")
def known(compiled) -> set[str]:
    vllm = exposition_names((SHARED_DATA / "reference" / "vllm-0.20.2-metrics.txt").read_text())
    design = set(re.findall(r"`(DCGM_FI_[A-Z_]+)`", (SHARED_DATA.parent / "DESIGN.md").read_text()))
    recorded = {r["record"] for g in rule_groups(compiled)["groups"] for r in g["rules"] if "record" in r}
    return vllm | design | {"DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_MEM_CLOCK"} | recorded | exported_headroom_names()


def panels(dashboard):
    return dashboard["panels"]


def queries(dashboard):
    return [t["expr"] for p in panels(dashboard) for t in p["targets"]]


def test_five_dashboards_with_stable_uids(compiled):
    assert set(compiled["dashboards"]) == {
        f"headroom-{n}.json" for n in ("serving", "gpu", "gateway", "autoscaler", "slo-cost")
    }
    for name, dashboard in compiled["dashboards"].items():
        assert dashboard["uid"] == name.removesuffix(".json") and dashboard["schemaVersion"] >= 36


def test_datasource_is_templated_everywhere(compiled):
    for dashboard in compiled["dashboards"].values():
        assert dashboard["templating"]["list"][0]["type"] == "datasource"
        for panel in panels(dashboard):
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            assert all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"]), panel["title"]


def test_unique_ids_no_overlap_and_a_unit_on_every_panel(compiled):
    for dashboard in compiled["dashboards"].values():
        ids = [p["id"] for p in panels(dashboard)]
        assert len(ids) == len(set(ids)), dashboard["title"]
        cells = set()
        for panel in panels(dashboard):
            g = panel["gridPos"]
            assert g["x"] + g["w"] <= 24, panel["title"]
            mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
            assert not cells & mine, f"{dashboard['title']}: {panel['title']} overlaps another panel"
            cells |= mine
            assert panel["fieldConfig"]["defaults"].get("unit"), f"{panel['title']} has no unit"
            assert panel.get("description"), f"{panel['title']} does not say what it shows"


def test_every_variable_is_used_and_links_carry_them(compiled):
    for dashboard in compiled["dashboards"].values():
        text = " ".join(queries(dashboard))
        for variable in dashboard["templating"]["list"][1:]:
            assert f"${variable['name']}" in text, f"{dashboard['title']}: ${variable['name']} is used by no query"
        assert all(link["includeVars"] and link["keepTime"] for link in dashboard["links"])


def test_rates_use_the_rate_interval_and_every_query_passes_the_lint(compiled):
    vllm = exposition_names((SHARED_DATA / "reference" / "vllm-0.20.2-metrics.txt").read_text())
    for dashboard in compiled["dashboards"].values():
        for expr in queries(dashboard):
            windows = re.findall(r"\b(?:rate|increase)\([^\[]*\[([^\]]+)\]", expr)
            assert all(w == "$__rate_interval" for w in windows), expr
            assert lint(expr, vllm) == [], (expr, lint(expr, vllm))


def test_every_series_a_query_names_exists(compiled, known):
    for dashboard in compiled["dashboards"].values():
        for expr in queries(dashboard):
            unknown = metric_names(expr) - known
            assert not unknown, f"{dashboard['title']}: {sorted(unknown)} named by {expr}"
