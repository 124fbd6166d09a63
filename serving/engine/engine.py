"""One vLLM replica as a pure state machine: add requests, run a step, learn its duration and outputs."""

from __future__ import annotations

from dataclasses import dataclass

from serving.engine.profile import Profile
from serving.engine.scheduler import EngineRequest, ScheduledBatch, Scheduler
from serving.engine.steptime import StepTimeModel, StepTiming


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


class Engine:
    """Scheduler + step-time model for one profile. Clock-agnostic: callers own time."""

    def __init__(self, profile: Profile):
        self.profile = profile
        self.steptime = StepTimeModel(profile)
        self.scheduler = Scheduler(profile.scheduler, profile.num_gpu_blocks, profile.model.max_model_len)

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

    def step(self) -> StepResult:
        """Schedule a batch, price it, and apply its outputs (the driver reveals them after the duration)."""
        batch = self.scheduler.schedule()
        timing = self.steptime.timing(batch.shape)
        emitted, finished = self.scheduler.complete(batch)
        return StepResult(batch, timing, emitted, finished)

    def run_to_completion(self, requests: list[EngineRequest], max_steps: int = 10_000_000) -> float:
        """Offline batch (like `vllm bench latency/throughput`): all requests at t=0; returns elapsed seconds."""
        for request in requests:
            self.add(request)
        elapsed, steps = 0.0, 0
        while self.has_work:
            elapsed += self.step().duration_s
            steps += 1
            if steps > max_steps:
                raise RuntimeError("engine made no progress")
        return elapsed
