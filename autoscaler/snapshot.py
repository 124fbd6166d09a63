"""What a scaling policy sees each control interval: built from Prometheus in production, from the simulator's scrapes in tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple


class ReplicaSample(NamedTuple):
    """One ready replica's gauges as last scraped (a NamedTuple: fleets of hundreds are built every scrape)."""

    running: float
    waiting: float
    kv_usage: float  # 0-1
    gpu_util: float  # DCGM_FI_DEV_GPU_UTIL, percent


@dataclass(frozen=True)
class Snapshot:
    time_s: float
    desired: int  # replicas currently asked for (the scale subresource's spec.replicas)
    ready: int
    starting: int
    stopping: int
    replicas: tuple[ReplicaSample, ...] = ()  # ready replicas with a sample
    arrival_rate: float = 0.0  # requests/s reaching the gateway, over the rate window
    completion_rate: float = 0.0  # requests/s finished by the engines
    prompt_tokens_rate: float = 0.0
    output_tokens_rate: float = 0.0
    ttft_p95_s: float = float("nan")
    itl_mean_s: float = float("nan")
    gateway_queue: float = 0.0  # requests held at the gateway for want of a ready replica
    sample_age_s: float = 0.0  # age of the newest sample behind these numbers
    window_s: float = 60.0
    stale: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def running(self) -> float:
        return sum(r.running for r in self.replicas)

    @property
    def waiting(self) -> float:
        return sum(r.waiting for r in self.replicas)

    @property
    def in_flight(self) -> float:
        """Requests in the system: running and waiting in engines, plus queued at the gateway."""
        return self.running + self.waiting + self.gateway_queue
