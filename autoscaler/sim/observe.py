"""What Prometheus would hold: periodic scrapes of fleet counters and replica gauges, read back with lag."""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from itertools import accumulate

import numpy as np

from autoscaler.snapshot import ReplicaSample, Snapshot
from serving.contracts.vllm_metrics import TTFT_BUCKETS


def histogram_quantile(q: float, bounds: tuple[float, ...], counts: np.ndarray) -> float:
    """Prometheus' histogram_quantile on cumulative-free bucket counts (last count is +Inf): linear within a bucket."""
    total = float(counts.sum())
    if total <= 0:
        return math.nan
    rank = q * total
    values = counts.tolist()  # a score of buckets, every scrape for days: Python's loop beats numpy's calls here
    cumulative = list(accumulate(values))
    i = bisect.bisect_left(cumulative, rank)
    if i >= len(bounds):
        return bounds[-1]  # in the +Inf bucket: Prometheus returns the highest finite bound
    lower = bounds[i - 1] if i > 0 else 0.0
    below = cumulative[i - 1] if i > 0 else 0.0
    in_bucket = values[i]
    return lower + (bounds[i] - lower) * ((rank - below) / in_bucket if in_bucket else 0.0)


@dataclass
class Scrape:
    time: float
    arrivals: float
    completions: float
    prompt_tokens: float
    output_tokens: float
    ttft_counts: np.ndarray
    itl_sum: float
    itl_count: float
    replicas: tuple[ReplicaSample, ...]
    gateway_queue: float


class Observer:
    """Keeps the scrapes; builds the snapshot a policy gets at time t from the newest scrape at or before t."""

    def __init__(self, scrape_interval_s: float, window_s: float):
        self.scrape_interval_s = scrape_interval_s
        self.window_s = window_s
        self.scrapes: list[Scrape] = []
        self._times: list[float] = []
        self._read_cache: tuple[int, dict] = (-1, {})

    def record(self, scrape: Scrape) -> None:
        self.scrapes.append(scrape)
        self._times.append(scrape.time)

    def snapshot(
        self, time: float, desired: int, ready: int, starting: int, stopping: int, extra: dict | None = None
    ) -> Snapshot:
        k = bisect.bisect_right(self._times, time) - 1
        if k < 0:
            return Snapshot(
                time, desired, ready, starting, stopping, stale=True, window_s=self.window_s, extra=extra or {}
            )
        now = self.scrapes[k]
        return Snapshot(
            time_s=time,
            desired=desired,
            ready=ready,
            starting=starting,
            stopping=stopping,
            sample_age_s=time - now.time,
            stale=time - now.time > 3 * self.scrape_interval_s,
            extra=extra or {},
            **self._read(k),
        )

    def _read(self, k: int) -> dict:
        """What the queries over the window ending at scrape k return; the same for every snapshot until the next scrape."""
        if self._read_cache[0] == k:
            return self._read_cache[1]
        now = self.scrapes[k]
        j = max(0, bisect.bisect_right(self._times, now.time - self.window_s) - 1)
        then = self.scrapes[j]
        span = now.time - then.time
        rate = (lambda a, b: (a - b) / span) if span > 0 else (lambda a, b: 0.0)
        itl_count = now.itl_count - then.itl_count
        read = {
            "replicas": now.replicas,
            "arrival_rate": rate(now.arrivals, then.arrivals),
            "completion_rate": rate(now.completions, then.completions),
            "prompt_tokens_rate": rate(now.prompt_tokens, then.prompt_tokens),
            "output_tokens_rate": rate(now.output_tokens, then.output_tokens),
            "ttft_p95_s": histogram_quantile(0.95, TTFT_BUCKETS, now.ttft_counts - then.ttft_counts),
            "itl_mean_s": (now.itl_sum - then.itl_sum) / itl_count if itl_count > 0 else math.nan,
            "gateway_queue": now.gateway_queue,
            "window_s": self.window_s,
        }
        self._read_cache = (k, read)
        return read


def ttft_bucket(value: float) -> int:
    """Index of the vLLM TTFT bucket holding `value` (len(TTFT_BUCKETS) is +Inf)."""
    return bisect.bisect_left(TTFT_BUCKETS, value)
