"""Capacity of one replica at the SLO, found on the engine model: the highest Poisson rate whose requests
meet TTFT and ITL targets at the wanted attainment, for a given prompt/output length mix."""

from __future__ import annotations

import numpy as np

from loadgen.workloads.workload import Workload
from serving.engine.profile import Profile


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
    from autoscaler.sim.simulator import SimConfig, Simulator

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
    """Requests per second one replica carries at `attainment` within both SLOs (binary search)."""
    lo, hi = 0.0, 1.0
    while attainment_at(profile, hi, prompts, outputs, slo_ttft_s, slo_itl_s, requests, seed) >= attainment:
        lo, hi = hi, hi * 2
        if hi > 1e5:
            break
    while hi - lo > tolerance * max(hi, 1e-9):
        mid = (lo + hi) / 2
        if attainment_at(profile, mid, prompts, outputs, slo_ttft_s, slo_itl_s, requests, seed) >= attainment:
            lo = mid
        else:
            hi = mid
    return lo
