"""`headroom simulate`: load a trace, run each policy over it (request-level or fluid), report and save."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from autoscaler import defaults
from autoscaler.capacity.engine_capacity import slo_capacity
from autoscaler.policy.predictive import Predictive, PredictiveConfig
from autoscaler.sim.baselines.oracle import ArrivalTimes, FutureArrivals, Oracle, StepCounts
from autoscaler.sim.config import SimConfig
from autoscaler.sim.mix_periods import mix_periods
from autoscaler.sim.policies import PolicyContext, parse_policy
from autoscaler.sim.request.simulator import Simulator
from autoscaler.sim.results import SimResult
from loadgen.workloads.load import length_sampler, load_workload
from loadgen.workloads.servegen import LengthSampler, load_servegen, window_counts
from loadgen.workloads.workload import Workload
from serving.disk_cache import cached, files_digest
from serving.profiles import gpu_price_per_hour, load_profile


@dataclass
class SimulateArgs:
    trace: str
    policies: list[str]
    profile: str = defaults.PROFILE
    slo_ttft_s: float = defaults.SLO_TTFT_S
    slo_itl_s: float = defaults.SLO_ITL_S
    cold_start_s: float = defaults.COLD_START_S
    price: float | None = None
    mode: str = "request"
    start_s: float = 0.0
    end_s: float | None = None
    time_scale: float = 1.0
    rate_scale: float = 1.0
    seed: int = 0
    model_seed: int | None = None  # the fluid model's own randomness (load table, gauge draws); default: seed
    lengths_from: str | None = None
    min_replicas: int = defaults.MIN_REPLICAS
    max_replicas: int = defaults.MAX_REPLICAS
    initial_replicas: int = defaults.INITIAL_REPLICAS
    scrape_interval_s: float = defaults.SCRAPE_INTERVAL_S
    jobs: int = 1
    judge_from_s: float = 0.0  # summaries cover the window from here on
    clock_phase_s: float = 0.0  # the first scrape, this far into the trace (the control loop follows)
    fluid_model: str = "auto"  # fluid replicas: "cohort" (request traces), "table" (ServeGen rates), or auto
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        problems = _arg_problems(self)
        if problems:
            raise ValueError("; ".join(problems))


_FINITE = math.isfinite
# (field, its flag, what it must be, the check): each failing one is a clear error before anything runs
_ARG_RULES = (
    (
        "scrape_interval_s",
        "--scrape-interval",
        "between 0.1 and 3600 seconds",
        lambda v: _FINITE(v) and 0.1 <= v <= 3600,
    ),
    ("cold_start_s", "--cold-start", "a finite number of seconds >= 0", lambda v: _FINITE(v) and v >= 0),
    ("slo_ttft_s", "--slo-ttft", "a finite number of seconds > 0", lambda v: _FINITE(v) and v > 0),
    ("slo_itl_s", "--slo-itl", "a finite number of seconds > 0", lambda v: _FINITE(v) and v > 0),
    ("price", "--price", "a finite price >= 0", lambda v: v is None or (_FINITE(v) and v >= 0)),
    ("start_s", "--start", "a finite number of seconds >= 0", lambda v: _FINITE(v) and v >= 0),
    ("time_scale", "--time-scale", "a finite number > 0", lambda v: _FINITE(v) and v > 0),
    ("rate_scale", "--rate-scale", "a finite number > 0", lambda v: _FINITE(v) and v > 0),
    ("min_replicas", "--min-replicas", "a whole number >= 0", lambda v: v >= 0),
    ("max_replicas", "--max-replicas", "a whole number from 1 to 100000", lambda v: 1 <= v <= 100_000),
    ("initial_replicas", "--initial-replicas", "a whole number >= 0", lambda v: v >= 0),
    ("jobs", "--jobs", "a whole number >= 1", lambda v: v >= 1),
    ("judge_from_s", "--judge-from", "a finite number of seconds >= 0", lambda v: _FINITE(v) and v >= 0),
)


def _arg_problems(args: SimulateArgs) -> list[str]:
    problems = [
        f"{flag} must be {what}, got {getattr(args, name)!r}"
        for name, flag, what, ok in _ARG_RULES
        if not ok(getattr(args, name))
    ]
    if args.min_replicas > args.max_replicas:
        problems.append(f"--min-replicas ({args.min_replicas}) is above --max-replicas ({args.max_replicas})")
    if args.end_s is not None and not (_FINITE(args.end_s) and args.end_s > args.start_s):
        problems.append(
            f"--end must be a finite number of seconds after --start ({args.start_s:g}), got {args.end_s!r}"
        )
    return problems


def load_trace(args: SimulateArgs) -> Workload:
    """Azure CSV, JSONL replay, or a ServeGen folder (synthesized over [start, end) with lengths from a trace)."""
    return load_workload(
        args.trace,
        start_s=args.start_s,
        end_s=args.end_s,
        time_scale=args.time_scale,
        rate_scale=args.rate_scale,
        seed=args.seed,
        lengths_from=args.lengths_from,
    )


def model_seed(args: SimulateArgs) -> int:
    """Seed of the fluid model's own randomness (its load table's length sample and engine runs, its gauge draws),
    apart from the arrivals' seed: several of them show how much a fluid result owes to the model's draws."""
    return args.seed if args.model_seed is None else args.model_seed


def sim_config(args: SimulateArgs) -> SimConfig:
    profile = load_profile(args.profile)
    price = args.price if args.price is not None else gpu_price_per_hour(profile.gpu.name)
    return SimConfig(
        profile=profile,
        slo_ttft_s=args.slo_ttft_s,
        slo_itl_s=args.slo_itl_s,
        cold_start_s=args.cold_start_s,
        price_per_gpu_hour=price,
        initial_replicas=args.initial_replicas,
        max_replicas=args.max_replicas,
        scrape_interval_s=args.scrape_interval_s,
        seed=model_seed(args),
        judge_from_s=args.judge_from_s,
        clock_phase_s=args.clock_phase_s,
    )


def replica_capacity(config: SimConfig, workload: Workload, seed: int = 0) -> float:
    """Requests/s one replica carries within the SLO for this workload's length mix (engine model; seconds to
    measure, so kept on disk like the load tables)."""
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(workload), min(len(workload), 5000))
    prompts, outputs = workload.prompt_tokens[pick], workload.output_tokens[pick]
    key = (
        config.profile.model_dump(),
        prompts.tobytes(),
        outputs.tobytes(),
        config.slo_ttft_s,
        config.slo_itl_s,
        TABLE_VERSION,
    )
    return cached(
        "capacity", key, lambda: slo_capacity(config.profile, prompts, outputs, config.slo_ttft_s, config.slo_itl_s)
    )


def policy_context(
    args: SimulateArgs,
    config: SimConfig,
    future: FutureArrivals | None = None,
    capacity: Callable[[], float] | None = None,
) -> PolicyContext:
    """Bounds for every policy; with the future arrivals and the replica capacity at the SLO, the oracle too."""
    oracle = None
    if future is not None and capacity is not None:

        def oracle(derate: float, window_s: float = 30.0) -> Oracle:
            name = (
                "oracle"
                + (f":{derate:g}" if derate != 1.0 or window_s != 30.0 else "")
                + (f"@{window_s:g}s" if window_s != 30.0 else "")
            )
            return Oracle(
                future,
                capacity() * derate,
                config.cold_start_s,
                window_s=window_s,
                min_replicas=args.min_replicas,
                name=name,
            )

    predictive = None
    if capacity is not None:

        def predictive(fill: float) -> Predictive:
            lag = config.scrape_interval_s + config.rate_window_s / 2
            return Predictive(
                PredictiveConfig(
                    capacity_rps=capacity(),
                    slo_ttft_s=config.slo_ttft_s,
                    slo_itl_s=config.slo_itl_s,
                    cold_start_s=config.cold_start_s,
                    observation_lag_s=lag,
                    fill=fill,
                    min_replicas=args.min_replicas,
                    max_replicas=args.max_replicas,
                ),
                name="predictive" + (f":{fill:g}" if fill != 0.9 else ""),
            )

    return PolicyContext(
        min_replicas=args.min_replicas,
        max_replicas=args.max_replicas,
        oracle_factory=oracle,
        predictive_factory=predictive,
    )


def _progress(name: str):
    def report(fraction: float) -> None:
        filled = int(fraction * 30)
        print(
            f"\r  {name:28s} [{'#' * filled}{'.' * (30 - filled)}] {fraction:4.0%}", end="", file=sys.stderr, flush=True
        )
        if fraction >= 1.0:
            print(file=sys.stderr)

    return report


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
    trace itself. For load-table replicas its requests are weighed by their lengths, and where its length mix
    changes (autoscaler.sim.mix_periods), each period gets the load table of its own mix."""
    from autoscaler.sim.fluid.fleet import counts_from_workload, work_from_workload

    path = Path(args.trace)
    if workload is None:
        fluid_model(args, servegen=True)  # a bad choice fails here, before days of counts are synthesized
        windows = _servegen(str(path)).scaled(args.time_scale, args.rate_scale)
        # window rates change every 600 s; steps of about 15 s (the HPA's sync period) that tile a window
        step = windows.window_s / max(1, round(windows.window_s / 15.0))
        end = args.end_s / args.time_scale if args.end_s is not None else None
        counts = cached_window_counts(
            path, windows, step, args.seed, args.start_s / args.time_scale, end, (args.time_scale, args.rate_scale)
        )
        lengths = _lengths(args.lengths_from)
        table = _cached_table(args, config, lengths)
        return FluidInput(
            counts, step, lengths, table, StepCounts(counts, step), path.name, lambda: table.slo_capacity_rps
        )
    step = 1.0
    lengths = LengthSampler.from_workload(workload)
    counts = counts_from_workload(workload, step)
    if fluid_model(args, servegen=False) == "cohort":  # the engine's step times on cohorts: no load table to measure
        whole = lambda: _cached_table(args, config, lengths).slo_capacity_rps  # measured only if a policy asks
        return FluidInput(
            counts, step, lengths, None, ArrivalTimes(workload.arrival_s), workload.name, whole, workload=workload
        )
    periods = mix_periods(workload.arrival_s, workload.prompt_tokens, workload.output_tokens)
    if periods.count == 1:
        table = _cached_table(args, config, lengths)
        return FluidInput(
            counts,
            step,
            lengths,
            table,
            ArrivalTimes(workload.arrival_s),
            workload.name,
            lambda: table.slo_capacity_rps,
            work_from_workload(workload, step, table.prompt_token_weight),
        )
    owned = [periods.period_of_request == k for k in range(periods.count)]
    tables = [
        _cached_table(args, config, LengthSampler(workload.prompt_tokens[mine], workload.output_tokens[mine]))
        for mine in owned
    ]
    whole = lambda: _cached_table(args, config, lengths).slo_capacity_rps  # measured only if a policy asks
    work = work_from_workload(
        workload, step, np.array([t.prompt_token_weight for t in tables]), periods.period_of_request
    )
    return FluidInput(
        counts,
        step,
        lengths,
        tables[0],
        ArrivalTimes(workload.arrival_s),
        workload.name,
        whole,
        work,
        tables,
        periods.period_of_steps(len(counts), step),
    )


