"""What every simulation mode is given: the replica profile, SLO targets, fleet bounds and the clocks."""

from __future__ import annotations

import math
from dataclasses import dataclass

from autoscaler import defaults
from serving.engine.profile import Profile


@dataclass(frozen=True)
class SimConfig:
    """One run's settings; every default comes from autoscaler.defaults."""

    profile: Profile
    slo_ttft_s: float = defaults.SLO_TTFT_S
    slo_itl_s: float = defaults.SLO_ITL_S
    cold_start_s: float = defaults.COLD_START_S
    price_per_gpu_hour: float = 0.0
    initial_replicas: int = defaults.INITIAL_REPLICAS
    max_replicas: int = defaults.MAX_REPLICAS
    scrape_interval_s: float = defaults.SCRAPE_INTERVAL_S
    rate_window_s: float = defaults.RATE_WINDOW_S
    queue_timeout_s: float = defaults.QUEUE_TIMEOUT_S
    timeline_interval_s: float = defaults.TIMELINE_INTERVAL_S
    seed: int = 0
    judge_from_s: float = 0.0  # the summary covers [judge_from_s, end): what comes before is the policy's to learn from
    # where the scrape and control clocks stand against the trace's start (they are not aligned in a cluster)
    clock_phase_s: float = 0.0

    def judge_step(self, step_s: float) -> int:
        """The first fluid step of `step_s` the summary covers."""
        return int(math.ceil(self.judge_from_s / step_s))
