"""Real vLLM against the engine model: every point measured on the GPU host (`bench/vllm_device`, raw results in
bench/data/vllm-h100) run again in the engine model the same way, closed loops with `vllm bench serve`'s
concurrency (its first wave counted, as vllm bench counts it) and open loops sending at the measured send times."""

from __future__ import annotations

import csv
import gzip
import itertools
import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from statistics import median
from typing import NamedTuple

import numpy as np

from bench.gpu_limiter import LimiterFit, fit_limiter
from bench.gpu_power import PowerFit, fit_power, read_samples, run_activity
from bench.vllm_device.runs import read_runs
from serving.engine.harness import RunStats, fixed_concurrency, open_loop
from serving.engine.profile import Efficiency, GpuSpec, Profile
from serving.profiles import efficiency_set, load_profile

DATA = Path(__file__).resolve().parent / "data" / "vllm-h100"
PROFILE = "llama-3.1-8b-h100"
METRICS = (
    ("TTFT mean (ms)", "ttft_ms_mean"),
    ("TTFT median (ms)", "ttft_ms_p50"),
    ("ITL mean (ms)", "itl_ms_mean"),
    ("output tok/s", "output_tokens_per_s"),
)


def measured_profile(name: str = PROFILE):
    """The shipped profile as the measured server ran: vLLM 0.20.2 schedules asynchronously (its log says so)."""
    return load_profile(name).with_changes(scheduler={"async_scheduling": True})


def measured_points(path: Path = DATA / "points.csv") -> list[dict]:
    """The points the model can be run at: every one but the warm-up (a shared prefix's blocks are one chain of ids,
    the same in every prompt of its run, as `vllm bench serve --random-prefix-len` makes them)."""
    with open(path) as f:
        rows = list(csv.DictReader(f))
    records = path.parent / "requests"
    activity = _activity(path.parent)
    return [{**r, "records": records, **activity.get(r["name"], {})} for r in rows if r["name"] != "warmup"]


@cache
def _activity(folder: Path) -> dict[str, dict]:
    """name -> the GPU exporter's mean tensor and DRAM activity and SM clock over the run, where its folder says when
    it ran."""
    runs = read_runs(folder)
    return run_activity(read_samples(folder), runs) if runs else {}


def predict(point: dict, profile, client_token_s: float = 0.0) -> dict:
    """The model's figures at a point; `client_token_s`: the time `vllm bench serve`'s one event loop takes to read a
    streamed token before it records its clock (the client's own, not the server's)."""
    prompt, output, n = int(point["input_tokens"]), int(point["output_tokens"]), int(point["completed"])
    if point["concurrency"]:
        prefix = int(point.get("prefix_tokens") or 0)
        concurrency = int(point["concurrency"])
        stats = fixed_concurrency(profile, prompt, output, concurrency, n, 0, 0.0, prefix, client_token_s)
    else:
        stats = _poisson(profile, point, client_token_s)
    return {
        "ttft_ms_mean": stats.mean_ttft_s * 1e3,
        "ttft_ms_p50": stats.median_ttft_s * 1e3,
        "itl_ms_mean": stats.mean_itl_s * 1e3,
        "output_tokens_per_s": stats.output_tokens_per_s,
        "sm_clock_mhz": stats.mean_clock * profile.gpu.sm_clock_mhz,
        "tensor_active": stats.tensor_active,
        "dram_active": stats.dram_active,
    }


def _poisson(profile, point: dict, client_token_s: float = 0.0) -> RunStats:
    """An open-loop point run again with the send times its requests had (`vllm bench serve --request-rate` draws
    them; the per-request records keep them)."""
    records = point.get("records")
    if records is not None:
        sends = _send_times(records / f"{point['name']}.csv.gz")
    else:  # no per-request records: Poisson sends at the point's rate, as vllm bench draws them
        from autoscaler.capacity.engine_capacity import poisson_workload

        one = np.array([0])
        sends = list(poisson_workload(float(point["request_rate"]), one, one, int(point["completed"]), 0).arrival_s)
    lengths = [(int(point["input_tokens"]), int(point["output_tokens"]))] * len(sends)
    return open_loop(profile, lengths, sends, client_token_s)


