"""The fluid fleet loop, written once for every fluid replica model: steps of arrivals through the gateway queue,
routing, the replicas' step, drain, then the scrapes, control ticks and timeline rows that fall in the step."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from autoscaler.policy.base import Policy
from autoscaler.sim.config import SimConfig
from autoscaler.sim.fluid.fleet import EMPTY, Fleet
from autoscaler.sim.harness import decide, timeline_row
from autoscaler.sim.observe import Observer, Scrape
from autoscaler.sim.results import SimResult
from autoscaler.snapshot import ReplicaColumns


class Gateway:
    """Requests held while no replica is ready: entries of [arrival time, requests, work, ...] in arrival order,
    with their running totals. Entries held longer than the queue timeout fail."""

    def __init__(self):
        self.entries: deque[list] = deque()
        self.held = 0.0
        self.held_work = 0.0

    def hold(self, entry: list) -> None:
        self.entries.append(entry)
        self.held += entry[1]
        self.held_work += entry[2]

    def expire(self, now: float, timeout_s: float) -> float:
        """Drops the entries held past `timeout_s`; returns how many requests failed."""
        expired = 0.0
        while self.entries and now - self.entries[0][0] > timeout_s:
            _, gone, gone_work, *_ = self.entries.popleft()
            expired += gone
            self.held_work -= gone_work
        self.held -= expired
        return expired

    def release(self) -> Released:
        """Everything held, for routing; the gateway is then empty."""
        released = Released(self.entries, self.held, self.held_work)
        self.entries, self.held, self.held_work = deque(), 0.0, 0.0
        return released


@dataclass(frozen=True)
class Released:
    entries: deque[list]
    requests: float
    work: float


@dataclass(frozen=True)
class Counters:
    """A scrape's counters that the replica model keeps (the loop keeps arrivals and completions)."""

    prompt_tokens: float
    output_tokens: float
    ttft_counts: np.ndarray
    itl_sum: float
    itl_count: float


@dataclass(frozen=True)
class Gauges:
    """The fleet's gauges on a timeline row."""

    running: float
    waiting: float
    kv_usage: float
    gpu_util: float


class ReplicaModel(Protocol):
    """How a fleet's replicas serve one step (load tables, cohorts). The loop owns the fleet's arrays, the gateway,
    the counters of arrivals and completions, and the clocks; the model owns what its replicas hold."""

    scrape_at_step_start: bool  # a scrape in a step reads the fleet as the step begins (else as it ends)

    def arrival(self, step: int, t: float, requests: float) -> list: ...

    def serve(self, step: int, t: float, fleet: Fleet, released: Released | None) -> None: ...

    def settle(
        self, step: int, t: float, fleet: Fleet, drained: float, arrivals: float, expired: float
    ) -> tuple[float, tuple]: ...

    def observe(self, fleet: Fleet, t: float, step_end: float, scrape_due: bool) -> float: ...

    def samples(self, fleet: Fleet, t: float) -> ReplicaColumns: ...

    def counters(self, completions: float) -> Counters: ...

    def gauges(self, fleet: Fleet, t: float) -> Gauges: ...

    def result(self, run: FluidRun) -> SimResult: ...


@dataclass
class FluidRun:
    """What a fluid run leaves for its model's summary."""

    config: SimConfig
    policy_name: str
    judge_step: int
    end: float = 0.0
    paid_s: float = 0.0  # replica-seconds paid from the judging step on
    steps: list = field(default_factory=list)  # one row per step, as the model records it
    timeline: list = field(default_factory=list)
    decisions: list = field(default_factory=list)