def fluid_model(args: SimulateArgs, servegen: bool) -> str:
    """Which fluid replicas run a trace: cohorts in lockstep on a request trace's 1 s steps, load tables on a
    ServeGen folder's 15 s steps of rates (days of them; a step outlasts a request's time inside)."""
    if args.fluid_model not in ("auto", "cohort", "table"):
        raise ValueError(f"--fluid-model: {args.fluid_model!r} is not one of auto, cohort, table")
    if args.fluid_model == "cohort" and servegen:
        raise ValueError("--fluid-model cohort: a ServeGen folder has rates, not requests; use table (or auto)")
    return args.fluid_model if args.fluid_model != "auto" else ("table" if servegen else "cohort")


def fluid_run(config: SimConfig, policy, feed: FluidInput) -> SimResult:
    from autoscaler.sim.fluid.table import FluidSimulator

    if feed.workload is not None:
        from autoscaler.sim.fluid.cohort_fleet import CohortSimulator

        return CohortSimulator(config, policy, feed.workload, feed.step_s).run()

    return FluidSimulator(
        config,
        None,
        policy,
        counts=feed.counts,
        work=feed.work,
        lengths=feed.lengths,
        table=feed.table,
        step_s=feed.step_s,
        name=feed.name,
        tables=feed.tables,
        period_of_step=feed.period_of_step,
    ).run()


