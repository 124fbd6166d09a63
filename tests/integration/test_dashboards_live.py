"""Live: the mixin in `headroom up`'s own Prometheus and Alertmanager. A load that makes the autoscaler act; then
every query of every dashboard panel evaluated by the real Prometheus (no error, and data unless the panel says it is
empty in a healthy system, those checked under an injected fault); the drill's alert reaching the webhook receiver
with its runbook; and the recorded cost per 1M output tokens against the summary's arithmetic."""

import asyncio
import json
import math
import re
import time

import aiohttp
import pytest
import yaml
from prometheus_api_client import PrometheusConnect

from dashboards.build import compile_mixin
from headroom.demo import run_demo_load
from headroom.drill import DRILL_ALERT, alert_drill, set_faults
from headroom.stack import LocalStack, StackConfig
from headroom.summary import query_summary

pytestmark = [
    pytest.mark.integration,
    pytest.mark.xdist_group("live-autoscaling"),
]  # never beside each other: both time the fleet
EMPTY_NOTE = "Empty in a healthy system."
SCRAPE_S = 2
RECORDED_COST = "model_name:headroom_cost_per_million_output_tokens:ratio_rate1h"


def concrete(expr: str, rate_interval: str = f"{4 * SCRAPE_S}s") -> str:
    """A panel's query as Grafana would send it: variables at All, the rate interval and range set."""
    expr = expr.replace("$__rate_interval", rate_interval).replace("$__range_s", "120").replace("$__range", "2m")
    return re.sub(r"\$(cluster|namespace|model_name)\b", ".*", expr)


def evaluate(client, expr: str, rate_interval: str = f"{4 * SCRAPE_S}s") -> tuple[list | None, str | None]:
    try:
        return client.custom_query(concrete(expr, rate_interval)), None
    except Exception as err:  # a query Prometheus refuses is the failure this test looks for  # noqa: BLE001
        return None, f"{type(err).__name__}: {err}"


def panel_queries():
    compiled = compile_mixin()
    for name, dashboard in compiled["dashboards"].items():
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                yield name, panel, target["expr"]


def test_every_panel_query_alerts_and_cost_against_a_live_stack(tmp_path):
    config = StackConfig(
        replicas=1,
        profile=str(small_kv_profile(tmp_path)),
        cold_start_s=0.5,
        gateway_port=0,
        prometheus_port=0,
        scrape_interval_s=SCRAPE_S,
        run_dir=tmp_path / "run",
        autoscale=True,
        autoscale_max=3,
        autoscale_interval_s=2.0,
    )

    async def scenario():
        stack = LocalStack(config)
        started = time.time()
        await stack.start()
        try:
            # a first malformed request: its counter is born at 1, so only a later one shows in rate()
            await asyncio.to_thread(_bad_request, stack.gateway_url)
            load = await run_demo_load(stack.gateway_url, stack.profile.model.name, rate=25, duration_s=40)
            await asyncio.sleep(3 * SCRAPE_S)
            client = PrometheusConnect(stack.prometheus.url)
            # queries off the event loop: the gateway on it must keep answering scrapes, or its gauges go stale
            query = lambda *args: asyncio.to_thread(client.custom_query, *args)
            healthy = await asyncio.to_thread(
                lambda: [(n, p["title"], e, *evaluate(client, e)) for n, p, e in panel_queries()]
            )
            # the summary over the stack's life, at the instant the rules last ran (a sample later is 2% more cost)
            recorded = await query(f"timestamp({RECORDED_COST})")
            at_s = min(float(r["value"][1]) for r in recorded)
            summary = await asyncio.to_thread(
                query_summary, stack.prometheus.url, math.ceil(at_s - started), SCRAPE_S, 12.29, at_s=at_s
            )
            recorded = await query(RECORDED_COST, {"time": at_s})
            # faults for the panels that stay empty while healthy: a malformed request (a rejection) and engine errors
            await asyncio.to_thread(_bad_request, stack.gateway_url)
            drilled = await alert_drill(stack, 15.0, lambda line: None, fire_timeout_s=60, resolve_timeout_s=120)
            await preempt_then_crash_a_replica(stack, query)
            # over a window that holds every fault (Grafana's would: a dashboard's range spans them)
            faulted = await asyncio.to_thread(
                lambda: {
                    (n, p["title"], e): evaluate(client, e, "10m")
                    for n, p, e in panel_queries()
                    if EMPTY_NOTE in p["description"]
                }
            )
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
    for title in {k[1] for k in faulted}:  # each such panel shows its fault: some query of it above zero
        values = [float(r["value"][1]) for k, (result, _) in faulted.items() if k[1] == title for r in result]
        assert any(v > 0 for v in values), f"{title}: nothing under its fault ({values})"
    # the drill's alert went through Alertmanager to the receiver, with its runbook, firing then resolved
    assert drilled
    mine = [a for a in alerts if a["alertname"] == DRILL_ALERT]
    assert [a["status"] for a in mine][:1] == ["firing"] and "resolved" in [a["status"] for a in mine]
    assert mine[0]["runbook_url"].endswith(f"/docs/runbooks/{DRILL_ALERT}.md") and mine[0]["summary"]
    # the recorded cost per 1M output tokens agrees with the summary's arithmetic over the same span
    by_summary = summary.as_dict()["cost_per_million_output_tokens"]
    by_rules = float(recorded[0]["value"][1])
    assert math.isfinite(by_summary) and abs(by_rules / by_summary - 1) <= 0.02, (by_rules, by_summary)


def small_kv_profile(tmp_path):
    """The 8B-on-H100 profile with a KV cache of 44,576 tokens, so that a burst of long answers preempts."""
    path = tmp_path / "small-kv.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "llama-3.1-8b-h100-small-kv",
                "model": "llama-3.1-8b",
                "model_overrides": {"max_model_len": 16384},
                "gpu": "H100",
                "tensor_parallel": 1,
                "efficiency": "vllm-v1",
                "scheduler": {"max_num_seqs": 1024, "max_num_batched_tokens": 8192, "gpu_memory_utilization": 0.28},
            }
        )
    )
    return path


async def preempt_then_crash_a_replica(stack, query) -> None:
    """Faults for the Preemptions and Backend failures panels: long answers that outgrow the fleet's KV cache, then
    one replica killed under them (its streams fail mid-way, new requests to it are refused and retried)."""
    body = {
        "model": stack.profile.model.name,
        "prompt": "w " * 2500,
        "max_tokens": 1500,
        "ignore_eos": True,
        "stream": True,
    }

    async def one(session):
        async with session.post(f"{stack.gateway_url}/v1/completions", json=body) as resp:
            await resp.read()

    async def until(promql, timeout_s=60.0):
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not any(float(r["value"][1]) > 0 for r in await query(promql)):
            assert asyncio.get_running_loop().time() < deadline, f"no {promql} within {timeout_s:g} s"
            await asyncio.sleep(1)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        burst = [asyncio.create_task(one(session)) for _ in range(60)]
        try:
            await until("sum(vllm:num_preemptions_total)")
            ready = [r["address"] for r in stack.fleet.status()["replicas"] if r["state"] == "ready"]
            await set_faults(ready[:1], {"crash_after_s": 0})
            await until("sum(headroom_gateway_backend_failures_total)")
        finally:
            for task in burst:
                task.cancel()
            await asyncio.gather(*burst, return_exceptions=True)


def _bad_request(url: str) -> None:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(f"{url}/v1/completions", b"{not json", {"Content-Type": "application/json"})
    try:
        urllib.request.urlopen(request, timeout=10)
    except urllib.error.HTTPError as err:
        assert err.code == 400
