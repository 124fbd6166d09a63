"""The fleet loop every simulation mode runs on: arrivals through the gateway queue to the replica model, and the
scrape, control and timeline clocks in the model's time order. Written once; modes differ in their FleetModel."""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Protocol

from autoscaler.policy.base import Policy
from autoscaler.sim.config import SimConfig
from autoscaler.sim.gateway import Gateway
from autoscaler.sim.observe import Observer, Scrape
from autoscaler.sim.results import SimResult

CLOCKS = ("scrape", "control", "timeline")


@dataclass(frozen=True)
class Gauges:
    """The fleet's gauges on a timeline row."""

    running: float
    waiting: float
    kv_usage: float
    gpu_util: float


@dataclass
class Run:
    """What a run leaves for its model's summary."""

    config: SimConfig
    policy_name: str
    timeline: list = field(default_factory=list)
    decisions: list = field(default_factory=list)


class FleetModel(Protocol):
    """A mode's replicas as the loop drives them. Times are ordered by keys the model gives: the request level's are
    its times; fluid mode's put every clock tick inside the step it falls in (its own ticks come as its steps end)."""

    def next_key(self, loop: FleetLoop) -> tuple | None: ...  # its next arrival or step; None when all is done

    def clock_key(self, when: float, kind: str, order: int) -> tuple: ...

    def advance(self, loop: FleetLoop) -> None: ...  # take the next arrivals: hold them or route them

    def on_event(self, loop: FleetLoop, now: float, kind: str, payload) -> None: ...  # its own events

    def reading(self, loop: FleetLoop, now: float) -> Scrape: ...  # its replicas' side: the loop adds the rest

    def in_flight(self, now: float) -> float: ...  # requests inside its replicas, as the gateway counts them

    def counts(self, now: float) -> tuple[int, int, int]: ...  # (ready, starting, draining)

    def scale_to(self, loop: FleetLoop, desired: int, now: float) -> None: ...

    def gauges(self, now: float, since: float) -> Gauges: ...

    def result(self, run: Run) -> SimResult: ...


class FleetLoop:
    """One run of one policy with `model`'s replicas. Deterministic: same inputs, same results."""

    def __init__(
        self,
        config: SimConfig,
        policy: Policy,
        model: FleetModel,
        progress: Callable[[float], None] | None = None,
        duration_s: float = 0.0,
    ):
        self.config, self.policy, self.model = config, policy, model
        self.gateway = Gateway()
        self.observer = Observer(config.scrape_interval_s, config.rate_window_s)
        self.desired, self.state = config.initial_replicas, policy.initial_state()
        self.arrivals = 0.0
        self.run_out = Run(config, policy.name)
        self.next_scrape = math.inf
        self.held_reading: Scrape | None = None  # a scrape's reading taken before the step it falls in (fluid)
        self._events: list = []
        self._order = itertools.count()
        self._timeline_mark = (0.0, 0.0)  # (time, arrivals) at the last timeline row
        self._progress, self._duration_s, self._next_progress = progress, duration_s, 0.0

    def push(self, when: float, kind: str, payload=None) -> None:
        order = next(self._order)
        heapq.heappush(self._events, (self.model.clock_key(when, kind, order), when, kind, payload))
        if kind == "scrape":
            self.next_scrape = when

    def due_before(self, key: tuple) -> bool:
        """Whether a clock tick or event sorts before `key`."""
        return self._events[0][0] < key

    def run(self) -> SimResult:
        cfg = self.config
        self.push(cfg.clock_phase_s, "scrape")
        self.push(cfg.clock_phase_s + self.policy.interval_s, "control")
        self.push(cfg.timeline_interval_s, "timeline")
        while (key := self.model.next_key(self)) is not None:
            if self.due_before(key):
                _, when, kind, payload = heapq.heappop(self._events)
                self._event(when, kind, payload)
            else:
                self.model.advance(self)
        return self.model.result(self.run_out)

    def _event(self, now: float, kind: str, payload) -> None:
        """A clock ticks (and schedules its next tick), or the model's own event comes due."""
        cfg = self.config
        if kind == "scrape":
            self.observer.record(replace(self.held_reading or self.read(now), time=now))
            self.push(now + cfg.scrape_interval_s, "scrape")
        elif kind == "control":
            self._control(now)
            self.push(now + self.policy.interval_s, "control")
        elif kind == "timeline":
            self._timeline_row(now)
            self.push(now + cfg.timeline_interval_s, "timeline")
            self._report_progress(now)
        else:
            self.model.on_event(self, now, kind, payload)

    def read(self, now: float) -> Scrape:
        """A scrape at `now`: the model's counters and gauges, the arrivals and the gateway's queue."""
        r = self.model.reading(self, now)
        return replace(r, arrivals=self.arrivals, ttft_counts=r.ttft_counts.copy(), gateway_queue=self.gateway.held)

    def _control(self, now: float) -> None:
        """The policy reads the snapshot Prometheus would give it now (with the requests in flight as the gateway
        counts them); its answer, within max_replicas, scales the fleet."""
        in_flight = self.model.in_flight(now) + self.gateway.held
        counts = self.model.counts(now)
        snapshot = self.observer.snapshot(now, self.desired, *counts, extra={"in_flight_now": in_flight})
        decision, self.state = self.policy.decide(snapshot, self.state)
        self.run_out.decisions.append((now, decision))
        self.desired = max(0, min(decision.desired, self.config.max_replicas))
        self.model.scale_to(self, self.desired, now)

    def _timeline_row(self, now: float) -> None:
        """The fleet at `now` and the arrivals since the row before."""
        since, arrivals_before = self._timeline_mark
        gauges = self.model.gauges(now, since)
        ready, starting, draining = self.model.counts(now)
        arrivals = self.arrivals - arrivals_before
        self.run_out.timeline.append(
            {
                "time_s": now,
                "desired": self.desired,
                "ready": ready,
                "starting": starting,
                "draining": draining,
                "arrivals": arrivals,
                "arrival_rate": arrivals / max(1e-9, now - since),
                "running": gauges.running,
                "waiting": gauges.waiting,
                "gateway_queue": self.gateway.held,
                "kv_usage": gauges.kv_usage,
                "gpu_util": gauges.gpu_util,
            }
        )
        self._timeline_mark = (now, self.arrivals)

    def _report_progress(self, now: float) -> None:
        if self._progress and now >= self._next_progress:
            self._progress(min(1.0, now / max(1e-9, self._duration_s)))
            self._next_progress = now + max(60.0, self._duration_s / 50)
