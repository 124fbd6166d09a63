"""One vLLM replica as a pure state machine: add requests, run a step, learn its duration and outputs."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from serving.engine.power import PowerGovernor
from serving.engine.profile import BLOCK_SIZE, Profile
from serving.engine.scheduler import EngineRequest, ScheduledBatch, Scheduler
from serving.engine.steptime import BatchShape, StepTimeModel, StepTiming


@dataclass
class StepResult:
    """What one engine step did. The driver waits `timing.duration_s` on its clock, then delivers the outputs."""

    batch: ScheduledBatch
    timing: StepTiming
    emitted: list[EngineRequest]  # requests that produced one output token this step
    finished: list[EngineRequest]

    @property
    def duration_s(self) -> float:
        return self.timing.duration_s


@dataclass
class DecodePlan:
    """Cumulative end times (and GPU-busy times) of the decode steps ahead, from the plan's start."""

    num_seqs: int
    ends: np.ndarray
    busy: np.ndarray
    power_w: float = 0.0  # the board's draw over the stretch (its first step's), where the GPU has a power model
    start_s: float | None = None  # when the stretch starts, for the power limit's average (None: after the last step)

    def steps_starting_before(self, offset: float) -> int:
        """How many steps start before `offset` seconds into the plan (step 0 starts at 0)."""
        if offset <= 0:
            return 0
        return min(len(self.ends), 1 + int(np.searchsorted(self.ends, offset, side="left")))

    def end_of(self, steps: int) -> float:
        return float(self.ends[steps - 1]) if steps else 0.0


@dataclass
class FastForward:
    """Many pure-decode steps taken at once; `finished` requests ended with the last of them."""

    steps: int
    elapsed_s: float
    gpu_busy_s: float
    tokens: int
    finished: list[EngineRequest]


