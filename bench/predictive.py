"""Benchmarks of the predictive policy: against the oracle and the tuned baselines on the shared traces, its
forecast's error and coverage, and flapping under steady load."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from autoscaler.forecast.rate import RateForecaster
from autoscaler.sim.args import SimulateArgs
from autoscaler.sim.report import table
from autoscaler.sim.run import run_one
from autoscaler.sim.sweep import sweep
from bench import CACHE
from bench.holt_winters import holt_winters_quality, horizon_peaks, quality
from bench.simulate import CODE, CONV, MLARGE, TRACES

WEEK_S = 7 * 86400.0
BASELINES = ["static:1", "hpa:gpu_util=70", "hpa:waiting=5", "hpa:running=64", "keda", "kpa:64", "oracle"]
REACTIVE = ("hpa", "keda", "kpa")  # the autoscalers users run today
CODE_HOUR = "Azure code x4 (request-level)"  # the case whose static fleet the text quotes
PREDICTIVE_ONLY = ("online.py", "mix_table.py", "mix_cells.py")  # capacity modules no baseline runs


def flaps(decisions: list, timeline, window_s: float = 600.0, steady: float = 0.1) -> int:
    """Up-down-up (or down-up-down) sequences of the desired count within `window_s`, counted only where the arrival
    rate over that window stays within +-`steady` of its mean (steady load: no reason to move at all)."""
    times = np.array([t for t, _ in decisions])
    counts = np.array([d.desired for _, d in decisions])
    change = np.flatnonzero(np.diff(counts) != 0) + 1
    t_rate = timeline["time_s"].to_numpy()
    rate = timeline["arrival_rate"].to_numpy()
    found, i = 0, 0
    while i + 2 < len(change):
        a, b, c = change[i], change[i + 1], change[i + 2]
        first = np.sign(counts[a] - counts[a - 1])
        if (
            np.sign(counts[b] - counts[b - 1]) == -first
            and np.sign(counts[c] - counts[c - 1]) == first
            and times[c] - times[a] <= window_s
        ):
            inside = rate[(t_rate >= times[a] - window_s / 2) & (t_rate <= times[c])]
            if len(inside) and inside.mean() > 0 and np.all(np.abs(inside / inside.mean() - 1) <= steady):
                found += 1
                i += 2
                continue
        i += 1
    return found


def forecast_quality(rates: np.ndarray, step_s: float, horizon_s: float, judge_from_s: float = 0.0) -> dict:
    """Feed observed rates to the forecaster as the policy does; judge each forecast against the actual peak over
    its horizon: median absolute percentage error of the point, how often the upper bound held, and by how much it
    exceeded the peak on average."""
    forecaster = RateForecaster()
    points, uppers = np.full(len(rates), np.nan), np.full(len(rates), np.nan)
    for i, rate in enumerate(rates):
        forecaster.observe(i * step_s, float(rate))
        fc = forecaster.forecast(i * step_s, horizon_s)
        points[i], uppers[i] = fc.point, fc.upper
    judged = np.arange(len(rates)) * step_s >= judge_from_s
    peaks = horizon_peaks(rates, int(round(horizon_s / step_s)))
    return quality(points[judged], uppers[judged], peaks[judged])


def _observed_rates(result) -> np.ndarray:
    """The arrival rate a policy saw: a 60 s rate every 15 s, from the run's timeline."""
    timeline = result.timeline
    arrivals = timeline["arrivals"].to_numpy(dtype=float)
    window = 4  # 60 s of 15 s rows
    sums = np.convolve(arrivals, np.ones(window), mode="full")[: len(arrivals)]
    return sums / (window * 15.0)


def _row(label: str, s: dict, oracle: dict, best_reactive: dict | None, tried: list[dict]) -> str:
    vs_oracle = s["gpu_hours"] / oracle["gpu_hours"]
    if best_reactive:
        best = f"{best_reactive['policy']} {best_reactive['gpu_hours']:,.1f}"
        saved = f"{1 - s['gpu_hours'] / best_reactive['gpu_hours']:.1%}"
    else:  # none reaches the goal: the one that came closest; the goal is then higher attainment at no more GPU-hours
        top = max((t for t in tried if t["policy"].split(":")[0] in REACTIVE), key=lambda t: t["slo_attainment"])
        best = f"none (closest: {top['policy']} {top['slo_attainment']:.2%} at {top['gpu_hours']:,.1f})"
        points = (s["slo_attainment"] - top["slo_attainment"]) * 100
        saved = f"{1 - s['gpu_hours'] / top['gpu_hours']:.1%} at {points:+.1f} points"
    return (
        f"| {label} | {s['slo_attainment']:.2%} | {s['gpu_hours']:,.2f} | {oracle['policy']} {oracle['gpu_hours']:,.2f} | "
        f"{vs_oracle:.3f} | {best} | {saved} |"
    )


