"""The stack's summary, read back from Prometheus with PromQL: throughput, latency, KV, GPU, GPU-hours, cost."""

from __future__ import annotations

import math
from dataclasses import dataclass

from prometheus_api_client import PrometheusConnect


def summary_queries(
    window_s: int,
    scrape_interval_s: int,
    load_s: float | None = None,
    usd_per_gpu_hour: float = 0.0,
    rule_interval_s: int | None = None,
) -> dict[str, str]:
    """PromQL per summary field, over the last `window_s` seconds; rates are per second of load (`load_s`). GPU-hours
    and cost read the mixin's recorded series (GPUs paid, starting and draining ones included; dollars per hour),
    sampled every `rule_interval_s`; without the rules, the GPUs the exporters report stand in."""
    w = f"{window_s}s"
    load_s = load_s or window_s
    step = rule_interval_s or scrape_interval_s
    by_exporters = f"sum(count_over_time(DCGM_FI_DEV_GPU_UTIL[{w}])) * {scrape_interval_s} / 3600"
    return {
        "requests_per_s": f"sum(increase(vllm:request_success_total[{w}])) / {load_s:g}",
        "output_tokens_per_s": f"sum(increase(vllm:generation_tokens_total[{w}])) / {load_s:g}",
        "output_tokens": f"sum(increase(vllm:generation_tokens_total[{w}]))",
        "ttft_p95_s": f"histogram_quantile(0.95, sum by (le) (rate(vllm:time_to_first_token_seconds_bucket[{w}])))",
        "itl_p95_s": f"histogram_quantile(0.95, sum by (le) (rate(vllm:inter_token_latency_seconds_bucket[{w}])))",
        "kv_cache_usage_mean": f"avg(avg_over_time(vllm:kv_cache_usage_perc[{w}]))",
        "kv_cache_usage_max": f"max(max_over_time(vllm:kv_cache_usage_perc[{w}]))",
        "gpu_util_mean_pct": f"avg(avg_over_time(DCGM_FI_DEV_GPU_UTIL[{w}]))",
        "gpu_hours": f"sum(sum_over_time(model_name:headroom_gpus:sum[{w}])) * {step} / 3600 or {by_exporters}",
        "cost_usd": (
            f"sum(sum_over_time(model_name:headroom_cost_dollars_per_hour:sum[{w}])) * {step} / 3600 "
            f"or {by_exporters} * {usd_per_gpu_hour:g}"
        ),
        "gateway_requests": f"sum(increase(headroom_gateway_requests_total[{w}]))",
    }


@dataclass
class Summary:
    values: dict[str, float]
    usd_per_gpu_hour: float

    @property
    def cost_usd(self) -> float:
        return self.values["cost_usd"]

    @property
    def cost_per_million_output_tokens(self) -> float:
        tokens = self.values["output_tokens"]
        return self.cost_usd / (tokens / 1e6) if tokens > 0 else math.nan

    def as_dict(self) -> dict[str, float]:
        return {
            **self.values,
            "usd_per_gpu_hour": self.usd_per_gpu_hour,
            "cost_per_million_output_tokens": self.cost_per_million_output_tokens,
        }


def query_summary(
    prometheus_url: str,
    window_s: int,
    scrape_interval_s: int,
    usd_per_gpu_hour: float,
    load_s: float | None = None,
    at_s: float | None = None,
) -> Summary:
    """Run each query (at the Unix time `at_s`, default now); an empty result is NaN, so a broken pipeline shows
    instead of reading as zero."""
    client = PrometheusConnect(url=prometheus_url, disable_ssl=True)
    params = {"time": at_s} if at_s is not None else None
    values = {}
    for name, promql in summary_queries(window_s, scrape_interval_s, load_s, usd_per_gpu_hour).items():
        result = client.custom_query(promql, params)
        values[name] = float(result[0]["value"][1]) if result else math.nan
    return Summary(values, usd_per_gpu_hour)


def replica_timeline(prometheus_url: str, start_s: float, end_s: float, step_s: float = 10.0) -> list[dict]:
    """Every `step_s` over [start, end] (Unix seconds): requests/s served, and the autoscaler's desired and ready
    replicas, as Prometheus recorded them (what `make demo` prints to show replicas following the load)."""
    import datetime

    client = PrometheusConnect(url=prometheus_url, disable_ssl=True)
    at = lambda t: datetime.datetime.fromtimestamp(t, datetime.UTC)
    series = {
        "requests_per_s": "sum(rate(vllm:request_success_total[20s]))",
        "desired": "max(headroom_autoscaler_desired_replicas)",
        "ready": "max(headroom_autoscaler_ready_replicas)",
        "ttft_p95_s": "histogram_quantile(0.95, sum by (le) (rate(vllm:time_to_first_token_seconds_bucket[20s])))",
    }
    rows: dict[float, dict] = {}
    for name, promql in series.items():
        for result in client.custom_query_range(promql, at(start_s), at(end_s), f"{step_s:g}s"):
            for t, value in result["values"]:
                rows.setdefault(float(t), {"time_s": float(t) - start_s})[name] = float(value)
    return [rows[t] for t in sorted(rows)]