class Engine:
    """Scheduler + step-time model for one profile. Clock-agnostic: callers own time."""

    def __init__(self, profile: Profile):
        self.profile = profile
        self.steptime = StepTimeModel(profile)
        self.scheduler = Scheduler(profile.scheduler, profile.num_gpu_blocks, profile.model.max_model_len)
        self.governor = PowerGovernor(profile.gpu) if profile.gpu.power_capped else None
        self.last_step_start: float | None = None  # when the last step taken started, where the caller said

    def add(self, request: EngineRequest) -> None:
        self.scheduler.add(request)

    def abort(self, request: EngineRequest) -> None:
        self.scheduler.abort(request)

    @property
    def has_work(self) -> bool:
        return self.scheduler.has_work

    @property
    def num_running(self) -> int:
        return len(self.scheduler.running)

    @property
    def num_waiting(self) -> int:
        return len(self.scheduler.waiting)

    @property
    def kv_usage(self) -> float:
        return self.scheduler.kv.usage

    def step_chosen_at(self, start: float) -> float:
        """When vLLM chose the step that starts at `start`: scheduling asynchronously, it chooses a step while the
        one before runs, so a busy engine's next step was chosen at the last one's start; otherwise at `start`. A
        request that reached the engine core after that joins a later step."""
        busy = self.scheduler.has_work and self.last_step_start is not None
        return self.last_step_start if busy and self.profile.scheduler.async_scheduling else start

    def take_arrivals(self, arrivals: deque[tuple[float, EngineRequest]], start: float) -> None:
        """Add, in order, the (reached the engine core at, request) `arrivals` that came by the time the step
        starting at `start` was chosen (`step_chosen_at`); the rest wait for a later step."""
        chosen = self.step_chosen_at(start)
        while arrivals and arrivals[0][0] <= chosen:
            self.add(arrivals.popleft()[1])

    def step(self, at: float | None = None) -> StepResult:
        """Schedule a batch, price it, and apply its outputs (the driver reveals them after the duration). `at`: when
        the step starts, for a GPU with a power limit (its average falls while the engine idles); by default right
        after the last step."""
        batch = self.scheduler.schedule()
        self.last_step_start = at
        timing = self._price(batch.shape, at)
        emitted, finished = self.scheduler.complete(batch)
        return StepResult(batch, timing, emitted, finished)

    def _price(self, shape, at: float | None) -> StepTiming:
        if self.governor is None:
            return self.steptime.timing(shape)
        timing = self.steptime.timing(shape, self._allowance(at))
        self.governor.record(self._start(at), timing.duration_s, timing.power_w)
        return timing

    def _start(self, at: float | None) -> float:
        return self.governor.at if at is None else at

    def _allowance(self, at: float | None):
        """What a step starting at `at` may draw, by its full-clock duration: the governor's allowance."""
        start = self._start(at)
        return lambda duration: self.governor.allowed_w(start, duration)

    def plan_decode(self, max_steps: int = 100_000, at: float | None = None) -> DecodePlan | None:
        """If the batch is pure decode and nothing can join it, the step times of the stretch ahead:
        up to the first finish or the step where the KV cache would run out. Mutates nothing. `at`: when the
        stretch starts, as for `step`."""
        sched = self.scheduler
        running = sched.running
        n = len(running)
        if n == 0 or (sched.waiting and n < sched.config.max_num_seqs) or n > sched.config.max_num_batched_tokens:
            return None  # idle, or a waiting request may be admitted at the next step
        computed = np.empty(n, dtype=np.int64)
        remaining = np.empty(n, dtype=np.int64)
        held = np.empty(n, dtype=np.int64)
        for i, r in enumerate(running):
            if r.num_computed_tokens != r.num_tokens - 1 or r.output_tokens == 0:
                return None  # a prefill (or a chunk of one) is in the batch
            computed[i] = r.num_computed_tokens
            remaining[i] = r.last_output - r.output_tokens
            held[i] = len(sched.kv.held(r.request_id))
        limit = int(min(remaining.min(), max_steps))
        free = sched.kv.free_blocks
        need = lambda k: int(np.sum(np.maximum(0, -(-(computed + k) // BLOCK_SIZE) - held)))
        if need(limit) > free:
            lo, hi = 0, limit  # the largest k whose new blocks fit
            while lo < hi:
                mid = (lo + hi + 1) // 2
                lo, hi = (mid, hi) if need(mid) <= free else (lo, mid - 1)
            limit = lo
        if limit < 1:
            return None
        kv0 = float(np.sum(computed + 1))
        power = 0.0
        if self.governor is not None:  # step by step while the power limit holds the clock down
            first = self.steptime.timing(BatchShape(n, n, n, int(kv0), kv0), self._allowance(at))
            if first.clock < 1.0:
                return None
            power = first.power_w
        durations, busy = self.steptime.decode_run(n, kv0, kv0, limit)
        ends = np.cumsum(durations)
        return DecodePlan(n, ends, np.cumsum(busy), power, at)

    def apply_decode(self, plan: DecodePlan, steps: int) -> FastForward:
        """Take the first `steps` steps of a plan made on the current state."""
        sched = self.scheduler
        if not 1 <= steps <= len(plan.ends):
            raise ValueError(f"steps must be within 1..{len(plan.ends)}, got {steps}")
        holdings = sched.kv.holdings
        for r in sched.running:
            r.num_computed_tokens += steps
            r.output_tokens += steps
            held = holdings.get(r.request_id)
            # as in the scheduler's step: only a request past its last block asks the cache, only one at its end stops
            if held is None or len(held) * BLOCK_SIZE < r.num_computed_tokens:
                if not sched.kv.allocate(r.request_id, r.num_computed_tokens):
                    raise AssertionError("decode plan ran out of KV blocks")
        ending = [r for r in sched.running if r.output_tokens >= r.last_output]
        finished = [r for r in ending if sched.finish_if_done(r)]
        if self.governor is not None:
            self.governor.record(self._start(plan.start_s), float(plan.ends[steps - 1]), plan.power_w)
        if plan.start_s is not None:
            self.last_step_start = plan.start_s + plan.end_of(steps - 1)
        return FastForward(
            steps, float(plan.ends[steps - 1]), float(plan.busy[steps - 1]), steps * plan.num_seqs, finished
        )

    def fast_forward(self, time_budget: float, max_steps: int = 100_000) -> FastForward | None:
        """Exactly what repeated `step()` calls would do for the decode steps that start before `time_budget`
        seconds from now. None when the engine is not in such a stretch (then call `step()`)."""
        plan = self.plan_decode(max_steps) if time_budget > 0 else None
        if plan is None:
            return None
        steps = plan.steps_starting_before(time_budget)
        return self.apply_decode(plan, steps) if steps else None