_TABLES: dict = {}


def _cached_table(args: SimulateArgs, config: SimConfig, lengths: LengthSampler):
    """One load table per (profile, SLO, length sample, seed) in this process (it costs seconds to measure, and is
    kept on disk too). Keyed by the sample itself: two traces' lengths never share a table."""
    seed = model_seed(args)
    prompts, outputs = lengths.sample(4000, np.random.default_rng(seed))
    key = (config.profile.name, config.slo_ttft_s, config.slo_itl_s, prompts.tobytes(), outputs.tobytes(), seed)
    if key not in _TABLES:
        _TABLES[key] = cached_load_table(config, prompts, outputs, seed)
    return _TABLES[key]


def cached_load_table(config: SimConfig, prompts: np.ndarray, outputs: np.ndarray, seed: int):
    """A load table measured once per (engine profile, lengths, SLO, seed), kept on disk."""
    from autoscaler.capacity.load_table import build_load_table

    key = (
        config.profile.model_dump(),
        prompts.tobytes(),
        outputs.tobytes(),
        config.slo_ttft_s,
        config.slo_itl_s,
        seed,
        TABLE_VERSION,
    )
    return cached(
        "load-tables",
        key,
        lambda: build_load_table(config.profile, prompts, outputs, config.slo_ttft_s, config.slo_itl_s, seed=seed),
    )


