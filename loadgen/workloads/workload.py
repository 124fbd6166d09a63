"""Request-level workload: arrival times with prompt and output lengths (and optional prefix blocks)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from loadgen.workloads.prefix import PrefixBlocks


class TraceError(ValueError):
    """A malformed trace row; the message names the file, line, column and value."""

    def __init__(self, path: str, line: int, column: str, value: object, reason: str):
        self.path, self.line, self.column, self.value = path, line, column, value
        super().__init__(f"{path}:{line}: column {column!r}: {reason} (got {value!r})")


@dataclass(frozen=True)
class Workload:
    """Arrivals in seconds from the start (sorted), with token lengths and, optionally, prefix-block ids."""

    name: str
    arrival_s: np.ndarray
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray
    prefix_ids: PrefixBlocks | None = field(default=None, repr=False)

    def __post_init__(self):
        n = len(self.arrival_s)
        if not (len(self.prompt_tokens) == len(self.output_tokens) == n):
            raise ValueError("arrival_s, prompt_tokens and output_tokens must have the same length")
        if self.prefix_ids is not None and len(self.prefix_ids) != n:
            raise ValueError("prefix_ids must have one entry per request")
        if n and np.any(np.diff(self.arrival_s) < 0):
            raise ValueError("arrivals must be sorted by time")

    def __len__(self) -> int:
        return len(self.arrival_s)

    @property
    def duration_s(self) -> float:
        return float(self.arrival_s[-1]) if len(self) else 0.0

    @property
    def mean_rate(self) -> float:
        return len(self) / self.duration_s if self.duration_s > 0 else 0.0

    def prefix(self, i: int) -> tuple[int, ...]:
        """Engine-block ids of request i's prefix (made on demand: a trace's would not fit in memory as tuples)."""
        return self.prefix_ids.engine_ids(i) if self.prefix_ids is not None else ()

    def window(self, start_s: float, end_s: float) -> Workload:
        """Requests arriving in [start_s, end_s), re-based to start at 0."""
        lo, hi = np.searchsorted(self.arrival_s, [start_s, end_s], side="left")
        return Workload(
            f"{self.name}[{start_s:g}:{end_s:g}]",
            self.arrival_s[lo:hi] - start_s,
            self.prompt_tokens[lo:hi],
            self.output_tokens[lo:hi],
            self.prefix_ids.take(np.arange(lo, hi)) if self.prefix_ids is not None else None,
        )

    def scaled(self, time_scale: float = 1.0, rate_scale: float = 1.0, seed: int = 0) -> Workload:
        """Time scaling (2.0 replays twice as fast) and rate scaling (thinning below 1, jittered copies above 1)."""
        if time_scale <= 0 or rate_scale <= 0:
            raise ValueError(f"time_scale and rate_scale must be positive, got {time_scale} and {rate_scale}")
        rng = np.random.default_rng(seed)
        index = np.arange(len(self))
        times = self.arrival_s / time_scale
        whole, frac = int(rate_scale), rate_scale - int(rate_scale)
        picks, offsets = [], []
        for copy in range(whole):
            picks.append(index)
            offsets.append(np.zeros(len(self)) if copy == 0 else rng.uniform(0, _mean_gap(times), len(self)))
        if frac > 0:
            keep = index[rng.random(len(self)) < frac]
            picks.append(keep)
            offsets.append(rng.uniform(0, _mean_gap(times), len(keep)) if whole else np.zeros(len(keep)))
        chosen = np.concatenate(picks)
        new_times = times[chosen] + np.concatenate(offsets)
        order = np.argsort(new_times, kind="stable")
        chosen = chosen[order]
        prefix = self.prefix_ids.take(chosen) if self.prefix_ids is not None else None
        return Workload(
            f"{self.name} x{rate_scale:g} rate /{time_scale:g} time",
            new_times[order],
            self.prompt_tokens[chosen],
            self.output_tokens[chosen],
            prefix,
        )


def _mean_gap(times: np.ndarray) -> float:
    return float(times[-1] - times[0]) / max(1, len(times) - 1) if len(times) > 1 else 1.0
