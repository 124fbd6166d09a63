"""A fair fight: tune each baseline's target over a grid; keep the cheapest setting that reaches the goal."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace

from autoscaler.sim.args import SimulateArgs
from autoscaler.sim.results import SimResult
from autoscaler.sim.run import run_one

GRIDS = {
    "hpa:gpu_util": (30, 40, 50, 60, 70, 80, 90),
    "hpa:waiting": (1, 2, 5, 10, 20),
    "hpa:running": (4, 8, 16, 32, 64, 128, 256),
    "keda": (1, 2, 5, 10, 20, 50),
    "kpa": (4, 8, 16, 32, 64, 128, 256),
    # capacity factor @ burst window: smooth traffic is judged on 30 s windows with headroom, bursty traffic on 5 s ones
    "oracle": ("1", "0.9", "0.8", "0.7", "0.6", "0.5", "0.4", "1@5", "0.9@5", "0.8@5", "0.7@5"),
}


def family(spec: str) -> str:
    kind, _, arg = spec.partition(":")
    if kind == "hpa":
        return f"hpa:{(arg or 'gpu_util=70').partition('=')[0]}"
    return kind


def grid_specs(spec: str) -> list[str]:
    fam = family(spec)
    if fam in GRIDS:
        sep = "=" if fam.startswith("hpa:") else ":"
        if fam == "oracle":
            return [f"oracle:{f}" for f in GRIDS[fam]]
        return [f"{fam}{sep}{target:g}" for target in GRIDS[fam]]
    return [spec]  # oracle, user policies: nothing to tune


def best(results: list[SimResult], goal: float) -> SimResult:
    meeting = [r for r in results if r.summary["slo_attainment"] >= goal]
    if meeting:
        return min(meeting, key=lambda r: (r.summary["gpu_hours"], -r.summary["slo_attainment"]))
    return max(results, key=lambda r: (r.summary["slo_attainment"], -r.summary["gpu_hours"]))


def _map(args: SimulateArgs, specs: list[str]) -> list[SimResult]:
    if args.jobs > 1 and len(specs) > 1:
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            return list(pool.map(run_one, [args] * len(specs), specs))
    return [run_one(args, s) for s in specs]


def tune_static(args: SimulateArgs, goal: float) -> tuple[SimResult, list[SimResult]]:
    """The fewest fixed replicas that reach the goal (attainment grows with replicas): doubling, then bisection."""
    tried: dict[int, SimResult] = {}

    def attempt(n: int) -> SimResult:
        if n not in tried:
            tried[n] = run_one(replace(args, initial_replicas=n), f"static:{n}")
        return tried[n]

    hi = max(1, args.min_replicas)
    while attempt(hi).summary["slo_attainment"] < goal and hi < args.max_replicas:
        hi = min(args.max_replicas, hi * 2)
    lo = hi // 2 if hi > 1 else 0
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if attempt(mid).summary["slo_attainment"] >= goal:
            hi = mid
        else:
            lo = mid
    return attempt(hi), [tried[n] for n in sorted(tried)]


def sweep(args: SimulateArgs, goal: float = 0.99, progress=print) -> tuple[list[SimResult], list[dict]]:
    """Tuned result per policy family, and every setting tried (for the record)."""
    tuned, tried = [], []
    for spec in args.policies:
        if family(spec) == "static":
            winner, runs = tune_static(args, goal)
        else:
            runs = _map(args, grid_specs(spec))
            winner = best(runs, goal)
        tried += [r.summary for r in runs]
        tuned.append(winner)
        progress(
            f"sweep {family(spec)}: {len(runs)} settings; chosen {winner.summary['policy']} "
            f"({winner.summary['slo_attainment']:.2%}, {winner.summary['gpu_hours']:.2f} GPU-h)"
        )
    return tuned, tried