def _cheapest_reactive(summaries: list[dict], goal: float) -> dict | None:
    meeting = [s for s in summaries if s["policy"].split(":")[0] in REACTIVE and s["slo_attainment"] >= goal]
    return min(meeting, key=lambda s: s["gpu_hours"]) if meeting else None


def _cached_sweep(args: SimulateArgs, goal: float):
    """The baselines' sweep (an hour of CPU on 14 days) is kept on disk, keyed by its arguments and the source of
    everything it runs (simulator, baselines, engine, workloads; not the predictive policy's own capacity modules):
    rerunning this section after a change to the predictive policy alone reuses it; any change to what the
    baselines run recomputes it."""
    from serving.common.disk_cache import DiskCache, files_digest

    root = Path(__file__).resolve().parents[1]
    sources = [
        p
        for folder in ("autoscaler/sim", "autoscaler/capacity", "serving/engine", "loadgen/workloads")
        for p in (root / folder).rglob("*.py")
        if p.name not in PREDICTIVE_ONLY
    ]
    key = (repr(replace(args, jobs=1)), goal, files_digest(sources))

    def compute():
        tuned, tried = sweep(args, goal, progress=lambda line: None)
        return [r.summary for r in tuned], tried

    return DiskCache(CACHE)("bench-sweeps", key, compute)


