"""A simulated replica: one `serving/engine` on the virtual clock, advanced lazily through decode stretches."""

from __future__ import annotations

import math
from typing import Protocol

from serving.engine.engine import DecodePlan, Engine
from serving.engine.profile import Profile
from serving.engine.scheduler import EngineRequest
from serving.fleet.state import ReplicaState as State


class Sink(Protocol):
    """Where a replica reports request milestones (the simulator's records and counters)."""

    def scheduled(self, request: EngineRequest, time: float) -> None: ...

    def first_token(self, request: EngineRequest, time: float) -> None: ...

    def finished(self, request: EngineRequest, time: float) -> None: ...


class SimReplica:
    """Starts when requested, serves from `ready_at`, drains on retirement, is gone when empty.

    The engine's clock may run ahead of the simulator's by up to one step; inside a pure-decode
    stretch the replica keeps a plan and applies it only when something must change.
    """

    def __init__(self, index: int, profile: Profile, requested_at: float, cold_start_s: float):
        self.index = index
        self.engine: Engine | None = Engine(profile)  # None once gone: a day of scaling leaves thousands behind
        self.gpus = profile.gpus
        self.requested_at = requested_at
        self.ready_at = requested_at + cold_start_s
        self.gone_at: float | None = None
        self.state = State.STARTING
        self.clock = self.ready_at
        self.outstanding = 0
        self.busy_s = 0.0
        self.tokens = 0
        self._plan: DecodePlan | None = None
        self._plan_start = 0.0

    @property
    def routable(self) -> bool:
        return self.state is State.READY

    def _run_steps(self, until: float, sink: Sink, materialize: bool) -> None:
        """Run every step that starts before `until`; a stretch ending later is left as a plan unless `materialize`."""
        engine = self.engine
        while engine is not None:
            plan = self._plan
            if plan is not None:
                steps = plan.steps_starting_before(until - self._plan_start)
                if steps < len(plan.ends) and not materialize:
                    return
                self._plan = None
                if steps:
                    self._apply(plan, steps, sink)
                if steps < len(plan.ends):
                    return
                continue
            if self.clock >= until or not engine.has_work:
                return
            plan = engine.plan_decode(at=self.clock)
            if plan is not None:
                self._plan, self._plan_start = plan, self.clock
                continue
            step = engine.step(self.clock)
            start, end = self.clock, self.clock + step.duration_s
            for request in step.batch.admitted:
                sink.scheduled(request, start)
            for request in step.emitted:
                if request.output_tokens == 1:
                    sink.first_token(request, end)
            for request in step.finished:
                self._finish(request, end, sink)
            self.busy_s += step.timing.gpu_busy_s
            self.tokens += len(step.emitted)
            self.clock = end

    def _apply(self, plan: DecodePlan, steps: int, sink: Sink) -> None:
        ff = self.engine.apply_decode(plan, steps)
        end = self._plan_start + ff.elapsed_s
        for request in ff.finished:
            self._finish(request, end, sink)
        self.busy_s += ff.gpu_busy_s
        self.tokens += ff.tokens
        self.clock = end

    def _finish(self, request: EngineRequest, time: float, sink: Sink) -> None:
        self.outstanding -= 1
        sink.finished(request, time)
        if self.state is State.STOPPING and self.outstanding == 0:
            self._exit(time)

    def _exit(self, time: float) -> None:
        self.state, self.gone_at, self.engine, self._plan = State.EXITED, time, None, None

    def sync(self, time: float, sink: Sink) -> None:
        """Bring visible state (finishes, outstanding counts) up to `time`."""
        self._run_steps(time, sink, materialize=False)

    def settle(self, time: float, sink: Sink) -> None:
        """Like sync, but also applies a partly elapsed stretch (for exact gauges and token counts)."""
        self._run_steps(time, sink, materialize=True)
        if self.engine is not None and not self.engine.has_work:
            self.clock = max(self.clock, time)

    def add(self, request: EngineRequest, time: float, sink: Sink) -> None:
        """A request joins the first step chosen at or after `time`: one that starts then, unless the engine
        schedules asynchronously and chose it while the step before ran (`Engine.step_chosen_at`)."""
        self._run_steps(time, sink, materialize=True)
        if not self.engine.has_work:
            self.clock = max(self.clock, time)
        elif self.engine.step_chosen_at(self.clock) < time:  # the step chosen without it runs first
            self._run_steps(math.nextafter(self.clock, math.inf), sink, materialize=True)
        self.engine.add(request)
        self.outstanding += 1

    def retire(self, time: float) -> None:
        """Starting replicas vanish at once; ready ones drain and are gone after their last request."""
        if self.state is State.STARTING or (self.state is State.READY and self.outstanding == 0):
            self._exit(max(time, self.requested_at))
        elif self.state is State.READY:
            self.state = State.STOPPING

    def gpu_seconds(self, until: float, since: float = 0.0) -> float:
        """Paid time within [since, until]: from the request for the replica until it is gone (starting replicas cost too)."""
        end = self.gone_at if self.gone_at is not None else until
        return max(0.0, end - max(self.requested_at, since)) * self.gpus
