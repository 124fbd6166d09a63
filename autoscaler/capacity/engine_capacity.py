"""Capacity of one replica at the SLO, found on the engine model: the highest Poisson rate whose requests
meet TTFT and ITL targets at the wanted attainment, for a given prompt/output length mix."""

from __future__ import annotations

import logging

import numpy as np

from loadgen.workloads.workload import Workload
from serving.engine.profile import Profile

log = logging.getLogger(__name__)


def poisson_workload(rate: float, prompts: np.ndarray, outputs: np.ndarray, requests: int, seed: int) -> Workload:
    rng = np.random.default_rng(seed)
    arrival = np.cumsum(rng.exponential(1.0 / rate, requests))
    index = rng.integers(0, len(prompts), requests)
    return Workload(
        f"poisson {rate:.3g}/s", arrival - arrival[0], np.asarray(prompts)[index], np.asarray(outputs)[index]
    )


def attainment_at(
    profile: Profile,
    rate: float,
    prompts,
    outputs,
    slo_ttft_s: float,
    slo_itl_s: float,
    requests: int = 800,
    seed: int = 0,
    min_duration_s: float = 60.0,
) -> float:
    """SLO attainment of one replica under Poisson arrivals at `rate`, over at least `min_duration_s` of
    arrivals (short runs never reach the steady state where the queue and the batch settle)."""
    from autoscaler.sim.baselines.static import Static
    from autoscaler.sim.config import SimConfig
    from autoscaler.sim.request.simulator import Simulator

    requests = max(requests, int(rate * min_duration_s))
    workload = poisson_workload(rate, prompts, outputs, requests, seed)
    config = SimConfig(
        profile=profile,
        slo_ttft_s=slo_ttft_s,
        slo_itl_s=slo_itl_s,
        cold_start_s=0.0,
        initial_replicas=1,
        scrape_interval_s=3600.0,
        timeline_interval_s=3600.0,
    )
    return Simulator(config, workload, Static(1, interval_s=3600.0)).run().summary["slo_attainment"]


def slo_capacity(
    profile: Profile,
    prompts,
    outputs,
    slo_ttft_s: float,
    slo_itl_s: float,
    attainment: float = 0.99,
    requests: int = 800,
    seed: int = 0,
    tolerance: float = 0.02,
) -> float:
    """Requests per second one replica carries at `attainment` within both SLOs (binary search).

    Where even an idle replica misses the goal (prompts too long to prefill within the TTFT target), no rate
    meets it: the search then runs at the SLO scaled by the least power of two an idle replica meets, so the
    capacity still keeps queueing within a like share of the unavoidable latency (and a warning says so)."""
    for doubling in range(MAX_DOUBLINGS + 1):
        scale = 2.0**doubling

        def meets(rate: float, scale: float = scale) -> bool:
            got = attainment_at(profile, rate, prompts, outputs, slo_ttft_s * scale, slo_itl_s * scale, requests, seed)
            return got >= attainment

        if doubling and not meets(IDLE_RATE):
            continue
        capacity = _highest_rate(meets, tolerance)
        if capacity > 0:
            if doubling:
                log.warning(
                    "no replica meets TTFT %.3g s / ITL %.3g s at %.0f%% attainment; capacity taken at %g times both",
                    slo_ttft_s,
                    slo_itl_s,
                    100 * attainment,
                    scale,
                )
            return capacity
    raise ValueError(
        f"no replica of {profile.name} meets {100 * attainment:.0f}% attainment even at {2**MAX_DOUBLINGS} times "
        f"the SLO (TTFT {slo_ttft_s} s, ITL {slo_itl_s} s)"
    )


IDLE_RATE = 1e-4  # requests/s at which a replica's requests almost never overlap
MAX_DOUBLINGS = 10


def _highest_rate(meets, tolerance: float) -> float:
    """The highest rate for which `meets(rate)` holds, within `tolerance`; 0 where none above IDLE_RATE does."""
    lo, hi = 0.0, 1.0
    while meets(hi):
        lo, hi = hi, hi * 2
        if hi > 1e5:
            break
    while hi - lo > tolerance * max(hi, 1e-9):
        if hi < IDLE_RATE * 10:  # bisecting toward zero: nothing is met at any useful rate
            return 0.0
        mid = (lo + hi) / 2
        if meets(mid):
            lo = mid
        else:
            hi = mid
    return lo
