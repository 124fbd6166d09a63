"""What a simulation replays besides the trace: a fluid run's per-step input, the load tables and replica capacity
measured on the engine, and ServeGen's synthesized counts, each kept on disk (DiskCache) and in the process."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from autoscaler.capacity.engine_capacity import slo_capacity
from autoscaler.sim.args import SimulateArgs, model_seed
from autoscaler.sim.baselines.oracle import ArrivalTimes, FutureArrivals, StepCounts
from autoscaler.sim.config import SimConfig
from autoscaler.sim.fluid.fleet import counts_from_workload, work_from_workload
from autoscaler.sim.mix_periods import mix_periods
from loadgen.workloads.load import length_sampler
from loadgen.workloads.servegen import LengthSampler, load_servegen, window_counts
from loadgen.workloads.workload import Workload
from serving.common.disk_cache import DiskCache, files_digest


@dataclass
class FluidInput:
    """What a fluid run replays: arrivals per step, the length mix's load table, and what the oracle knows."""

    counts: np.ndarray
    step_s: float
    lengths: LengthSampler
    table: object  # LoadTable
    future: FutureArrivals
    name: str
    capacity_rps: Callable[[], float]  # one replica's requests/s at the SLO for the whole trace's mix (policies ask it)
    work: np.ndarray | None = None  # arrivals per step in requests of the mean mix, where lengths are known per request
    tables: list | None = None  # one LoadTable per length-mix period of a request trace, where it has more than one
    period_of_step: np.ndarray | None = None
    workload: Workload | None = None  # the request trace itself, where cohort replicas run it


def fluid_input(args: SimulateArgs, config: SimConfig, workload: Workload | None) -> FluidInput:
    """A ServeGen folder is read as per-step counts from its window rates (days at a time), for load-table replicas.
    A request trace is binned into 1 s steps and the oracle keeps its exact arrival times; cohort replicas take the
    trace itself, load-table replicas its counts with each request weighed by its lengths."""
    if workload is None:
        return _servegen_input(args, config)
    lengths = LengthSampler.from_workload(workload)
    if fluid_model(args, servegen=False) == "cohort":  # the engine's step times on cohorts: no load table to measure
        capacity = lambda: replica_capacity(args, config, workload)  # measured only if a policy asks
        counts = counts_from_workload(workload, 1.0)
        arrivals = ArrivalTimes(workload.arrival_s)
        return FluidInput(counts, 1.0, lengths, None, arrivals, workload.name, capacity, workload=workload)
    return _table_input(args, config, workload, lengths)


def _servegen_input(args: SimulateArgs, config: SimConfig) -> FluidInput:
    path = Path(args.trace)
    fluid_model(args, servegen=True)  # a bad choice fails here, before days of counts are synthesized
    windows = _servegen(str(path)).scaled(args.time_scale, args.rate_scale)
    # window rates change every 600 s; steps of about 15 s (the HPA's sync period) that tile a window
    step = windows.window_s / max(1, round(windows.window_s / 15.0))
    end = args.end_s / args.time_scale if args.end_s is not None else None
    start = args.start_s / args.time_scale
    counts = cached_window_counts(args, path, windows, step, start, end, (args.time_scale, args.rate_scale))
    lengths = _lengths(args.lengths_from)
    table = cached_table(args, config, lengths)
    return FluidInput(counts, step, lengths, table, StepCounts(counts, step), path.name, lambda: table.slo_capacity_rps)


def _table_input(args: SimulateArgs, config: SimConfig, workload: Workload, lengths: LengthSampler) -> FluidInput:
    """Where the trace's length mix changes (autoscaler.sim.mix_periods), each period gets the load table of its
    own mix."""
    step = 1.0
    counts, arrivals = counts_from_workload(workload, step), ArrivalTimes(workload.arrival_s)
    periods = mix_periods(workload.arrival_s, workload.prompt_tokens, workload.output_tokens)
    if periods.count == 1:
        table = cached_table(args, config, lengths)
        work = work_from_workload(workload, step, table.prompt_token_weight)
        return FluidInput(counts, step, lengths, table, arrivals, workload.name, lambda: table.slo_capacity_rps, work)
    owned = [periods.period_of_request == k for k in range(periods.count)]
    tables = [
        cached_table(args, config, LengthSampler(workload.prompt_tokens[mine], workload.output_tokens[mine]))
        for mine in owned
    ]
    whole = lambda: cached_table(args, config, lengths).slo_capacity_rps  # measured only if a policy asks
    weights = np.array([t.prompt_token_weight for t in tables])
    work = work_from_workload(workload, step, weights, periods.period_of_request)
    period_of_step = periods.period_of_steps(len(counts), step)
    return FluidInput(counts, step, lengths, tables[0], arrivals, workload.name, whole, work, tables, period_of_step)


