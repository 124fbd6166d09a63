"""`headroom simulate`'s arguments, checked before anything runs, and what they make: the trace and SimConfig."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from autoscaler import defaults
from autoscaler.sim.config import SimConfig
from loadgen.workloads.load import load_workload
from loadgen.workloads.workload import Workload
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
    cache_dir: Path | None = None  # where load tables and counts are kept between runs (None: recomputed each run)
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
