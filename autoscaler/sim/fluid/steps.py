"""Fluid mode's side of the fleet loop: the trace as steps of arrival counts, each served by every replica at once
through a ReplicaModel (load tables, cohorts) over the fleet's arrays; the clocks that fall in a step come after it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from autoscaler.policy.base import Policy
from autoscaler.sim.config import SimConfig
from autoscaler.sim.fluid.fleet import EMPTY, Fleet
from autoscaler.sim.gateway import Released
from autoscaler.sim.loop import FleetLoop, Gauges, Run
from autoscaler.sim.observe import Scrape
from autoscaler.sim.results import SimResult
from autoscaler.snapshot import ReplicaColumns


@dataclass(frozen=True)
class Counters:
    """A scrape's counters that the replica model keeps (the loop keeps arrivals and completions)."""

    prompt_tokens: float
    output_tokens: float
    ttft_counts: np.ndarray
    itl_sum: float
    itl_count: float


class ReplicaModel(Protocol):
    """How a fleet's replicas serve one step (load tables, cohorts). The steps own the fleet's arrays and the count
    of completions, the loop the gateway, the arrivals and the clocks; the model owns what its replicas hold."""

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


def run_steps(config: SimConfig, policy: Policy, model: ReplicaModel, counts: np.ndarray, step_s: float) -> SimResult:
    """One fluid run of one policy over per-step arrival counts, with `model`'s replicas."""
    return FleetLoop(config, policy, Steps(config, model, counts, step_s)).run()


class Steps:
    """The FleetModel of fluid mode: step k serves the arrivals of [k*step_s, (k+1)*step_s); the scrapes and control
    ticks in that span, then its timeline rows (those in (k*step_s, (k+1)*step_s]), read the fleet after it."""

    def __init__(self, config: SimConfig, model: ReplicaModel, counts: np.ndarray, step_s: float):
        self.config, self.model, self.arrival_counts, self.step_s = config, model, counts, step_s
        self.fleet = Fleet(config.initial_replicas, attached=getattr(model, "attached", None))
        self.step, self.completions = 0, 0.0
        self.paid_before_judging = 0.0
        self.run_out = FluidRun(config, "", config.judge_step(step_s))
        self._in_flight: float | None = None  # observed after the step, at its first clock
        self._scrape_due = False  # a scrape falls in the step

    # ---- the loop's time order --------------------------------------------------------------
    def next_key(self, loop: FleetLoop) -> tuple | None:
        """The next step, while the trace lasts or requests remain; then None once the last step's clocks are done."""
        key = (self.step, -1)
        if self.step < len(self.arrival_counts) or loop.gateway.held > 0 or self.fleet.n.sum() > EMPTY:
            return key
        return key if loop.due_before(key) else None

    def clock_key(self, when: float, kind: str, order: int) -> tuple:
        """A clock tick sorts into the step it falls in: scrapes and control ticks by time (control first at a tie),
        then the timeline rows, whose span ends with the step."""
        dt, step = self.step_s, max(0, int(when // self.step_s))
        if kind == "timeline":
            while step > 0 and when <= (step - 1) * dt + dt:
                step -= 1
            while when > step * dt + dt:
                step += 1
            return (step, 1, when, 0, order)
        while step > 0 and when < (step - 1) * dt + dt:
            step -= 1
        while when >= step * dt + dt:
            step += 1
        return (step, 0, when, 0 if kind == "control" else 1, order)

    # ---- a step --------------------------------------------------------------------------------
    def advance(self, loop: FleetLoop) -> None:
        """Arrivals join the gateway; what it holds goes to the serving replicas, which serve the step; retired
        replicas leave once their last requests are done."""
        model, fleet, gateway, step = self.model, self.fleet, loop.gateway, self.step
        t = step * self.step_s
        self._scrape_due = loop.next_scrape < t + self.step_s
        loop.held_reading = loop.read(t) if self._scrape_due and model.scrape_at_step_start else None
        if step == self.run_out.judge_step:
            self.paid_before_judging = fleet.paid_seconds(t)
        arrivals = float(self.arrival_counts[step]) if step < len(self.arrival_counts) else 0.0
        if arrivals:
            gateway.hold(model.arrival(step, t, arrivals))
        expired = sum(entry[1] for entry in gateway.expire(t, self.config.queue_timeout_s))
        released = gateway.release() if len(fleet.serving(t)) and gateway.held > 0 else None
        model.serve(step, t, fleet, released)
        drained = fleet.drain(t + self.step_s)
        completions, row = model.settle(step, t, fleet, drained, arrivals, expired)
        self.run_out.steps.append(row)
        loop.arrivals += arrivals
        self.completions += completions
        self.step, self._in_flight = step + 1, None

    def on_event(self, loop: FleetLoop, now: float, kind: str, payload) -> None:
        raise ValueError(f"fluid mode has no event {kind!r}")

    # ---- what the clocks read, after the step ----------------------------------------------------
    def _observed(self) -> float:
        """The model's gauges after the step, once per step (a scrape in it resets the busy time DCGM reads);
        returns the requests inside as the gateway counts them."""
        if self._in_flight is None:
            t = (self.step - 1) * self.step_s
            scrape_due = self._scrape_due and not self.model.scrape_at_step_start
            self._in_flight = self.model.observe(self.fleet, t, t + self.step_s, scrape_due)
        return self._in_flight

    def reading(self, loop: FleetLoop, now: float) -> Scrape:
        if not self.model.scrape_at_step_start:  # else read before the step (no step has been observed yet)
            self._observed()
        c = self.model.counters(self.completions)
        samples = self.model.samples(self.fleet, now)
        counters = (c.prompt_tokens, c.output_tokens, c.ttft_counts, c.itl_sum, c.itl_count)
        return Scrape(now, 0.0, self.completions, *counters, samples, 0.0)

    def in_flight(self, now: float) -> float:
        return self._observed()

    def counts(self, now: float) -> tuple[int, int, int]:
        return self.fleet.counts(now)

    def scale_to(self, loop: FleetLoop, desired: int, now: float) -> None:
        self.fleet.scale_to(desired, now, self.config.cold_start_s)

    def gauges(self, now: float, since: float) -> Gauges:
        self._observed()
        return self.model.gauges(self.fleet, (self.step - 1) * self.step_s)

    def result(self, run: Run) -> SimResult:
        out = self.run_out
        out.policy_name, out.timeline, out.decisions = run.policy_name, run.timeline, run.decisions
        out.end = max(max(self.step - 1, 0) * self.step_s + self.step_s, len(self.arrival_counts) * self.step_s)
        out.paid_s = self.fleet.paid_seconds(out.end) - self.paid_before_judging
        return self.model.result(out)