@cache
def _send_times(records: Path) -> list[float]:
    with gzip.open(records, "rt") as f:
        return [float(row["start_s"]) for row in csv.DictReader(f)]


def held_out(points: list[dict]) -> tuple[list[dict], list[dict]]:
    """(fit, held out): the points sorted by name, every second one held out, chosen before any fit."""
    ordered = sorted(points, key=lambda p: p["name"])
    return ordered[0::2], ordered[1::2]


class Knob(NamedTuple):
    """One fitted parameter: the unit the search moves in, its bounds, and where the search starts when the base
    set has none (the server's costs: from i128_o128_c1, where 16 ms hold one short prefill and about 9 ms more,
    and from the waves of i128_o128_c128, whose 128 clients send again spread over 164 ms)."""

    name: str
    unit: float
    low: float
    high: float
    start: float = 0.0
    part: str = "efficiency"  # the profile's part it belongs to: efficiency or gpu


FITTED = (
    Knob("bandwidth", 1.0, 0.3, 1.0),
    Knob("gemm_compute", 1.0, 0.2, 1.0),
    Knob("attention_compute", 1.0, 0.1, 1.0),
    Knob("step_overhead_s", 1e-3, 0.0, 1.0),
    Knob("per_seq_overhead_s", 1e-6, 0.0, 1.0),
    Knob("request_overhead_s", 1e-3, 0.0, 0.1, 0.006),
    # start: the tokenizer alone (bench/vllm_device/make_model.py's, timed once on one core here: 0.9-1.4 us a
    # token, not a bench); real vLLM's whole cost outside the engine is 2.5 us (`python -m bench prompt-cost`)
    Knob("request_token_s", 1e-6, 0.0, 1e-4, 1e-6),
    Knob("eager_step_overhead_s", 1e-3, 0.0, 0.5),
    Knob("frontend_request_s", 1e-3, 0.0, 0.05, 0.0015),
    Knob("frontend_token_s", 1e-5, 0.0, 0.001, 3e-5),
    Knob("frontend_finish_s", 1e-3, 0.0, 0.05, 0.0013),
)
# fitted beside them, as the harness's own parameter: the benchmark client's time to read a token
CLIENT = Knob("client_token_s", 1e-6, 0.0, 1e-3, 3e-5)
# the power limiter's averaging window, where the board's own probe read no GPM activity: the H100's probe's (0.063
# s). DCGM's one-second samples cannot show it and the latencies barely do (on the H200's fitted half the sixth
# refit's loss was 0.299 at its fitted 0.46 s and at 0.2 s), while the H200's probe saw the same limiter: it clamps
# a burst within 100 to 200 ms and lets go as fast (docs/vllm-on-h200.md, "The limiter probe")
WINDOW_PROBE = DATA / "limiter-1"
# and the power curve's compute power and clock exponent: the one-second samples give only a start, since the board
# clamps a prefill's burst within 100 ms (its power reads as a 1 s mean, its clock as an instant) and a second at
# the full clock never holds a long prefill (docs/vllm-on-h200.md, "The limiter probe")
CURVE = (
    Knob("compute_power_w", 100.0, 100.0, 3000.0, part="gpu"),
    Knob("clock_power_exponent", 1.0, 0.1, 4.0, part="gpu"),
)
# how busy a step keeps the tensor pipe and HBM as DCGM reads them, fitted to the runs' mean activity beside their
# latencies (starts: a least-squares fit of the H200's runs to the 2026-12-07 refit, docs/vllm-on-h200.md)
ACTIVITY = (
    Knob("compute_tensor_activity", 1.0, 0.3, 1.0, 0.85, part="gpu"),
    Knob("memory_dram_activity", 1.0, 0.5, 1.2, 0.92, part="gpu"),
    Knob("compute_dram_share", 1.0, 0.0, 0.6, 0.16, part="gpu"),
)
ACTIVITY_TOLERANCE = 0.25  # a run's mean activity off by this much weighs as a latency off by a factor of e
# a request's fixed latency and the API server's serial time per request give the same TTFT alone but not in a
# burst: the loss has a valley for each mix of the two, and Nelder-Mead stays in the one it starts in (on the H200
# the 2026-12-07 refit stopped at 10.1 ms and 1.27 ms, loss 0.545; 15 ms and none, 0.326). The search starts from
# the best of these starts. Only a fit of both gets them: a fit of the delay alone (the MoE's) trades it with the
# eager step's cost instead, and these starts moved it to a worse valley (docs/vllm-on-h200.md)
SERVER_STARTS = {"request_overhead_s": (0.006, 0.010, 0.014), "frontend_request_s": (0.0, 0.0005, 0.0015)}


