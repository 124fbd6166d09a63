"""The board's power curve and limiter from the limiter probe's NVML samples (bench/data/vllm-*/limiter): power over
each of NVML's 100 ms energy intervals against the SM clock and the tensor pipe's and HBM's activity, fitted to the
engine's power model; then the averaging window with which the engine's limiter picks the clocks the board picked."""

from __future__ import annotations

import csv
import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares, minimize_scalar

from serving.engine.power import PowerGovernor, clock_within, draw_w
from serving.engine.profile import GpuSpec

BUSY_W = 200.0  # an interval drawing this much ran work: below it the board idled between phases
STEADY = 0.02  # the clock read at both ends of an interval within this share of each other: it held that clock
# NVML publishes its energy a while after the interval it covers, GPM counts up to the moment it is read: the lag
# between the two is fitted, as the one at which the curve fits best (on the H100's probe -0.09 s: rms 67 W, 96 W
# at none)
LAGS_S = np.round(np.arange(-0.2, 0.2001, 0.01), 3)


@dataclass(frozen=True)
class Intervals:
    """NVML's energy intervals, in time order: power (W), SM clock ratio at the interval's end, the tensor pipe's
    and HBM's activity over it (NaN where no GPM reading overlapped it), and whether the clock held through it."""

    start: np.ndarray
    end: np.ndarray
    power_w: np.ndarray
    clock: np.ndarray
    tensor: np.ndarray
    dram: np.ndarray
    steady: np.ndarray


@dataclass(frozen=True)
class LimiterFit:
    compute_power_w: float
    memory_power_w: float
    clock_power_exponent: float
    power_window_s: float
    rms_w: float  # power, over the busy intervals the curve was fitted to
    rms_mhz: float  # the engine limiter's clock against the board's, over busy intervals
    intervals: int
    lag_s: float  # the GPM readings' times shifted by this against NVML's energy intervals

    def gpu_changes(self) -> dict:
        return {
            "compute_power_w": round(self.compute_power_w, 1),
            "memory_power_w": round(self.memory_power_w, 1),
            "clock_power_exponent": round(self.clock_power_exponent, 3),
            "power_window_s": round(self.power_window_s, 3),
        }


@dataclass(frozen=True)
class Probe:
    """The probe's samples that read the energy counter and the clock, and its GPM readings (time, tensor, HBM)."""

    time: np.ndarray
    energy_mj: np.ndarray
    sm_mhz: np.ndarray
    gpm: np.ndarray


def read_probe(folder: Path) -> Probe:
    with gzip.open(folder / "samples.csv.gz", "rt", newline="") as f:
        rows = [row for row in csv.DictReader(f) if row["energy_mj"] and row["sm_mhz"]]
    if len(rows) < 3:
        raise ValueError(f"{folder}: fewer than 3 NVML samples with energy and clock in samples.csv.gz")
    column = lambda key: np.array([float(r[key]) for r in rows])
    gpm = [(float(r["time"]), float(r["tensor"]), float(r["dram"])) for r in rows if r.get("tensor") and r["dram"]]
    return Probe(column("time"), column("energy_mj"), column("sm_mhz"), np.array(gpm).reshape(-1, 3))


def read_intervals(probe: Probe, max_clock_mhz: float, lag_s: float = 0.0) -> Intervals:
    """The probe's samples cut at each change of NVML's energy counter (it and every other reading move once a
    tenth of a second); the activity of an interval is the overlap-weighted mean of the GPM readings (each the
    ratio since the one before it, its time shifted by `lag_s`) that cover it."""
    clock = probe.sm_mhz / max_clock_mhz
    moved = np.r_[0, np.flatnonzero(np.diff(probe.energy_mj)) + 1]
    start, end = probe.time[moved[:-1]], probe.time[moved[1:]]
    power = np.diff(probe.energy_mj[moved]) / 1000.0 / (end - start)
    before, after = clock[moved[:-1]], clock[moved[1:]]
    steady = np.abs(after - before) <= STEADY
    tensor, dram = _overlap_means(start, end, probe.gpm + (lag_s, 0.0, 0.0))
    return Intervals(start, end, power, after, tensor, dram, steady)


