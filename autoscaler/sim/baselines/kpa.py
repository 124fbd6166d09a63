"""Knative Pod Autoscaler (KPA) on concurrency.

Spec: Knative Serving docs (autoscaling: "Stable and panic modes", config-autoscaler defaults) and
pkg/autoscaler/scaling/autoscaler.go: a 60 s stable window and a 6 s panic window (10%) of average
concurrency; desired = ceil(average concurrency / target per pod); panic when the panic-window desired
count is at least 2x the ready pods; while panicking the count never goes down, and panic ends once the
condition has not held for a whole stable window; at most 1000x up and 2x down per 2 s tick.
Concurrency is read from the gateway directly each tick, as Knative's queue-proxies report it.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from autoscaler.policy.base import Decision
from autoscaler.snapshot import Snapshot


@dataclass(frozen=True)
class KpaState:
    times: tuple[float, ...] = ()  # concurrency samples within the stable window, oldest first
    values: tuple[float, ...] = ()
    panic_since: float | None = None
    last_panic_condition: float | None = None
    panic_floor: int = 0


@dataclass(frozen=True)
class Kpa:
    target: float = 70.0  # concurrency per pod (Knative's default 100 x 70% target utilization)
    min_replicas: int = 1
    max_replicas: int = 100
    stable_window_s: float = 60.0
    panic_window_s: float = 6.0
    panic_threshold: float = 2.0
    max_scale_up_rate: float = 1000.0
    max_scale_down_rate: float = 2.0
    tick_s: float = 2.0

    @property
    def name(self) -> str:
        return f"kpa:concurrency={self.target:g}"

    @property
    def interval_s(self) -> float:
        return self.tick_s

    def initial_state(self) -> KpaState:
        return KpaState()

    def decide(self, snapshot: Snapshot, state: KpaState) -> tuple[Decision, KpaState]:
        now = snapshot.time_s
        extra = snapshot.extra
        concurrency = extra.get("in_flight_now", snapshot.in_flight)
        times = state.times[bisect.bisect_right(state.times, now - self.stable_window_s) :] + (now,)
        values = state.values[len(state.values) + 1 - len(times) :] + (concurrency,)
        stable = sum(values) / len(values)
        recent = values[bisect.bisect_right(times, now - self.panic_window_s) :]
        panic_avg = sum(recent) / len(recent)
        want_stable = math.ceil(stable / self.target)
        want_panic = math.ceil(panic_avg / self.target)
        ready = max(1, snapshot.ready)
        panic_since, last_condition, floor = state.panic_since, state.last_panic_condition, state.panic_floor
        if want_panic / ready >= self.panic_threshold:
            last_condition = now
            if panic_since is None:
                panic_since = now
        elif panic_since is not None and last_condition is not None and now - last_condition >= self.stable_window_s:
            panic_since, floor = None, 0
        if panic_since is not None:
            desired = max(want_panic, floor, snapshot.desired)
            floor = desired
            reason = f"panic: {panic_avg:.1f} concurrent over {self.panic_window_s:g} s -> {want_panic}"
        else:
            desired = want_stable
            reason = f"stable: {stable:.1f} concurrent over {self.stable_window_s:g} s -> {want_stable}"
        desired = min(desired, math.ceil(ready * self.max_scale_up_rate))
        desired = max(desired, math.floor(ready / self.max_scale_down_rate))
        desired = max(self.min_replicas, min(self.max_replicas, desired))
        return Decision(desired, (reason,)), KpaState(times, values, panic_since, last_condition, floor)
