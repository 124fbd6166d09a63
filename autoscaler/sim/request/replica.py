"""A simulated replica: one `serving/engine` on the virtual clock, advanced lazily through decode stretches, its
outputs streamed by the API server's one worker (`serving.engine.frontend`) where the profile gives it costs."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from serving.engine.engine import DecodePlan, Engine, StepResult
from serving.engine.frontend import Frontend
from serving.engine.profile import Profile
from serving.engine.scheduler import EngineRequest
from serving.fleet.state import ReplicaState as State


class Sink(Protocol):
    """Where a replica reports request milestones (the simulator's records and counters)."""

    def scheduled(self, request: EngineRequest, time: float) -> None: ...

    def first_token(self, request: EngineRequest, time: float) -> None: ...

    def finished(self, request: EngineRequest, time: float) -> None: ...


@dataclass
class _Outputs:
    """Steps' outputs the server's worker has yet to stream: `per_step` tokens at each of `ends`; `marks` are the
    last step's (position, request, its first token, its last) whose times the records want."""

    ends: np.ndarray
    per_step: int
    marks: list[tuple[int, EngineRequest, bool, bool]]


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
        frontend = Frontend(profile.efficiency)  # None without costs: each client sees its token when a step ends
        self.frontend = frontend if frontend.has_costs else None
        self._unstreamed: deque[_Outputs] = deque()  # in the order they reach the worker

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
            self._step(sink)

    def _step(self, sink: Sink) -> None:
        """One engine step from the replica's clock."""
        step = self.engine.step(self.clock)
        start, end = self.clock, self.clock + step.duration_s
        for request in step.batch.admitted:
            sink.scheduled(request, start)
        self._step_outputs(step, end, sink)
        self.busy_s += step.timing.gpu_busy_s
        self.tokens += len(step.emitted)
        self.clock = end

    def _step_outputs(self, step: StepResult, end: float, sink: Sink) -> None:
        """A step's first tokens and ends: seen when it ends, or queued for the server's worker to stream."""
        if self.frontend is None:
            for request in step.emitted:
                if request.output_tokens == 1:
                    sink.first_token(request, end)
            for request in step.finished:
                self._finish(request, end, sink)
            return
        ended = {id(request) for request in step.finished}
        marks = [
            (position, request, request.output_tokens == 1, id(request) in ended)
            for position, request in enumerate(step.emitted)
            if request.output_tokens == 1 or id(request) in ended
        ]
        self._unstreamed.append(_Outputs(np.array([end]), len(step.emitted), marks))

    def _apply(self, plan: DecodePlan, steps: int, sink: Sink) -> None:
        """A decode stretch's first `steps` steps; the requests they end are seen when the last ends, or queued for
        the worker in their place in the batch."""
        running = self.engine.scheduler.running
        position = {id(request): i for i, request in enumerate(running)} if self.frontend is not None else {}
        ff = self.engine.apply_decode(plan, steps)
        end = self._plan_start + ff.elapsed_s
        if self.frontend is None:
            for request in ff.finished:
                self._finish(request, end, sink)
        else:
            marks = sorted(((position[id(r)], r, False, True) for r in ff.finished), key=lambda mark: mark[0])
            self._unstreamed.append(_Outputs(self._plan_start + plan.ends[:steps], plan.num_seqs, marks))
        self.busy_s += ff.gpu_busy_s
        self.tokens += ff.tokens
        self.clock = end

    def _stream_until(self, time: float, sink: Sink) -> None:
        """The worker streams, in turn, the outputs that reached it by `time`."""
        while self._unstreamed and self._unstreamed[0].ends[0] <= time:
            outputs = self._unstreamed[0]
            due = int(np.searchsorted(outputs.ends, time, side="right"))
            whole = due == len(outputs.ends)
            self.frontend.stream_steps(outputs.ends[: due - whole], outputs.per_step)
            if not whole:
                outputs.ends = outputs.ends[due:]
                return
            self._unstreamed.popleft()
            marks = [(position, last) for position, _, _, last in outputs.marks]
            times = self.frontend.stream_step(float(outputs.ends[-1]), outputs.per_step, marks)
            for (_, request, first, last), at in zip(outputs.marks, times):
                self._reached_client(request, first, last, at, sink)

    def _reached_client(self, request: EngineRequest, first: bool, last: bool, time: float, sink: Sink) -> None:
        if first:
            sink.first_token(request, time)
        if last:
            self._finish(request, time, sink)

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
        self._stream_until(time, sink)

    def settle(self, time: float, sink: Sink) -> None:
        """Like sync, but also applies a partly elapsed stretch (for exact gauges and token counts)."""
        self._run_steps(time, sink, materialize=True)
        self._stream_until(time, sink)
        if self.engine is not None and not self.engine.has_work:
            self.clock = max(self.clock, time)

    def add(self, request: EngineRequest, time: float, sink: Sink) -> None:
        """A request reaches the server's worker at `time`, which hands it on after the outputs before it; it joins
        the first step chosen then or later: one that starts then, unless the engine schedules asynchronously and
        chose it while the step before ran (`Engine.step_chosen_at`)."""
        self._run_steps(time, sink, materialize=True)
        if self.frontend is not None:
            self._stream_until(time, sink)
            time = self.frontend.admit(time)
        self._run_steps(time, sink, materialize=True)
        if not self.engine.has_work:
            self.clock = max(self.clock, time)
        elif self.engine.step_chosen_at(self.clock) < time:  # the step chosen without it runs first
            self._step(sink)
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