@dataclass(frozen=True)
class Fit:
    profile: Profile
    client_token_s: float
    losses: tuple[float, ...] = ()  # the loss over the fitted points after each pass of the search

    @property
    def efficiency(self) -> Efficiency:
        return self.profile.efficiency

    def values(self, parameters: tuple = (*FITTED, CLIENT)) -> dict[str, float]:
        def value(knob: Knob) -> float:
            return self.client_token_s if knob is CLIENT else getattr(getattr(self.profile, knob.part), knob.name)

        return {k.name: value(k) for k in parameters}

    def text(self, parameters: tuple = (*FITTED, CLIENT)) -> str:
        return ", ".join(f"{name} {value:.4g}" for name, value in self.values(parameters).items())


def with_values(base, values: dict[Knob, float], client_token_s: float = 0.0, losses: tuple[float, ...] = ()) -> Fit:
    """`base`'s profile with the knobs' `values`; the client's time is its knob's value where given."""
    parts = ("efficiency", "gpu")
    changes = {p: {k.name: v for k, v in values.items() if k.part == p and k is not CLIENT} for p in parts}
    profile = base.model_copy(
        update={part: getattr(base, part).model_copy(update=update) for part, update in changes.items()}
    )
    return Fit(profile, values.get(CLIENT, client_token_s), losses)


def fit_efficiency(
    points: list[dict],
    base=None,
    parameters: tuple = (*FITTED, CLIENT),
    client_token_s: float = 0.0,
    last: dict[Knob, float] | None = None,
) -> Fit:
    """The `parameters` of `base`'s profile (by default bandwidth, GEMM and attention efficiency, the overheads, the
    server's costs and the client's time to read a token) that minimize the squared log errors of TTFT, ITL and
    throughput over `points`, and their runs' mean activity where the GPU exporter sampled them (`search` from
    `base`'s values, or warm from the `last` refit's where it had the knob); the client's time is `client_token_s`
    unless it is among the parameters."""
    base = base or measured_profile()

    def make(x, losses: tuple[float, ...] = ()) -> Fit:
        values = {k: min(max(v * k.unit, k.low), k.high) for v, k in zip(x, parameters)}
        return with_values(base, values, client_token_s, losses)

    def loss(x) -> float:
        fit = make(x)
        total = 0.0
        for point in points:
            model = predict(point, fit.profile, fit.client_token_s)
            total += sum(math.log(model[key] / float(point[key])) ** 2 for _, key in METRICS)
            measured = [key for key in ("tensor_active", "dram_active") if key in point]
            total += sum(((model[key] - point[key]) / ACTIVITY_TOLERANCE) ** 2 for key in measured)
            if "sm_clock_mhz" in point:  # the clock weighs as a latency does: the limiter is part of the model
                total += math.log(model["sm_clock_mhz"] / point["sm_clock_mhz"]) ** 2
        return total

    last = last or {}
    base_x = np.array(
        [last.get(k, getattr(getattr(base, k.part), k.name, 0.0) or k.start) / k.unit for k in parameters]
    )
    warm = np.array([k in last for k in parameters]) if last else None
    x, losses = search(loss, best_start(loss, base_x, parameters), warm)
    return make(x, losses)


