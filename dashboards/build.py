"""`headroom dashboards build`: the mixin compiled (jsonnet's PyPI binding) into files Prometheus, Grafana and
kube-prometheus-stack take as they are: rules and alerts, a PrometheusRule, dashboards and their sidecar ConfigMaps.

The SLOs can come from the autoscaler's config, so one definition feeds the autoscaler and the burn-rate alerts.
Nothing is half-written: every file goes to a temporary name first and is renamed once all compiled.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import yaml

MIXIN = Path(__file__).resolve().parent / "mixin"
SHIPPED = Path(__file__).resolve().parent / "built"  # the build as shipped, so a dashboard imports without jsonnet
RULES_FILE = "prometheus-rules.yaml"
INHIBIT_FILE = "alertmanager-inhibit-rules.yaml"  # the `inhibit_rules` of an Alertmanager config


class BuildError(ValueError):
    pass


def compile_mixin(config: dict | None = None) -> dict:
    """{'rules': ..., 'alerts': ..., 'dashboards': {file: dashboard}} with `config` merged into the mixin's _config."""
    return json.loads(_evaluate(json.dumps(config or {}, sort_keys=True)))


@functools.lru_cache(maxsize=16)
def _evaluate(override: str) -> str:
    """The mixin's JSON for one override; kept, as jsonnet takes seconds and `headroom k8s render` asks per profile.
    The mixin's files do not change while a process runs (its caller gets a fresh object from the text each time)."""
    import _jsonnet

    # merged deep (an override of one SLO field keeps the others), as a user's `_config+::` with `+:` on objects
    snippet = (
        f"local base = import 'mixin.libsonnet'; local m = base + {{ _config:: std.mergePatch(base._config, {override}) }};"
        "{ rules: m.prometheusRules, alerts: m.prometheusAlerts, dashboards: m.grafanaDashboards,"
        "  inhibit_rules: m.alertmanagerInhibitRules }"
    )
    try:
        return _jsonnet.evaluate_snippet("headroom-mixin", snippet, jpathdir=[str(MIXIN)])
    except RuntimeError as err:  # jsonnet's own message names the file, line and the mixin's error text
        raise BuildError(f"the monitoring mixin does not compile: {err}") from None


def rule_groups(compiled: dict) -> dict:
    return {"groups": compiled["rules"].get("groups", []) + compiled["alerts"].get("groups", [])}


def prometheus_rule(groups: dict, namespace: str) -> dict:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "headroom", "namespace": namespace, "labels": {"app.kubernetes.io/part-of": "headroom"}},
        "spec": groups,
    }


def dashboard_configmap(name: str, dashboard: dict, namespace: str) -> dict:
    """A ConfigMap Grafana's sidecar (kube-prometheus-stack) loads: labelled grafana_dashboard: "1"."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": f"headroom-dashboard-{Path(name).stem}",
            "namespace": namespace,
            "labels": {"grafana_dashboard": "1", "app.kubernetes.io/part-of": "headroom"},
        },
        "data": {name: json.dumps(dashboard, indent=2, sort_keys=True)},
    }


def render(compiled: dict, namespace: str = "monitoring") -> dict[str, str]:
    """Every output file's name and text."""
    groups = rule_groups(compiled)
    files = {
        RULES_FILE: yaml.safe_dump(groups, sort_keys=False, width=1000),
        "prometheus-rule.yaml": yaml.safe_dump(prometheus_rule(groups, namespace), sort_keys=False, width=1000),
        INHIBIT_FILE: yaml.safe_dump({"inhibit_rules": compiled["inhibit_rules"]}, sort_keys=False, width=1000),
    }
    maps = []
    for name, dashboard in sorted(compiled["dashboards"].items()):
        files[name] = json.dumps(dashboard, indent=2, sort_keys=True) + "\n"
        maps.append(dashboard_configmap(name, dashboard, namespace))
    if maps:
        files["dashboard-configmaps.yaml"] = yaml.safe_dump_all(maps, sort_keys=False, width=1000)
    return files


def write(files: dict[str, str], out: Path, private: frozenset[str] = frozenset()) -> list[Path]:
    """All files, or none: each is written beside its place, then all are renamed. Files named in `private`
    (credentials) are readable by their owner only from the moment they exist."""
    out.mkdir(parents=True, exist_ok=True)
    staged = []
    for name, text in files.items():
        tmp = out / f".{name}.{os.getpid()}.tmp"
        with os.fdopen(
            os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if name in private else 0o644), "w"
        ) as f:
            f.write(text)
        staged.append((tmp, out / name))
    for tmp, final in staged:
        os.replace(tmp, final)
    return [final for _, final in staged]


def build(
    out: Path, slo_by_model: dict | None = None, namespace: str = "monitoring", docs: Path | None = None
) -> list[Path]:
    """Compile once (`slo_by_model`: the mixin's sloByModel, model -> ttftSeconds, tpotSeconds); write the build to
    `out` and, if asked, the generated docs to `docs`."""
    from dashboards.docs import render_docs

    config = {"sloByModel": slo_by_model} if slo_by_model else {}
    compiled = compile_mixin(config)
    written = write(render(compiled, namespace), out)
    return written + (write(render_docs(compiled), docs) if docs is not None else [])