def _overlap_means(start: np.ndarray, end: np.ndarray, gpm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each interval's activity from the GPM readings (rows of time, tensor, HBM): reading j covers (time of j-1,
    time of j]."""
    tensor, dram = np.full(len(start), np.nan), np.full(len(start), np.nan)
    if len(gpm) < 2:
        return tensor, dram
    times, values = gpm[:, 0], gpm[:, 1:]
    for i, (a, b) in enumerate(zip(start, end)):
        overlap = np.clip(np.minimum(times[1:], b) - np.maximum(times[:-1], a), 0.0, None)
        if overlap.sum() > 0.5 * (b - a):
            tensor[i], dram[i] = overlap @ values[1:] / overlap.sum()
    return tensor, dram


def fit_curve(intervals: Intervals, idle_w: float) -> tuple[float, float, float, float, np.ndarray]:
    """Compute power, memory power and clock exponent by least squares over the busy intervals whose clock held
    and whose activity was read (the idle power is the GPU spec's); and the rms in watts, and which were used."""
    used = (intervals.power_w >= BUSY_W) & intervals.steady & ~np.isnan(intervals.tensor)
    if used.sum() < 10:
        raise ValueError(f"only {int(used.sum())} busy intervals with a steady clock and GPM activity: too few to fit")
    tensor, dram, clock = intervals.tensor[used], intervals.dram[used], intervals.clock[used]

    def residual(x):
        compute_w, memory_w, exponent = x
        return idle_w + compute_w * tensor * clock**exponent + memory_w * dram - intervals.power_w[used]

    found = least_squares(residual, x0=(600.0, 600.0, 1.0), bounds=((0, 0, 0.05), (3000, 3000, 4.0)))
    rms = float(np.sqrt(np.mean(found.fun**2)))
    return (*map(float, found.x), rms, used)


def replay_clocks(intervals: Intervals, gpu: GpuSpec) -> np.ndarray:
    """The clock the engine's limiter would give each busy interval's load (its activity at the full clock: a
    compute-bound kernel keeps its tensor share per cycle at any clock), in order, idle gaps cooling its average."""
    governor = PowerGovernor(gpu)
    clocks = np.full(len(intervals.start), np.nan)
    for i, (a, b) in enumerate(zip(intervals.start, intervals.end)):
        if np.isnan(intervals.tensor[i]) or intervals.power_w[i] < BUSY_W:
            continue
        allowed = governor.allowed_w(a, b - a)
        clocks[i] = clock_within(gpu, intervals.tensor[i], intervals.dram[i], allowed)
        governor.record(a, b - a, float(draw_w(gpu, intervals.tensor[i], intervals.dram[i], clocks[i])))
    return clocks


def fit_limiter(folder: Path, gpu: GpuSpec) -> LimiterFit:
    """The power curve from the probe's steady intervals at the lag where it fits best, then the window whose
    replayed clocks are nearest the board's over every busy interval."""
    probe = read_probe(folder)
    fits = {lag: _curve_at(probe, gpu, lag) for lag in LAGS_S}
    lag = min(fits, key=lambda at: fits[at][1][3])
    intervals, (compute_w, memory_w, exponent, rms_w, used) = fits[lag]
    curve = gpu.model_copy(
        update={"compute_power_w": compute_w, "memory_power_w": memory_w, "clock_power_exponent": exponent}
    )

    def clock_error(window: float) -> float:
        replayed = replay_clocks(intervals, curve.model_copy(update={"power_window_s": window}))
        seen = ~np.isnan(replayed)
        return float(np.sqrt(np.mean((replayed[seen] - intervals.clock[seen]) ** 2))) * gpu.sm_clock_mhz

    window = minimize_scalar(clock_error, bounds=(0.02, 3.0), method="bounded", options={"xatol": 0.005}).x
    fitted = (compute_w, memory_w, exponent, float(window), rms_w, clock_error(window), int(used.sum()), float(lag))
    return LimiterFit(*fitted)


def _curve_at(probe: Probe, gpu: GpuSpec, lag_s: float) -> tuple[Intervals, tuple]:
    intervals = read_intervals(probe, gpu.sm_clock_mhz, lag_s)
    return intervals, fit_curve(intervals, gpu.idle_power_w)
