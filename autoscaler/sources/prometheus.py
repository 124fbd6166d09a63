"""Snapshots from Prometheus (prometheus-api-client): one PromQL query per signal for every target at once (grouped by
the label that names a target), samples' own timestamps checked for staleness, NaN and empty answers flagged."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import Field

from autoscaler.snapshot import ReplicaSample, Snapshot
from serving.common.strict import Strict

# Defaults on vLLM's metric names (DESIGN.md). {sel} is the selector of the fleet, {by} the label naming a target,
# {w} the rate window; replica queries keep `instance` to tell replicas apart.
DEFAULT_QUERIES = {
    "arrival_rate": "sum by ({by}) (rate(vllm:request_success_total{{{sel}}}[{w}]))",
    "prompt_tokens_rate": "sum by ({by}) (rate(vllm:prompt_tokens_total{{{sel}}}[{w}]))",
    "output_tokens_rate": "sum by ({by}) (rate(vllm:generation_tokens_total{{{sel}}}[{w}]))",
    "ttft_p95_s": "histogram_quantile(0.95, sum by ({by}, le) (rate(vllm:time_to_first_token_seconds_bucket{{{sel}}}[{w}])))",
    "itl_mean_s": (
        "sum by ({by}) (rate(vllm:inter_token_latency_seconds_sum{{{sel}}}[{w}])) / "
        "sum by ({by}) (rate(vllm:inter_token_latency_seconds_count{{{sel}}}[{w}]))"
    ),
    "newest_sample_s": "max by ({by}) (timestamp(vllm:num_requests_running{{{sel}}}))",
    "running": "sum by ({by}, instance) (vllm:num_requests_running{{{sel}}})",
    "waiting": "sum by ({by}, instance) (vllm:num_requests_waiting{{{sel}}})",
    "kv_usage": "max by ({by}, instance) (vllm:kv_cache_usage_perc{{{sel}}})",
    # the Headroom gateway in front, where it is scraped (its `model` label copied to the target label): requests that
    # reach it, answered or turned away (client errors aside), and those it holds for want of a backend slot. Without
    # them a fleet that sheds load, or whose only replica is out, shows the policy its completions, not its demand.
    "gateway_arrival_rate": (
        'sum by ({by}) (label_replace(rate(headroom_gateway_requests_total{{status!~"400|401|404"}}[{w}]), '
        '"{by}", "$1", "model", "(.+)"))'
    ),
    "gateway_queue": 'sum by ({by}) (label_replace(headroom_gateway_queue_depth, "{by}", "$1", "model", "(.+)"))',
}
# the most each signal can read in a real fleet: a value beyond (or negative, or not finite) is a broken exporter
# or query, and its target holds rather than scale on it. Latencies may be NaN (no traffic) or +Inf (past the last
# histogram bucket): the policy reads those itself.
PLAUSIBLE = {
    "arrival_rate": 1e7,
    "prompt_tokens_rate": 1e10,
    "output_tokens_rate": 1e10,
    "gateway_arrival_rate": 1e7,
    "gateway_queue": 1e7,
    "running": 1e6,
    "waiting": 1e7,
    "kv_usage": 1.01,
    "gpu_util": 101.0,
}
FLEET = ("arrival_rate", "prompt_tokens_rate", "output_tokens_rate", "ttft_p95_s", "itl_mean_s", "newest_sample_s")
GATEWAY = ("gateway_arrival_rate", "gateway_queue")  # optional: a fleet without the gateway falls back on its engines
PER_REPLICA = ("running", "waiting", "kv_usage")


class PrometheusSourceConfig(Strict):
    url: str = Field("http://127.0.0.1:9090", description="Prometheus base URL")
    target_label: str = Field("model_name", description="the label whose value names a scaling target")
    selector: str = Field("", description='extra PromQL matchers for every query, e.g. namespace="llm"')
    rate_window: str = Field("1m", description="range of rate() and histogram windows")
    stale_after_s: float = Field(60.0, gt=0, description="a target whose newest sample is older than this is stale")
    max_clock_skew_s: float = Field(
        10.0, ge=0, description="a newest sample further than this in the future (clocks apart) makes its target stale"
    )
    timeout_s: float = Field(5.0, gt=0, description="per query")
    queries: dict[str, str] = Field(default_factory=dict, description="overrides of DEFAULT_QUERIES by signal name")
    gateway: bool = Field(
        True,
        description="also read the Headroom gateway's arrivals and queue (gateway_arrival_rate, "
        "gateway_queue): the policy then sees demand the fleet turns away or holds",
    )
    gpu_util_query: str | None = Field(
        None,
        description="per-replica GPU utilization (%), grouped like the replica queries, e.g. "
        "'avg by (model_name, instance) (DCGM_FI_DEV_GPU_UTIL)' when dcgm-exporter labels match",
    )

    def query(self, name: str) -> str:
        template = self.queries.get(name, DEFAULT_QUERIES[name])
        return template.format(sel=self.selector, by=self.target_label, w=self.rate_window)


@dataclass(frozen=True)
class FleetCounts:
    """What the actuator reports about a target: spec.replicas, ready, starting, stopping."""

    desired: int
    ready: int
    starting: int = 0
    stopping: int = 0


class PrometheusSource:
    """`snapshots(counts, now)` -> {target: Snapshot} for the targets in `counts`; a target Prometheus knows nothing
    about, or whose samples are old, NaN or missing, comes back `stale=True` (the policy then holds)."""

    def __init__(self, config: PrometheusSourceConfig, query: Callable[[str], list] | None = None):
        self.config = config
        self._range = None
        if query is None:
            from prometheus_api_client import PrometheusConnect
            from urllib3.util.retry import Retry

            # one quick retry at most: a source that is down must not stall the loop (the policy holds instead)
            client = PrometheusConnect(
                url=config.url,
                timeout=config.timeout_s,
                retry=Retry(total=1, backoff_factor=0.1, status_forcelist=(502, 503, 504)),
            )
            query = client.custom_query
            self._range = lambda promql, start, end, step: client.custom_query_range(promql, start, end, step)
        self._query = query

    def history(self, targets: list[str], start: float, end: float, step_s: float) -> dict[str, tuple[list, list]]:
        """Each target's request rate over [start, end] every `step_s` (Unix seconds): the forecaster's warm start,
        the demand a snapshot's `arrival_rate` reads (the gateway's arrivals where it is scraped, never less than the
        engines' completions). Long spans are fetched in pieces (Prometheus answers at most about 11,000 points per
        series a query)."""
        import datetime

        if self._range is None:
            return {}
        wanted = set(targets)
        out: dict[str, tuple[list, list]] = {t: ([], []) for t in targets}
        piece = step_s * 10_000
        at = lambda t: datetime.datetime.fromtimestamp(t, datetime.UTC)
        lo = start
        while lo < end:
            hi = min(end, lo + piece)
            for item in self._range(self.demand_query(), at(lo), at(hi), f"{step_s:g}s"):
                target = item.get("metric", {}).get(self.config.target_label)
                if target in wanted:
                    times, rates = out[target]
                    for t, v in item.get("values", []):
                        if not times or float(t) > times[-1]:
                            times.append(float(t))
                            rates.append(float(v))
            lo = hi
        return out

    def demand_query(self) -> str:
        """PromQL for each target's demand over time: max(gateway arrivals, engine completions) where the gateway is
        read, falling back on the engines for a target without it (`A >= B or B` keeps the larger of matching series)."""
        engines = self.config.query("arrival_rate")
        if not self.config.gateway:
            return engines
        return f"({self.config.query('gateway_arrival_rate')}) >= ({engines}) or ({engines})"

    def _run(self, name: str) -> tuple[list, str | None]:
        promql = self.config.gpu_util_query if name == "gpu_util" else self.config.query(name)
        try:
            return self._query(promql), None
        except Exception as err:  # down, slow, refused, a bad answer  # noqa: BLE001
            return [], f"{name}: {type(err).__name__}: {err}"

    def snapshots(self, counts: dict[str, FleetCounts], now: float | None = None) -> dict[str, Snapshot]:
        now = time.time() if now is None else now
        label = self.config.target_label
        fleet: dict[str, dict[str, float]] = {target: {} for target in counts}
        replicas: dict[str, dict[str, dict[str, float]]] = {target: {} for target in counts}
        errors, optional_errors = [], []
        names = list(FLEET) + list(PER_REPLICA) + (["gpu_util"] if self.config.gpu_util_query else [])
        names += list(GATEWAY) if self.config.gateway else []
        for name in names:
            series, error = self._run(name)
            if error and name in GATEWAY:  # reported; the snapshot falls back on the engines' signals
                optional_errors.append(error)
            elif error:  # every target is stale this pass: the other queries would only wait out their timeouts too
                errors.append(error)
                break
            for item in series:
                target = item.get("metric", {}).get(label)
                if target not in counts:
                    continue
                value = _number(item)
                if name in FLEET or name in GATEWAY:
                    fleet[target][name] = value
                else:
                    instance = item["metric"].get("instance", "")
                    replicas[target].setdefault(instance, {})[name] = value
        return {
            target: self._snapshot(known, fleet[target], replicas[target], now, errors, optional_errors)
            for target, known in counts.items()
        }

    def _snapshot(
        self,
        known: FleetCounts,
        values: dict[str, float],
        replicas: dict[str, dict[str, float]],
        now: float,
        errors: list[str],
        optional_errors: list[str],
    ) -> Snapshot:
        newest = values.get("newest_sample_s", math.nan)
        age = now - newest if math.isfinite(newest) else math.inf
        rate = values.get("arrival_rate", math.nan)  # completions: what the engines finish
        problems = list(errors) + implausible(values, replicas)
        if age < -self.config.max_clock_skew_s:
            problems.append(
                f"newest sample is {-age:.0f} s in the future: the clocks of Prometheus and the autoscaler differ"
            )
        stale = bool(problems) or not math.isfinite(age) or age > self.config.stale_after_s or not math.isfinite(rate)
        # demand, where the gateway is scraped: at least what the engines finish (some traffic may pass it by)
        offered = values.get("gateway_arrival_rate", math.nan)
        offered = max(offered, rate) if math.isfinite(offered) and math.isfinite(rate) else rate
        queued = values.get("gateway_queue", math.nan)
        samples = tuple(
            ReplicaSample(r.get("running", 0.0), r.get("waiting", 0.0), r.get("kv_usage", 0.0), r.get("gpu_util", 0.0))
            for _, r in sorted(replicas.items())
        )
        reported = problems + optional_errors
        return Snapshot(
            time_s=now,
            desired=known.desired,
            ready=known.ready,
            starting=known.starting,
            stopping=known.stopping,
            replicas=() if problems else samples,
            arrival_rate=offered if not problems else math.nan,
            completion_rate=rate,
            gateway_queue=queued if math.isfinite(queued) and not problems else 0.0,
            prompt_tokens_rate=values.get("prompt_tokens_rate", math.nan),
            output_tokens_rate=values.get("output_tokens_rate", math.nan),
            ttft_p95_s=values.get("ttft_p95_s", math.nan),
            itl_mean_s=values.get("itl_mean_s", math.nan),
            sample_age_s=max(age, 0.0) if math.isfinite(age) else math.inf,
            stale=stale,
            extra={"errors": tuple(reported)} if reported else {},
        )


def implausible(fleet: dict[str, float], replicas: dict[str, dict[str, float]]) -> list[str]:
    """What no real fleet reads: a signal negative, not finite, or past PLAUSIBLE (NaN rates are missing data)."""
    found = []
    for name, value in fleet.items():
        bound = PLAUSIBLE.get(name)
        if bound is not None and not math.isnan(value) and not 0 <= value <= bound:
            found.append(f"{name} reads {value!r}")
    for instance, gauges in sorted(replicas.items()):
        for name, value in gauges.items():
            if not 0 <= value <= PLAUSIBLE[name]:  # NaN fails too: a replica's gauge is never missing data
                found.append(f"{name} of {instance or 'a replica'} reads {value!r}")
    return found


def _number(item: dict) -> float:
    try:
        value = float(item["value"][1])
    except (KeyError, IndexError, TypeError, ValueError):
        return math.nan
    return value