def fluid_model(args: SimulateArgs, servegen: bool) -> str:
    """Which fluid replicas run a trace: cohorts in lockstep on a request trace's 1 s steps, load tables on a
    ServeGen folder's 15 s steps of rates (days of them; a step outlasts a request's time inside)."""
    if args.fluid_model not in ("auto", "cohort", "table"):
        raise ValueError(f"--fluid-model: {args.fluid_model!r} is not one of auto, cohort, table")
    if args.fluid_model == "cohort" and servegen:
        raise ValueError("--fluid-model cohort: a ServeGen folder has rates, not requests; use table (or auto)")
    return args.fluid_model if args.fluid_model != "auto" else ("table" if servegen else "cohort")


def replica_capacity(args: SimulateArgs, config: SimConfig, workload: Workload) -> float:
    """Requests/s one replica carries within the SLO for this workload's length mix (engine model; seconds to
    measure, so kept on disk like the load tables)."""
    rng = np.random.default_rng(args.seed)
    pick = rng.integers(0, len(workload), min(len(workload), 5000))
    prompts, outputs = workload.prompt_tokens[pick], workload.output_tokens[pick]
    return DiskCache(args.cache_dir)(
        "capacity",
        _engine_key(config, prompts, outputs),
        lambda: slo_capacity(config.profile, prompts, outputs, config.slo_ttft_s, config.slo_itl_s),
    )


def _engine_key(config: SimConfig, prompts: np.ndarray, outputs: np.ndarray, *more) -> tuple:
    """What a measurement on the engine depends on: the profile, the lengths, the SLO (and `more`)."""
    return (
        config.profile.model_dump(),
        prompts.tobytes(),
        outputs.tobytes(),
        config.slo_ttft_s,
        config.slo_itl_s,
        *more,
        TABLE_VERSION,
    )


_TABLES: dict = {}


def cached_table(args: SimulateArgs, config: SimConfig, lengths: LengthSampler):
    """One load table per (profile, SLO, length sample, seed) in this process (it costs seconds to measure, and is
    kept on disk too). Keyed by the sample itself: two traces' lengths never share a table."""
    seed = model_seed(args)
    prompts, outputs = lengths.sample(4000, np.random.default_rng(seed))
    key = (config.profile.name, config.slo_ttft_s, config.slo_itl_s, prompts.tobytes(), outputs.tobytes(), seed)
    if key not in _TABLES:
        _TABLES[key] = cached_load_table(DiskCache(args.cache_dir), config, prompts, outputs, seed)
    return _TABLES[key]


def cached_load_table(cache: DiskCache, config: SimConfig, prompts: np.ndarray, outputs: np.ndarray, seed: int):
    """A load table measured once per (engine profile, lengths, SLO, seed), kept on disk."""
    from autoscaler.capacity.load_table import build_load_table

    return cache(
        "load-tables",
        _engine_key(config, prompts, outputs, seed),
        lambda: build_load_table(config.profile, prompts, outputs, config.slo_ttft_s, config.slo_itl_s, seed=seed),
    )


def cached_window_counts(
    args: SimulateArgs, folder: Path, windows, step_s: float, start_s: float, end_s: float | None, scales: tuple
) -> np.ndarray:
    """Per-step arrival counts of a ServeGen folder (seconds to synthesize for 14 days), kept on disk."""
    seed = args.seed
    key = (files_digest(list(folder.glob("chunk-*-trace.csv"))), step_s, seed, start_s, end_s, scales, COUNTS_VERSION)
    return DiskCache(args.cache_dir)(
        "servegen-counts", key, lambda: window_counts(windows, step_s, seed, start_s, end_s)
    )


COUNTS_VERSION = 1  # bump when the way arrivals are synthesized changes
TABLE_VERSION = 12  # bump when the way a load table is measured changes


@lru_cache(maxsize=4)
def _lengths(lengths_from: str | None) -> LengthSampler:
    """Lengths for synthesized requests, read once per process (every run of a sweep uses them)."""
    return length_sampler(lengths_from)


@lru_cache(maxsize=4)
def _servegen(folder: str):
    """A ServeGen folder's windows, parsed once per process (every run of a sweep replays them)."""
    return load_servegen(folder)
