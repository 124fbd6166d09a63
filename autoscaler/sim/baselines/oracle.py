"""The oracle: knows every future arrival and asks for the fewest replicas that carry it within the SLO,
each one cold start ahead. Not a real policy: the floor every real one is judged against."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from autoscaler.policy.base import Decision
from autoscaler.snapshot import Snapshot


@dataclass(frozen=True)
class Oracle:
    arrivals_s: np.ndarray = field(repr=False)
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
        times = self.arrivals_s
        lo, hi = np.searchsorted(times, [start, end])
        if hi <= lo:
            return self.min_replicas
        inside = times[lo:hi]
        index = np.arange(lo, hi)
        ahead = np.searchsorted(times, inside + self.window_s) - index  # windows starting at each arrival
        behind = index + 1 - np.searchsorted(times, inside - self.window_s, side="right")  # and ending at it
        peak = float(max(ahead.max(), behind.max())) / self.window_s
        return max(self.min_replicas, math.ceil(peak / self.capacity_rps))

    def decide(self, snapshot: Snapshot, state) -> tuple[Decision, None]:
        now = snapshot.time_s
        # replicas asked for now are ready one cold start later and serve until the next decision can act
        desired = self.needed(now, now + self.cold_start_s + 2 * self.interval_s + self.window_s)
        return Decision(desired, (f"future peak needs {desired} at {self.capacity_rps:.2f} req/s per replica",)), None