def predictive_section(jobs: int = 2) -> str:
    """ServeGen m-large learned on days 1-7 and judged on 8-14 with every baseline tuned by the sweep on the same
    days; the Azure traces at the settings their own sweeps chose (docs: sim-conv, sim-code), run again beside it."""
    goal = 0.99
    cases = []
    servegen = SimulateArgs(
        cache_dir=CACHE,
        trace=MLARGE,
        policies=BASELINES,
        mode="fluid",
        lengths_from=CONV,
        max_replicas=200,
        judge_from_s=WEEK_S,
        jobs=jobs,
    )
    tuned, tried = _cached_sweep(servegen, goal)
    ours = run_one(servegen, "predictive")
    cases.append(("ServeGen m-large, days 8-14 (fluid)", ours, tuned, tried))
    conv = ["static:3", "hpa:gpu_util=70", "hpa:running=32", "kpa:16", "oracle:0.8"]
    code = ["static:17", "hpa:gpu_util=30", "hpa:running=4", "kpa:4", "oracle:1@5s"]
    for trace, label, settings, judge_from in (
        (CONV, "Azure conv x4 (request-level)", conv, 0.0),
        (CODE, CODE_HOUR, code, 0.0),
        (CODE, "Azure code x4, judged from minute 15", code, 900.0),
    ):
        args = SimulateArgs(
            cache_dir=CACHE, trace=trace, policies=settings, rate_scale=4.0, max_replicas=200, judge_from_s=judge_from
        )
        runs = [run_one(args, spec) for spec in settings]
        cases.append((label, run_one(args, "predictive"), [r.summary for r in runs], [r.summary for r in runs]))
    lines = [
        (
            "| trace | predictive attainment | predictive GPU-h | oracle GPU-h | / oracle | cheapest HPA, KEDA or KPA at >= 99% (GPU-h) | "
            "GPU-h saved vs it |"
        ),
        "|---|---|---|---|---|---|---|",
    ]
    quality_rows, case_tables = [], []
    for label, ours, tuned_summaries, tried in cases:
        oracle = next(s for s in tuned_summaries if s["policy"].startswith("oracle"))
        lines.append(_row(label, ours.summary, oracle, _cheapest_reactive(tried, goal), tried))
        rates, judged_from = _observed_rates(ours), ours.summary.get("judged_from_s", 0.0)
        q = forecast_quality(rates, 15.0, 150.0, judged_from)
        quality_rows.append(
            f"| {label} | ours | {q['mape']:.1%} | {q['coverage']:.1%} | {q['excess']:+.1%} | "
            f"{q['forecasts']:,} | {flaps(ours.decisions, ours.timeline)} | {ours.summary['scale_actions']:,} |"
        )
        if judged_from >= WEEK_S:  # a week to learn from: Holt-Winters has its daily season
            hw = holt_winters_quality(rates, 15.0, 150.0, judged_from)
            quality_rows.append(
                f"| {label} | Holt-Winters (statsmodels) | {hw['mape']:.1%} | {hw['coverage']:.1%} | "
                f"{hw['excess']:+.1%} | {hw['forecasts']:,} | | |"
            )
        case_tables += [f"#### {label}", "", table([ours.summary, *tuned_summaries], markdown=True), ""]
    rel = lambda path: str(Path(path).relative_to(TRACES.parent.parent.parent))
    code_hour = next(summaries for label, _, summaries, _ in cases if label == CODE_HOUR)
    held = next(s for s in code_hour if s["policy"].startswith("static"))
    return "\n".join(
        [
            "## Predictive autoscaler (`headroom simulate --policy predictive`)",
            "",
            (
                "Same setting as the simulator tables (Llama-3.1-8B on H100, TTFT <= 1 s, mean ITL <= 50 ms, 90 s cold start, "
                "$12.29 per GPU-hour, Prometheus scrape 15 s, 60 s rate windows). The predictive policy runs with its defaults "
                "(plan each replica at 90% of its SLO capacity, 97% upper forecast quantile, 60 s scale-down window (300 s until 20 of its forecasts "
                "are scored), 75% headroom for 10 minutes after a rise); nothing "
                "about it is tuned per trace. ServeGen m-large: all 14 days are simulated, the policy learns from days 1-7 "
                "(its forecaster starts empty), and every policy is judged on days 8-14 (`--judge-from 604800`), the baselines "
                f"tuned by `--sweep` on those days: `headroom simulate --trace ../{rel(MLARGE)} --mode fluid --sweep --judge-from "
                f"604800 --policy {','.join(BASELINES)},predictive --max-replicas 200 --lengths-from ../{rel(CONV)}`. Azure: the "
                "settings their own sweeps chose (sections above), run again beside the predictive policy. The code trace opens with "
                "252 requests in its first minute, two silent minutes, then 2,124 requests in its fourth: at most 5.6 req/s seen, "
                "then 35 req/s arriving on the replicas asked for in the silence (a cold start earlier). Every policy starts on "
                "one replica, and none asked for is ready before 90 s: no policy without foreknowledge reaches 99% over that "
                f"hour (even {held['max_replicas']} replicas asked for in the first second, before any request, reach "
                f"{held['slo_attainment']:.2%}; the sweep's table above starts them already running). It is also judged "
                "from minute 15 on (every policy alike), once the policy has learned how bursty it is."
            ),
            "",
            (
                "Goals: attainment >= 99%; GPU-hours <= 1.15x the oracle's (Azure code: reported); at least 25% fewer GPU-hours "
                "than the cheapest tuned HPA, KEDA or Knative setting that reaches 99% (where none does: higher attainment at "
                "equal or lower GPU-hours than the one that came closest)."
            ),
            "",
            *lines,
            "",
            (
                "Forecast (the request rate the policy saw, a 60 s rate every 15 s; the peak over the 150 s horizon): median "
                "absolute error of the point forecast, the share of horizons whose peak stayed under the upper bound (target "
                "97%), and the upper bound's mean excess over the peak (what planning to it costs). On ServeGen, Holt-Winters "
                "from statsmodels beside it (additive damped trend, daily season on 5-minute means, fitted on days 1-7 and run "
                "forward with those parameters; its upper bound is its point times the 97% quantile of peak / point on days 1-7). "
                "Flapping: up-down-up within 10 minutes while the arrival rate stayed within 10% of its mean (goal: 0)."
            ),
            "",
            (
                "| trace | forecaster | forecast error (median) | upper bound coverage | upper bound excess | forecasts | "
                "flaps under steady load | scale actions |"
            ),
            "|---|---|---|---|---|---|---|---|",
            *quality_rows,
            "",
            *case_tables,
        ]
    )
