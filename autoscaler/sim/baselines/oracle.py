"""The oracle: knows every future arrival and asks for the fewest replicas that carry it within the SLO,
each one cold start ahead. Not a real policy: the floor every real one is judged against."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from autoscaler.policy.base import Decision
from autoscaler.snapshot import Snapshot


class FutureArrivals(Protocol):
    """What the oracle knows of the future: the busiest arrival rate over any `window_s` inside [start, end)."""

    def peak_rate(self, start: float, end: float, window_s: float) -> float: ...


@dataclass(frozen=True)
class ArrivalTimes:
    """Every request's arrival time (sorted): the request-level simulator's future."""

    times: np.ndarray = field(repr=False)

    def peak_rate(self, start: float, end: float, window_s: float) -> float:
        times = self.times
        lo, hi = np.searchsorted(times, [start, end])
        if hi <= lo:
            return 0.0
        inside = times[lo:hi]
        index = np.arange(lo, hi)
        ahead = np.searchsorted(times, inside + window_s) - index  # windows starting at each arrival
        behind = index + 1 - np.searchsorted(times, inside - window_s, side="right")  # and ending at it
        return float(max(ahead.max(), behind.max())) / window_s


@dataclass(frozen=True)
class StepCounts:
    """Arrivals per fixed step (the fluid simulator's future). A window shorter than a step is judged on one
    step: the counts hold nothing finer."""

    counts: np.ndarray = field(repr=False)
    step_s: float
    _window_sums: dict = field(default_factory=dict, repr=False, compare=False)

    def _sums(self, steps: int) -> np.ndarray:
        """Arrivals in every run of `steps` consecutive steps (index: the run's first step), computed once."""
        if steps not in self._window_sums:
            cumulative = np.concatenate(([0.0], np.cumsum(self.counts, dtype=np.float64)))
            self._window_sums[steps] = (
                cumulative[steps:] - cumulative[:-steps] if steps <= len(self.counts) else cumulative[-1:]
            )
        return self._window_sums[steps]

    def peak_rate(self, start: float, end: float, window_s: float) -> float:
        steps = max(1, int(round(window_s / self.step_s)))
        sums = self._sums(steps)
        first = max(0, int(start // self.step_s))
        last = min(len(sums), max(first + 1, int(math.ceil(end / self.step_s)) - steps + 1))
        if first >= len(sums):
            return 0.0
        return float(sums[first:last].max()) / (steps * self.step_s)


@dataclass(frozen=True)
class Oracle:
    future: FutureArrivals
    capacity_rps: float  # per replica at the SLO (autoscaler.capacity.engine_capacity.slo_capacity)
    cold_start_s: float
    interval_s: float = 15.0
    window_s: float = 30.0  # load is judged as the busiest window of this length ahead
    min_replicas: int = 1
    name: str = "oracle"

    def initial_state(self):
        return None

    def needed(self, start: float, end: float) -> int:
        """Replicas needed for the busiest `window_s` of arrivals in [start, end)."""
        peak = self.future.peak_rate(start, end, self.window_s)
        return max(self.min_replicas, math.ceil(peak / self.capacity_rps))

    def decide(self, snapshot: Snapshot, state) -> tuple[Decision, None]:
        now = snapshot.time_s
        # replicas asked for now are ready one cold start later and serve until the next decision can act
        desired = self.needed(now, now + self.cold_start_s + 2 * self.interval_s + self.window_s)
        return Decision(desired, (f"future peak needs {desired} at {self.capacity_rps:.2f} req/s per replica",)), None