# Nelder-Mead stops short on this loss: runs are discrete events, so the loss moves in steps (about 0.008 for a
# change of 1e-4), and the simplex shrinks onto a step's edge. A fresh simplex from where it stopped moves on (on
# the H200's fit half one restart took the loss from 0.480 to 0.359); restarts stop when one gains under 1%
RESTARTS = 1  # with it `python -m bench real-vllm` took 2 h 31 min on 2 cores, 63 min without; a second not measured
RESTART_GAIN = 0.01


def search(loss, x0: np.ndarray, warm: np.ndarray | None = None) -> tuple[np.ndarray, tuple[float, ...]]:
    """Where Nelder-Mead from `x0` finds `loss` least, restarted from its end with a fresh simplex (steps a tenth of
    each value, or half a unit) while a restart gains at least `RESTART_GAIN` of the loss, `RESTARTS` times at most;
    and the least loss after each pass. From a `warm` start (a mask of the values where a last refit stopped) one
    pass only, with a restart's steps for those: it is that refit's restart; a knob it did not have gets a first
    step."""
    # the first steps are a quarter of the start, or one unit where the shipped set has none (the overheads):
    # scipy's default first move from zero is 0.00025 units, too small to find a cost of milliseconds
    first = np.where(x0 != 0, 0.25 * x0, 1.0)
    best = _nelder_mead(loss, x0, steps=first if warm is None else np.where(warm, _restart_steps(x0), first))
    losses = [float(best.fun)]
    for _ in range(RESTARTS if warm is None else 0):
        again = _nelder_mead(loss, best.x, steps=_restart_steps(best.x))
        gained = again.fun < best.fun * (1.0 - RESTART_GAIN)
        best = again if again.fun < best.fun else best
        losses.append(float(best.fun))
        if not gained:
            break
    return best.x, tuple(losses)


def _restart_steps(x: np.ndarray) -> np.ndarray:
    return np.where(x != 0, 0.1 * x, 0.5)


def _nelder_mead(loss, x0: np.ndarray, steps: np.ndarray):
    from scipy.optimize import minimize

    simplex = np.vstack([x0, x0 + np.diag(steps)])
    options = {"xatol": 1e-3, "fatol": 1e-4, "maxiter": 400, "initial_simplex": simplex}
    return minimize(loss, x0, method="Nelder-Mead", options=options)


def best_start(loss, x0: np.ndarray, parameters: tuple) -> np.ndarray:
    """`x0`, or, where `parameters` hold both of the server's costs, `x0` with them set to the combination of
    `SERVER_STARTS` where `loss` is least, whichever is less."""
    index = {knob.name: i for i, knob in enumerate(parameters)}
    if not SERVER_STARTS.keys() <= index.keys():
        return x0
    chosen = [(index[name], values) for name, values in SERVER_STARTS.items()]
    candidates = [x0]
    for combination in itertools.product(*(values for _, values in chosen)):
        x = x0.copy()
        for (i, _), value in zip(chosen, combination):
            x[i] = value / parameters[i].unit
        candidates.append(x)
    return min(candidates, key=loss)


def comparison(profile=None, client_token_s: float = 0.0, points: list[dict] | None = None) -> list[dict]:
    profile = profile or measured_profile()
    rows = []
    for point in measured_points() if points is None else points:
        model = predict(point, profile, client_token_s)
        for label, key in METRICS:
            real = float(point[key])
            rows.append(
                {
                    "point": point["name"],
                    "metric": label,
                    "real": real,
                    "model": model[key],
                    "error": model[key] / real - 1 if real else math.nan,
                    "sm_clock_mhz": model["sm_clock_mhz"],  # the model's, over the point's steps
                    "tensor_active": model["tensor_active"],
                    "dram_active": model["dram_active"],
                }
            )
    return rows


def error_summary(rows: list[dict]) -> list[str]:
    lines = []
    for label, _ in METRICS:
        errors = [abs(r["error"]) for r in rows if r["metric"] == label]
        within = sum(e <= 0.2 for e in errors)
        lines.append(
            f"- {label}: median |error| {median(errors):.1%}, largest {max(errors):.1%}, "
            f"{within} of {len(errors)} points within 20%."
        )
    return lines


