"""Measure a profile's capacity atlas on the engine model: per length mix, the saturated throughput of one replica,
then its SLO attainment at each offered rate over the threshold grid (seconds of simulation per cell)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from autoscaler.capacity import atlas as grid
from autoscaler.capacity.atlas import Atlas
from autoscaler.capacity.engine_capacity import poisson_workload
from autoscaler.capacity.mix_cells import within_model_len
from loadgen.workloads.servegen import LengthSampler
from loadgen.workloads.workload import Workload
from serving.engine.profile import Profile

LENGTH_SIGMA = 0.6  # log-normal spread of lengths around a cell's means, as the autoscaler's capacity table
SETTLE_SHARE = 0.25  # requests that arrive in the first quarter of a run only warm the replica up


def cell_lengths(profile: Profile, prompt_mean: float, output_mean: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    lengths = LengthSampler.lognormal(prompt_mean, output_mean, sigma=LENGTH_SIGMA, seed=seed, n=4000)
    return within_model_len(lengths.prompts, lengths.outputs, profile.model.max_model_len)


def _run_fleet(profile: Profile, workload: Workload, replicas: int = 1):
    """Records of a fixed fleet, warm from the start, the gateway routing each request to the least busy replica."""
    from autoscaler.sim.baselines.static import Static
    from autoscaler.sim.config import SimConfig
    from autoscaler.sim.request.simulator import Simulator

    config = SimConfig(
        profile=profile,
        cold_start_s=0.0,
        initial_replicas=replicas,
        scrape_interval_s=3600.0,
        timeline_interval_s=3600.0,
    )
    return Simulator(config, workload, Static(replicas, interval_s=3600.0)).run().records


def saturated_rps(profile: Profile, prompts: np.ndarray, outputs: np.ndarray, seed: int, requests: int = 1500) -> float:
    """Completions/s of a replica working off a burst that arrived at once: its batch full, the middle half of the
    run (the first completions come early and the last ones drain a shrinking batch)."""
    pick = np.random.default_rng(seed).integers(0, len(prompts), requests)
    records = _run_fleet(profile, Workload("burst", np.zeros(requests), prompts[pick], outputs[pick]))
    finish = np.sort((records["arrival_s"] + records["e2e_s"]).to_numpy())
    lo, hi = finish[requests // 4], finish[3 * requests // 4]
    return (requests // 2) / max(hi - lo, 1e-9)


def attainment_cube(ok: np.ndarray, ttft_s: np.ndarray, itl_s: np.ndarray) -> np.ndarray:
    """Share of requests within each (TTFT threshold, ITL threshold) pair; failed requests miss every pair."""
    within_ttft = (ok[:, None] & (ttft_s[:, None] <= np.asarray(grid.TTFT_THRESHOLDS_S)[None, :])).astype(np.float64)
    within_itl = (itl_s[:, None] <= np.asarray(grid.ITL_THRESHOLDS_S)[None, :]).astype(np.float64)
    return within_ttft.T @ within_itl / max(len(ok), 1)


def quantiles(latency_s: np.ndarray, ok: np.ndarray) -> np.ndarray:
    return np.quantile(np.where(ok, latency_s, grid.FAILED_S), grid.LEVELS)


def attainment_at(
    profile: Profile,
    prompts: np.ndarray,
    outputs: np.ndarray,
    rate: float,
    seed: int,
    duration_s: float,
    replicas: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The attainment cube and the TTFT and ITL quantiles at one offered rate per replica, over the requests that
    arrived after the warm-up share (a fleet's runs may be shorter: it sees more requests a second)."""
    requests = int(np.clip(replicas * rate * duration_s, 800, 2500 if replicas == 1 else 8000))
    workload = poisson_workload(replicas * rate, prompts, outputs, requests, seed)
    records = _run_fleet(profile, workload, replicas)
    settled = records[records["arrival_s"] > SETTLE_SHARE * workload.arrival_s[-1]]
    itl = settled["mean_itl_s"].fillna(0.0).to_numpy()
    ok, ttft = settled["ok"].to_numpy(dtype=bool), settled["ttft_s"].to_numpy()
    return attainment_cube(ok, ttft, itl), quantiles(ttft, ok), quantiles(itl, ok)


def measure_cell(profile: Profile, prompt_mean: float, output_mean: float, seed: int = 0) -> tuple:
    """(saturated req/s, then per fleet size and rate fraction: attainment cubes, TTFT and ITL quantiles); runs
    near saturation last longer: the batch settles slowly."""
    prompts, outputs = cell_lengths(profile, prompt_mean, output_mean, seed)
    mu = saturated_rps(profile, prompts, outputs, seed)
    per_size = []
    for replicas in grid.FLEET_SIZES:
        rows = [
            attainment_at(profile, prompts, outputs, f * mu, seed, 180.0 if f >= 0.8 else 90.0, replicas)
            for f in grid.RATE_FRACTIONS
        ]
        per_size.append([np.stack(column) for column in zip(*rows)])
    return (mu, *(np.stack(column) for column in zip(*per_size)))


def build_atlas(
    profile: Profile, name: str, digest: str, seed: int = 0, progress: Callable[[str], None] | None = None
) -> Atlas:
    shape = (len(grid.PROMPT_MEANS), len(grid.OUTPUT_MEANS))
    sized = (*shape, len(grid.FLEET_SIZES), len(grid.RATE_FRACTIONS))
    saturated = np.zeros(shape)
    cube = np.zeros((*sized, len(grid.TTFT_THRESHOLDS_S), len(grid.ITL_THRESHOLDS_S)))
    ttft_q, itl_q = np.zeros((*sized, len(grid.LEVELS))), np.zeros((*sized, len(grid.LEVELS)))
    for i, prompt in enumerate(grid.PROMPT_MEANS):
        for j, output in enumerate(grid.OUTPUT_MEANS):
            saturated[i, j], cube[i, j], ttft_q[i, j], itl_q[i, j] = measure_cell(profile, prompt, output, seed)
            if progress:
                progress(f"{name}: prompt {prompt:g}, output {output:g}: saturated {saturated[i, j]:.3g} req/s")
    return Atlas(name, digest, saturated, cube, ttft_q, itl_q)
