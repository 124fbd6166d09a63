"""Real processes: Prometheus scraping a 2-replica emulator fleet under load, read back through PromQL."""

import asyncio
import math

import pytest
from prometheus_api_client import PrometheusConnect

from headroom.demo import run_demo_load
from headroom.stack import LocalStack, StackConfig
from headroom.summary import query_summary

pytestmark = pytest.mark.integration


def scalar(client, promql):
    result = client.custom_query(promql)
    return [float(r["value"][1]) for r in result]


async def started_stack(run_dir) -> LocalStack:
    """Two replicas (1 s cold start), the gateway and Prometheus scraping every second, on free ports."""
    stack = LocalStack(
        StackConfig(
            replicas=2, cold_start_s=1.0, gateway_port=0, prometheus_port=0, scrape_interval_s=1, run_dir=run_dir
        )
    )
    await stack.start()
    return stack


def test_prometheus_scrapes_fleet_under_load(tmp_path):
    async def scenario():
        stack = await started_stack(tmp_path)
        try:
            load = await run_demo_load(stack.gateway_url, stack.profile.model.name, rate=10, duration_s=12)
            await asyncio.sleep(3)
            client = PrometheusConnect(stack.prometheus.url)
            found = {
                "tokens": await asyncio.to_thread(scalar, client, "sum(rate(vllm:generation_tokens_total[20s]))"),
                "ttft": await asyncio.to_thread(
                    scalar,
                    client,
                    "histogram_quantile(0.95, sum by (le) (rate(vllm:time_to_first_token_seconds_bucket[20s])))",
                ),
                "util": await asyncio.to_thread(scalar, client, "max_over_time(DCGM_FI_DEV_GPU_UTIL[20s])"),
                "replicas": await asyncio.to_thread(scalar, client, 'count(up{job="vllm"} == 1)'),
                "gateway": await asyncio.to_thread(scalar, client, "sum(headroom_gateway_requests_total)"),
                "served": await asyncio.to_thread(scalar, client, "sum(vllm:request_success_total)"),
            }
            summary = await asyncio.to_thread(query_summary, stack.prometheus.url, 20, 1, 12.29)
            return load, found, summary
        finally:
            await stack.stop()

    load, found, summary = asyncio.run(scenario())
    assert load.failed == 0 and load.ok == load.sent > 80
    assert len(found["tokens"]) == 1 and found["tokens"][0] > 100
    assert len(found["ttft"]) == 1 and 0 < found["ttft"][0] < 2.5
    assert len(found["util"]) == 2 and all(v > 0 for v in found["util"])  # one series per replica GPU
    assert found["replicas"] == [2.0]
    assert found["gateway"][0] == load.sent == found["served"][0]
    values = summary.as_dict()
    assert not [k for k, v in values.items() if isinstance(v, float) and math.isnan(v)]
    assert values["gpu_hours"] > 0 and values["cost_per_million_output_tokens"] > 0


def test_scaling_up_and_down_under_load_loses_nothing(tmp_path):
    async def scenario():
        stack = await started_stack(tmp_path)
        try:
            load = asyncio.create_task(
                run_demo_load(stack.gateway_url, stack.profile.model.name, rate=12, duration_s=14)
            )
            await asyncio.sleep(2)
            await stack.fleet.scale(4)  # two more go through their cold start while traffic flows
            await stack.fleet.wait_for(lambda f: f.status()["ready"] == 4, 30)
            await asyncio.sleep(2)
            await stack.fleet.scale(1)  # three retire: no new requests, in-flight ones finish
            states = stack.fleet.status()
            await asyncio.sleep(2)
            await stack.fleet.scale(3)
            result = await load
            await stack.fleet.wait_for(lambda f: f.status()["stopping"] == 0, 60)
            sd = (tmp_path / "targets" / "replicas.json").read_text()
            return result, states, stack.fleet.status(), sd
        finally:
            await stack.stop()

    result, during, after, sd = asyncio.run(scenario())
    assert during["stopping"] == 3 and during["ready"] == 1
    assert result.failed == 0, result.errors
    assert result.ok == result.sent > 100
    assert after["ready"] + after["starting"] == 3 and after["stopping"] == 0
    assert sd.count('"targets"') == 3