@dataclass(frozen=True)
class Grid:
    """One measured grid: the GPU it ran on, its folder of raw results, and the shipped profile it is judged by."""

    gpu: str
    data: Path
    profile: str
    note: str = ""
    shipped_set: str = "vllm-v1"  # the efficiency set of `profile`
    calibrated: str = ""  # where `shipped_set` was fitted to this grid's fitted half: which refit it holds


def _shipped_lines(grid: Grid, shipped: list[dict], held: list[dict]) -> list[str]:
    """What the shipped profile predicts: every point; for one calibrated here, the held-out half too."""
    if not grid.calibrated:
        return [
            (
                f"The shipped efficiency set ({grid.shipped_set}, profile {grid.profile}, never fitted to these "
                "points), all points:"
            ),
            "",
            *error_summary(shipped),
        ]
    held_names = {p["name"] for p in held}
    return [
        (
            f"The shipped profile {grid.profile} (efficiency set {grid.shipped_set}, its power curve and asynchronous "
            f"scheduling: the {grid.calibrated}, rounded to 4 digits; what `simulate`, `plan` and `emulate` run), "
            "without the benchmark client's own time; all points:"
        ),
        "",
        *error_summary(shipped),
        "",
        "and on the held-out half (fitted to the other):",
        "",
        *error_summary([r for r in shipped if r["point"] in held_names]),
    ]


def _refit_note(grid: Grid) -> str:
    if grid.calibrated:
        return (
            f"The shipped {grid.gpu} profile holds the {grid.calibrated}, not this run's refit, which went on from it: "
            "a new refit ships with the profile's capacity atlas measured again (`python -m bench.capacity_atlas`). "
        )
    return (
        f"The refit is a measurement only: the {grid.gpu}'s shipped profiles keep {grid.shipped_set}, which every "
        "simulator result above uses. "
    )


GRIDS = (
    Grid(
        "H200",
        DATA.parent / "vllm-h200",
        "llama-3.1-8b-h200",
        "measured 2026-12-06 (second run), each closed loop with 8 to 10 waves (4 to 6 where a wave takes over 15 s)",
        shipped_set="vllm-0.20-h200",
        calibrated="seventh refit's values (2026-12-08)",
    ),
    Grid(
        "H100",
        DATA,
        PROFILE,
        "an H100 80GB HBM3 lent in place of the H200, measured 2026-12-06 (first run), 3 to 5 waves a closed loop",
    ),
)


def real_vllm_section() -> str:
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=len(GRIDS)) as pool:  # the grids' fits are independent: a core each
        sections = list(pool.map(grid_section, GRIDS))
    lines = [line for grid_lines, _ in sections for line in grid_lines]
    fits = {grid.gpu: fit for grid, (_, fit) in zip(GRIDS, sections)}
    return "\n".join([*lines, *moe_section(fits["H100"])])


def _power_text(power: PowerFit | LimiterFit, gpu: GpuSpec, refit: list[dict], held: list[dict]) -> str:
    pairs = list(zip([r for r in refit if r["metric"] == METRICS[0][0]], held))
    clocks = ", ".join(
        f"{r['point']} {p['sm_clock_mhz']:,.0f}/{r['sm_clock_mhz']:,.0f}" for r, p in pairs if "sm_clock_mhz" in p
    )
    activity = ", ".join(
        f"{r['point']} {p['tensor_active']:.2f}/{r['tensor_active']:.2f} and {p['dram_active']:.2f}/{r['dram_active']:.2f}"
        for r, p in pairs
        if "tensor_active" in p
    )
    return (
        f"{_curve_text(power, gpu)} A step's activity, fitted beside the latencies to each run's mean: the tensor "
        f"pipe active {gpu.compute_tensor_activity:.2f} of a compute-bound kernel's run (a memory-bound kernel's "
        f"FLOPs at the peak rate), HBM {gpu.memory_dram_activity:.2f} per byte at full bandwidth plus "
        f"{gpu.compute_dram_share:.2f} of a compute-bound kernel's run. Tensor and DRAM activity of each held-out "
        f"point, GPU exporter / model: {activity}. Mean SM clock of each held-out point, the GPU exporter's over the "
        f"run / the model's over its steps (MHz): {clocks}."
    )


