"""Per-replica capacity at the SLO, corrected online: the engine-derived figure times a bounded factor that falls
when the fleet misses its latency targets below that capacity and creeps back up when it meets them near it."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class CapacityCorrection:
    low: float = 0.7  # the factor never leaves [low, high]
    high: float = 1.2
    down_step: float = 0.95  # per interval with a miss below capacity
    up_step: float = 1.01  # per interval well within the SLO near capacity
    near: float = 0.75  # "near capacity": at least this share of it per ready replica...
    over: float = 1.5  # ...and not beyond this (a reading far past capacity with good latency is not to be trusted)


def corrected(
    factor: float,
    rate_per_replica: float,
    capacity_rps: float,
    ttft_p95_s: float,
    itl_mean_s: float,
    slo_ttft_s: float,
    slo_itl_s: float,
    rule: CapacityCorrection = CapacityCorrection(),
) -> float:
    """The next correction factor from one interval's observations. NaN latencies (no traffic) leave it alone."""
    if not (math.isfinite(ttft_p95_s) and math.isfinite(itl_mean_s)) or capacity_rps <= 0:
        return factor
    load = rate_per_replica / (capacity_rps * factor)
    if (ttft_p95_s > slo_ttft_s or itl_mean_s > slo_itl_s) and load < 1.0:
        factor *= rule.down_step  # missing the SLO where the model says there is room: it overestimates
    elif ttft_p95_s < 0.5 * slo_ttft_s and itl_mean_s < 0.7 * slo_itl_s and rule.near <= load <= rule.over:
        factor *= rule.up_step  # comfortably within near the model's limit: it may underestimate
    return min(rule.high, max(rule.low, factor))
