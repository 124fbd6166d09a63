"""The board's power model fitted to the GPU exporter's samples taken while real vLLM ran (bench/data/vllm-*/gpu_*.csv):
power = idle + compute_power_w x tensor-active x clock^exponent + memory_power_w x DRAM-active; and each run's mean
activity, which the engine model's own is fitted to (bench/real_vllm.py)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar

BUSY = 0.9  # graphics engine active: the second was spent running kernels
CAPPED_W = 15.0  # within this of the limit, the limiter holds the clock


@dataclass(frozen=True)
class PowerFit:
    compute_power_w: float
    memory_power_w: float
    clock_power_exponent: float
    rms_w: float  # over every busy second, capped or not
    uncapped: int  # busy seconds at the full clock, below the limit: they fit the two powers
    capped: int  # busy seconds at the limit: with the rest, they fit the exponent

    def gpu_changes(self) -> dict:
        return {
            "compute_power_w": round(self.compute_power_w, 1),
            "memory_power_w": round(self.memory_power_w, 1),
            "clock_power_exponent": round(self.clock_power_exponent, 3),
        }


def read_samples(folder: Path) -> dict[str, np.ndarray]:
    """Every `gpu_*.csv` of a run's folder, one array per DCGM field, in time order (a sampler that outlived its
    call wrote seconds the next call's file holds too: each second counts once)."""
    rows: dict[float, dict] = {}
    for path in sorted(folder.glob("gpu_*.csv")):
        with open(path) as f:
            rows.update((float(row["time"]), row) for row in csv.DictReader(f))
    if not rows:
        raise FileNotFoundError(f"no gpu_*.csv samples in {folder}")
    ordered = [rows[t] for t in sorted(rows)]
    return {key: np.array([float(r[key]) for r in ordered]) for key in ordered[0]}


def run_activity(samples: dict[str, np.ndarray], runs: dict[str, tuple[float, float]]) -> dict[str, dict]:
    """name -> DCGM's mean tensor and DRAM activity (and SM clock, where sampled) over the seconds wholly within
    each run (its first and last second straddle the run's neighbours)."""
    fields = {"tensor_active": "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "dram_active": "DCGM_FI_PROF_DRAM_ACTIVE"}
    if "DCGM_FI_DEV_SM_CLOCK" in samples:
        fields["sm_clock_mhz"] = "DCGM_FI_DEV_SM_CLOCK"
    found = {}
    for name, (start, end) in runs.items():
        inside = (samples["time"] >= start + 1.0) & (samples["time"] <= end - 1.0)
        if inside.sum() >= 2:
            found[name] = {key: float(samples[field][inside].mean()) for key, field in fields.items()}
    return found


def fit_power(samples: dict[str, np.ndarray], idle_w: float, limit_w: float, max_clock_mhz: float) -> PowerFit:
    """The two powers by least squares over busy seconds at the full clock and below the limit (the idle power is
    the GPU spec's), then the clock exponent by least squares over every busy second."""
    busy = samples["DCGM_FI_PROF_GR_ENGINE_ACTIVE"] >= BUSY
    power = samples["DCGM_FI_DEV_POWER_USAGE"][busy]
    clock = samples["DCGM_FI_DEV_SM_CLOCK"][busy] / max_clock_mhz
    tensor = samples["DCGM_FI_PROF_PIPE_TENSOR_ACTIVE"][busy]
    dram = samples["DCGM_FI_PROF_DRAM_ACTIVE"][busy]
    capped = power >= limit_w - CAPPED_W
    free = (clock >= 0.98) & ~capped
    (compute_w, memory_w), *_ = np.linalg.lstsq(np.c_[tensor[free], dram[free]], power[free] - idle_w, rcond=None)
    residual = lambda exponent: idle_w + compute_w * tensor * clock**exponent + memory_w * dram - power
    exponent = minimize_scalar(lambda e: float(np.sum(residual(e) ** 2)), bounds=(0.05, 4.0), method="bounded").x
    rms = float(np.sqrt(np.mean(residual(exponent) ** 2)))
    fitted = (float(compute_w), float(memory_w), float(exponent))
    return PowerFit(*fitted, rms, int(free.sum()), int(capped.sum()))