def board_power(grid: Grid, gpu: GpuSpec) -> PowerFit | LimiterFit:
    """The power curve and limiter from the limiter probe's 100 ms readings where one ran on the grid's board
    (`limiter/` in its folder), else the power curve from the GPU exporter's one-second samples of the runs."""
    probe = grid.data / "limiter"
    if (probe / "samples.csv.gz").exists():
        return fit_limiter(probe, gpu)
    return fit_power(read_samples(grid.data), gpu.idle_power_w, gpu.tdp_w, gpu.sm_clock_mhz)


def power_knobs(power: PowerFit | LimiterFit, gpu: GpuSpec) -> tuple[tuple[Knob, ...], dict[str, float]]:
    """What a grid's refit fits, and the GPU's values it starts from: a probed board's curve and window are the
    probe's; otherwise the curve starts from the one-second fit and is fitted, the window is `probed_window`'s."""
    probed = isinstance(power, LimiterFit)
    window = {} if probed else {"power_window_s": probed_window(gpu)}
    start = {**power.gpu_changes(), **window, **{knob.name: knob.start for knob in ACTIVITY}}
    return (*FITTED, *(() if probed else CURVE), *ACTIVITY, CLIENT), start


def probed_window(gpu: GpuSpec) -> float:
    """The limiter's averaging window the probe with GPM's activity gave (`WINDOW_PROBE`), for a board whose own
    probe had none: the window with which this board's limiter (its idle power in the curve) replays the probe's
    clocks best, as the engine will run it (H200 0.0634 s, the H100 the probe ran on 0.0628 s)."""
    return fit_limiter(WINDOW_PROBE, gpu).power_window_s


def _curve_text(power: PowerFit | LimiterFit, gpu: GpuSpec) -> str:
    curve = (
        f"{power.compute_power_w:.0f} W for the tensor pipe fully active and {power.memory_power_w:.0f} W for HBM "
        f"fully active, over {gpu.idle_power_w:.0f} W idle"
    )
    if isinstance(power, LimiterFit):
        return (
            f"The board's power limit in the model (bench/gpu_limiter.py, from the limiter probe's NVML readings "
            f"on this board, one each 100 ms, in bench/data/*/limiter): {power.intervals} busy intervals at a steady "
            f"clock give {curve}, compute power falling as the SM clock ratio to the "
            f"{power.clock_power_exponent:.2f} (rms {power.rms_w:.0f} W); the engine's limiter, holding its running "
            f"average to the {gpu.tdp_w:.0f} W limit over {power.power_window_s:.2f} s, picks the board's clocks "
            f"within {power.rms_mhz:.0f} MHz rms over the probe's busy intervals."
        )
    return (
        f"The board's power limit in the model: the GPU exporter's samples during these runs (bench/gpu_power.py) "
        f"start the fit: {power.uncapped} busy seconds at the full clock and below the {gpu.tdp_w:.0f} W limit give "
        f"{curve}; with the {power.capped} seconds at the limit, compute power falls as the SM clock ratio to the "
        f"{power.clock_power_exponent:.2f} (rms {power.rms_w:.0f} W over every busy second). Fitted beside the "
        f"latencies and each run's mean SM clock: {gpu.compute_power_w:.0f} W for the tensor pipe and the exponent "
        f"{gpu.clock_power_exponent:.2f}; the limiter's window, {gpu.power_window_s:.3f} s, is the one the H100's "
        f"probe with GPM's activity gave (bench/data/{WINDOW_PROBE.parent.name}/{WINDOW_PROBE.name}, "
        "bench/gpu_limiter.py), not fitted."
    )


# a grid's last refit, where the next one starts: only the fitted half's points made it, as they make the next
LAST_REFIT = "refit.json"


def last_refit(grid: Grid, knobs: tuple) -> dict[Knob, float]:
    """The knobs' values where the grid's last refit stopped (none the first time, or a knob it did not have)."""
    path = grid.data / LAST_REFIT
    values = json.loads(path.read_text()) if path.exists() else {}
    return {knob: float(values[knob.name]) for knob in knobs if knob.name in values}


