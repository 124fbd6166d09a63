"""Live: the mixin in `headroom up`'s own Prometheus and Alertmanager. A load that makes the autoscaler act; then
every query of every dashboard panel evaluated by the real Prometheus (no error, and data unless the panel says it is
empty in a healthy system, those checked under an injected fault); the drill's alert reaching the webhook receiver
with its runbook; and the recorded cost per 1M output tokens against the summary's arithmetic."""

import asyncio
import json
import math
import re
import time

import pytest
from prometheus_api_client import PrometheusConnect

from dashboards.build import compile_mixin
from headroom.demo import run_demo_load
from headroom.drill import DRILL_ALERT, alert_drill
from headroom.stack import LocalStack, StackConfig
from headroom.summary import query_summary

pytestmark = pytest.mark.integration
EMPTY_NOTE = "Empty in a healthy system."
SCRAPE_S = 2
RECORDED_COST = "model_name:headroom_cost_per_million_output_tokens:ratio_rate1h"


def concrete(expr: str) -> str:
    """A panel's query as Grafana would send it: variables at All, the rate interval and range set."""
    expr = expr.replace("$__rate_interval", f"{4 * SCRAPE_S}s").replace("$__range_s", "120").replace("$__range", "2m")
    return re.sub(r"\$(cluster|namespace|model_name)\b", ".*", expr)


def evaluate(client, expr: str) -> tuple[list | None, str | None]:
    try:
        return client.custom_query(concrete(expr)), None
    except Exception as err:  # a query Prometheus refuses is the failure this test looks for
        return None, f"{type(err).__name__}: {err}"


def panel_queries():
    compiled = compile_mixin()
    for name, dashboard in compiled["dashboards"].items():
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                yield name, panel, target["expr"]


def test_every_panel_query_alerts_and_cost_against_a_live_stack(tmp_path):
    config = StackConfig(replicas=1, cold_start_s=0.5, gateway_port=0, prometheus_port=0, scrape_interval_s=SCRAPE_S,
                         run_dir=tmp_path / "run", autoscale=True, autoscale_max=3, autoscale_interval_s=2.0)

    async def scenario():
        stack = LocalStack(config)
        started = time.time()
        await stack.start()
        try:
            load = await run_demo_load(stack.gateway_url, stack.profile.model.name, rate=25, duration_s=40)
            await asyncio.sleep(3 * SCRAPE_S)
            client = PrometheusConnect(stack.prometheus.url)
            # queries off the event loop: the gateway on it must keep answering scrapes, or its gauges go stale
            query = lambda *args: asyncio.to_thread(client.custom_query, *args)
            healthy = await asyncio.to_thread(lambda: [(n, p["title"], e, *evaluate(client, e)) for n, p, e in panel_queries()])
            # the summary over the stack's life, at the instant the rules last ran (a sample later is 2% more cost)
            recorded = await query(f"timestamp({RECORDED_COST})")
            at_s = min(float(r["value"][1]) for r in recorded)
            summary = await asyncio.to_thread(query_summary, stack.prometheus.url, math.ceil(at_s - started), SCRAPE_S,
                                              12.29, at_s=at_s)
            recorded = await query(RECORDED_COST, {"time": at_s})
            # faults for the panels that stay empty while healthy: a malformed request (a rejection) and engine errors
            await asyncio.to_thread(_bad_request, stack.gateway_url)
            drilled = await alert_drill(stack, 15.0, lambda line: None, fire_timeout_s=60, resolve_timeout_s=120)
            faulted = await asyncio.to_thread(lambda: {(n, p["title"], e): evaluate(client, e) for n, p, e in panel_queries()
                                                       if EMPTY_NOTE in p["description"]})
            alerts = [json.loads(line) for line in (tmp_path / "run" / "alerts.jsonl").read_text().splitlines()]
            return load, healthy, faulted, summary, recorded, drilled, alerts
        finally:
            await stack.stop()

    load, healthy, faulted, summary, recorded, drilled, alerts = asyncio.run(scenario())
    assert load.failed == 0 and load.ok > 500
    errors = [(n, t, e, err) for n, t, e, _, err in healthy if err]
    assert not errors, errors
    empty = [(n, t, e) for n, t, e, result, _ in healthy if not result and (n, t, e) not in faulted]
    assert not empty, f"panels without data in a healthy system that do not say so: {empty}"
    assert all(err is None for _, err in faulted.values()), faulted
    for key in [k for k in faulted if k[1] in ("Engine errors", "Rejections")]:
        assert faulted[key][0], f"{key[1]}: no data under its fault"
    # the drill's alert went through Alertmanager to the receiver, with its runbook, firing then resolved
    assert drilled
    mine = [a for a in alerts if a["alertname"] == DRILL_ALERT]
    assert [a["status"] for a in mine][:1] == ["firing"] and "resolved" in [a["status"] for a in mine]
    assert mine[0]["runbook_url"].endswith(f"/docs/runbooks/{DRILL_ALERT}.md") and mine[0]["summary"]
    # the recorded cost per 1M output tokens agrees with the summary's arithmetic over the same span
    by_summary = summary.as_dict()["cost_per_million_output_tokens"]
    by_rules = float(recorded[0]["value"][1])
    assert math.isfinite(by_summary) and abs(by_rules / by_summary - 1) <= 0.02, (by_rules, by_summary)


def _bad_request(url: str) -> None:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(f"{url}/v1/completions", b"{not json", {"Content-Type": "application/json"})
    try:
        urllib.request.urlopen(request, timeout=10)
    except urllib.error.HTTPError as err:
        assert err.code == 400