def cached_window_counts(
    folder: Path, windows, step_s: float, seed: int, start_s: float, end_s: float | None, scales: tuple
) -> np.ndarray:
    """Per-step arrival counts of a ServeGen folder (seconds to synthesize for 14 days), kept on disk."""
    key = (files_digest(list(folder.glob("chunk-*-trace.csv"))), step_s, seed, start_s, end_s, scales, COUNTS_VERSION)
    return cached("servegen-counts", key, lambda: window_counts(windows, step_s, seed, start_s, end_s))


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


def run_one(args: SimulateArgs, spec: str, show_progress: bool = False) -> SimResult:
    config = sim_config(args)
    servegen = args.mode == "fluid" and Path(args.trace).is_dir()
    workload = None if servegen else load_trace(args)
    if args.mode == "fluid":
        feed = fluid_input(args, config, workload)
        policy = parse_policy(spec, policy_context(args, config, feed.future, feed.capacity_rps))
        return fluid_run(config, policy, feed)
    policy = parse_policy(
        spec,
        policy_context(
            args, config, ArrivalTimes(workload.arrival_s), lambda: replica_capacity(config, workload, args.seed)
        ),
    )
    result = Simulator(config, workload, policy, progress=_progress(policy.name) if show_progress else None).run()
    if show_progress:
        _progress(policy.name)(1.0)
    return result


def run_all(args: SimulateArgs) -> list[SimResult]:
    """Every policy over the same trace; in parallel processes with --jobs (results are the same either way)."""
    if not (args.mode == "fluid" and Path(args.trace).is_dir()):
        load_trace(args)  # fail early on a bad trace, before forking
    for spec in args.policies:
        parse_policy(
            spec, PolicyContext(oracle_factory=lambda derate, window_s: None, predictive_factory=lambda fill: None)
        )  # and on a bad policy spec
    if args.jobs > 1 and len(args.policies) > 1:
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            return list(pool.map(run_one, [args] * len(args.policies), args.policies))
    return [run_one(args, spec, show_progress=True) for spec in args.policies]