def grid_section(grid: Grid) -> tuple[list[str], Fit]:
    """One grid's comparison: the shipped set on every point, then a refit to half of them judged on the rest."""
    profile = measured_profile(grid.profile)
    points = measured_points(grid.data / "points.csv")
    shipped = comparison(profile, 0.0, points)
    fit, held = held_out(points)
    power = board_power(grid, profile.gpu)
    knobs, start = power_knobs(power, profile.gpu)
    last = last_refit(grid, knobs)
    fitted = fit_efficiency(fit, profile.with_changes(gpu=start), knobs, last=last)
    passes = (
        f"one Nelder-Mead pass from where the last refit stopped, bench/data/{grid.data.name}/{LAST_REFIT}"
        if last
        else "Nelder-Mead, then restarts"
    )
    (grid.data / LAST_REFIT).write_text(json.dumps(fitted.values(knobs), indent=1) + "\n")
    refit = comparison(fitted.profile, fitted.client_token_s, held)
    lines = [
        f"## Real vLLM 0.20.2 on an {grid.gpu} against the engine model",
        "",
        (
            f"`python -m bench real-vllm`: each point measured with `vllm bench serve` on the GPU host ({grid.note}; "
            "Llama-3.1-8B architecture with dummy weights, random prompts of exact lengths; `docs/vllm-on-h200.md`, "
            f"raw results in bench/data/{grid.data.name}) and run again in the engine model: closed loops as `vllm "
            "bench serve --max-concurrency` runs them, first wave included, and the Poisson points' requests sent at "
            "the times the real run sent them, through the API server's one worker and the engine scheduling "
            "asynchronously, as vLLM 0.20.2 does (serving/engine/harness.py). Error = model / real - 1. Goal (issue "
            "32, for the H200): median error <= 10% and every point within 20% on the held-out half, after calibration."
        ),
        "",
        *_shipped_lines(grid, shipped, held),
        "",
        (
            f"Refitted to half of the points (sorted by name, every second one held out before the fit; "
            f"{len(fit)} fitted, {len(held)} held out): {fitted.text(knobs)}. The loss over the fitted half after "
            f"each pass of the search ({passes}): {', '.join(f'{v:.3f}' for v in fitted.losses)}. "
            "On the held-out half:"
        ),
        "",
        *error_summary(refit),
        "",
        (
            f"{_refit_note(grid)}TTFT median is the more robust of the two TTFT figures (a point's first request can "
            "include one-time work); where it misses and why: docs/vllm-on-h200.md."
        ),
        "",
        f"The held-out half, refitted ({grid.gpu}):",
        "",
        *_table(refit, "engine model (refit)"),
        "",
        _power_text(power, fitted.profile.gpu, refit, held),
        "",
        f"Every point, shipped set ({grid.gpu}):",
        "",
        *_table(shipped, f"engine model ({grid.shipped_set})"),
        "",
    ]
    return lines, fitted


MOE_DATA = Path(__file__).resolve().parent / "data" / "vllm-h100-qwen3-moe"


def moe_profile():
    """Qwen3-30B-A3B on an H100 as `headroom profiles add --config` builds it from the config.json the GPU host
    served (the model's published one), at the server's --max-model-len."""
    from serving.profiles import build_profile
    from serving.profiles.from_config import profile_document

    document = profile_document(MOE_DATA / "config.json", "H100", model_name="Qwen/Qwen3-30B-A3B", max_model_len=8192)
    # from the dense set: its MoE set (vllm-v1-moe) holds the overheads this bench fits
    profile = build_profile({**document, "efficiency": "vllm-v1"}, "qwen3-30b-a3b")
    return profile.with_changes(scheduler={"async_scheduling": True})