class FluidLoop:
    """One run of one policy over per-step arrival counts, with `model`'s replicas. Deterministic."""

    def __init__(self, config: SimConfig, policy: Policy, model: ReplicaModel, counts: np.ndarray, step_s: float):
        self.config, self.policy, self.model, self.counts, self.step_s = config, policy, model, counts, step_s
        self.fleet = Fleet(config.initial_replicas, attached=getattr(model, "attached", None))
        self.gateway = Gateway()
        self.observer = Observer(config.scrape_interval_s, config.rate_window_s)
        self.desired, self.state = config.initial_replicas, policy.initial_state()
        self.arrivals = self.completions = 0.0
        self.next_scrape = config.clock_phase_s
        self.next_control = config.clock_phase_s + policy.interval_s
        self.next_timeline = config.timeline_interval_s
        self.timeline_mark = (0.0, 0.0)  # (time, arrivals) at the last timeline row
        self.run_out = FluidRun(config, policy.name, config.judge_step(step_s))

    def run(self) -> SimResult:
        n_steps, step, t = len(self.counts), 0, 0.0
        paid_before_judging = 0.0
        while step < n_steps or self.gateway.held > 0 or self.fleet.n.sum() > EMPTY:
            t = step * self.step_s
            reading = (
                self._reading(t) if self.model.scrape_at_step_start and self.next_scrape < t + self.step_s else None
            )
            if step == self.run_out.judge_step:
                paid_before_judging = self.fleet.paid_seconds(t)
            self._step(step, t, float(self.counts[step]) if step < n_steps else 0.0)
            self._clocks(t, reading)
            step += 1
        self.run_out.end = max(t + self.step_s, n_steps * self.step_s)
        self.run_out.paid_s = self.fleet.paid_seconds(self.run_out.end) - paid_before_judging
        return self.model.result(self.run_out)

    def _step(self, step: int, t: float, arrivals: float) -> None:
        """Arrivals join the gateway; what it holds goes to the serving replicas, which serve the step."""
        cfg, fleet, gateway = self.config, self.fleet, self.gateway
        if arrivals:
            gateway.hold(self.model.arrival(step, t, arrivals))
        expired = gateway.expire(t, cfg.queue_timeout_s)
        released = gateway.release() if len(fleet.serving(t)) and gateway.held > 0 else None
        self.model.serve(step, t, fleet, released)
        drained = fleet.drain(t + self.step_s)  # retired replicas leave once their last requests are done
        completions, row = self.model.settle(step, t, fleet, drained, arrivals, expired)
        self.run_out.steps.append(row)
        self.arrivals += arrivals
        self.completions += completions

    def _reading(self, at: float) -> tuple:
        """What a scrape at `at` records (but its time)."""
        counters = self.model.counters(self.completions)
        return (
            self.arrivals,
            self.completions,
            counters.prompt_tokens,
            counters.output_tokens,
            counters.ttft_counts.copy(),
            counters.itl_sum,
            counters.itl_count,
            self.model.samples(self.fleet, at),
            self.gateway.held,
        )

    def _clocks(self, t: float, reading: tuple | None) -> None:
        """The scrapes and control ticks that fall in the step, in time order (at a tie the scrape first, as in the
        request level), then its timeline rows."""
        step_end = t + self.step_s
        scrape_due = self.next_scrape < step_end
        if not (scrape_due or self.next_control < step_end or self.next_timeline <= step_end):
            return
        in_flight = self.model.observe(self.fleet, t, step_end, scrape_due and not self.model.scrape_at_step_start)
        if scrape_due and reading is None:
            reading = self._reading(step_end)
        while self.next_scrape < step_end or self.next_control < step_end:
            if self.next_scrape < self.next_control:
                self.observer.record(Scrape(self.next_scrape, *reading))
                self.next_scrape += self.config.scrape_interval_s
                continue
            self._control(self.next_control, in_flight + self.gateway.held)
            self.next_control += self.policy.interval_s
        while self.next_timeline <= step_end:
            self._timeline_row(self.next_timeline, t)
            self.next_timeline += self.config.timeline_interval_s

    def _control(self, now: float, in_flight: float) -> None:
        """The policy's answer scales the fleet (within max_replicas)."""
        fleet = self.fleet
        decision, self.state = decide(
            self.policy,
            self.observer,
            now,
            self.desired,
            fleet.counts(now),
            in_flight,
            self.state,
            self.run_out.decisions,
        )
        self.desired = max(0, min(decision.desired, self.config.max_replicas))
        fleet.scale_to(self.desired, now, self.config.cold_start_s)

    def _timeline_row(self, when: float, t: float) -> None:
        since, arrivals_before = self.timeline_mark
        gauges = self.model.gauges(self.fleet, t)
        row = timeline_row(
            when,
            self.desired,
            self.fleet.counts(when),
            self.arrivals - arrivals_before,
            since,
            gauges.running,
            gauges.waiting,
            self.gateway.held,
            gauges.kv_usage,
            gauges.gpu_util,
        )
        self.run_out.timeline.append(row)
        self.timeline_mark = (when, self.arrivals)