# what the MoE runs fit, from the shipped set: the server's request overhead and the launch cost of steps beyond
# vLLM's CUDA graphs (a 48-layer MoE model launches many kernels a layer; dense runs never showed it apart)
MOE_FITTED = (Knob("request_overhead_s", 1e-3, 0.0, 0.1), Knob("eager_step_overhead_s", 1e-3, 0.0, 0.5))
# on the dense refit carried over (the same server and board): the MoE's own GEMM efficiency (its experts' grouped
# GEMMs, many small ones a step) beside those two overheads
MOE_OWN = (Knob("gemm_compute", 1.0, 0.05, 1.0), *MOE_FITTED)


def moe_section(fitted: Fit) -> list[str]:
    """The MoE model against its real points: the shipped set and the dense refit on all of them; two overheads
    fitted to half of them, on the shipped set and on the dense refit with the MoE's own GEMM efficiency, judged on
    the other half."""
    profile = moe_profile()
    points = measured_points(MOE_DATA / "points.csv")
    facts = json.loads((MOE_DATA / "facts.json").read_text())
    shipped = comparison(profile, 0.0, points)
    carried = {"efficiency": fitted.efficiency, "gpu": fitted.profile.gpu}  # the same H100, its power model included
    refit = comparison(profile.model_copy(update=carried), fitted.client_token_s, points)
    fit, held = held_out(points)
    own = fit_efficiency(fit, profile, MOE_FITTED)
    own_rows = comparison(own.profile, 0.0, held)
    dense = fit_efficiency(fit, profile.model_copy(update=carried), MOE_OWN, fitted.client_token_s)
    dense_rows = comparison(dense.profile, dense.client_token_s, held)
    # what `headroom profiles add` gives MoE models: the set these overheads were copied into
    moe_set = comparison(profile.model_copy(update={"efficiency": efficiency_set("vllm-v1-moe")}), 0.0, held)
    return [
        "## Real vLLM 0.20.2 serving an MoE model (Qwen3-30B-A3B) on an H100",
        "",
        (
            f"The same way, {len(points)} points (bench/data/vllm-h100-qwen3-moe; dummy weights, its published "
            "config.json, --max-model-len 8192), against the profile `headroom profiles add --config` builds "
            f"(30.5B parameters, 3.3B active: 8 of 128 experts a token). vLLM loaded {facts['model_weights_gib']} GiB "
            f"of weights and kept {facts['kv_cache_tokens']:,.0f} tokens of KV cache (the profile: "
            f"{profile.kv_capacity_tokens:,}); ready {facts['cold_start_s']} s after start."
        ),
        "",
        "The shipped efficiency set (vllm-v1), all points, none fitted:",
        "",
        *error_summary(shipped),
        "",
        "The dense model's refit, carried over:",
        "",
        *error_summary(refit),
        "",
        (
            f"The shipped set with two overheads fitted to half of these points ({len(fit)} fitted, {len(held)} held "
            f"out, every second by name): {own.text(MOE_FITTED)}. On the held-out half:"
        ),
        "",
        *error_summary(own_rows),
        "",
        (
            "The efficiency set `headroom profiles add` gives MoE models (vllm-v1-moe: these overheads, rounded), on "
            "the held-out half:"
        ),
        "",
        *error_summary(moe_set),
        "",
        (
            f"The dense refit carried over, with the MoE's own GEMM efficiency and the two overheads fitted to the same "
            f"half ({dense.text(MOE_OWN)}; the server's and the client's costs and the power model stay the dense "
            "refit's). On the held-out half:"
        ),
        "",
        *error_summary(dense_rows),
        "",
        *_table(dense_rows, "engine model (dense refit + MoE GEMM and overheads)"),
        "",
        *_table(own_rows, "engine model (vllm-v1 + fitted overheads)"),
        "",
        "Every point, shipped set:",
        "",
        *_table(shipped, "engine model (vllm-v1)"),
    ]


def _table(rows: list[dict], model: str) -> list[str]:
    return [
        f"| point | metric | real vLLM | {model} | error |",
        "|---|---|---|---|---|",
        *(f"| {r['point']} | {r['metric']} | {r['real']:.4g} | {r['model']:.4g} | {r['error']:+.1%} |" for r in rows),
    ]


if __name__ == "__main__":
    print(real_vllm_section())
