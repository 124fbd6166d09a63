"""The board's power model fitted to the GPU exporter's samples taken while real vLLM ran (bench/data/vllm-*/gpu_*.csv):
power = idle + compute_power_w x tensor-active x clock^exponent + memory_power_w x DRAM-active, and the DRAM activity
that compute-bound kernels bring with them (a share of their tensor activity)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar

BUSY = 0.9  # graphics engine active: the second was spent running kernels
CAPPED_W = 15.0  # within this of the limit, the limiter holds the clock
COMPUTE_BOUND = 0.7  # tensor-active: a second spent mostly in prefill GEMMs


@dataclass(frozen=True)
class PowerFit:
    compute_power_w: float
    memory_power_w: float
    clock_power_exponent: float
    compute_dram_share: float  # DRAM activity per tensor activity over compute-bound seconds (median)
    rms_w: float  # over every busy second, capped or not
    uncapped: int  # busy seconds at the full clock, below the limit: they fit the two powers
    capped: int  # busy seconds at the limit: with the rest, they fit the exponent

    def gpu_changes(self) -> dict:
        return {
            "compute_power_w": round(self.compute_power_w, 1),
            "memory_power_w": round(self.memory_power_w, 1),
            "clock_power_exponent": round(self.clock_power_exponent, 3),
            "compute_dram_share": round(self.compute_dram_share, 3),
        }


def read_samples(folder: Path) -> dict[str, np.ndarray]:
    """Every `gpu_*.csv` of a run's folder, one array per DCGM field."""
    rows = []
    for path in sorted(folder.glob("gpu_*.csv")):
        with open(path) as f:
            rows += list(csv.DictReader(f))
    if not rows:
        raise FileNotFoundError(f"no gpu_*.csv samples in {folder}")
    return {key: np.array([float(r[key]) for r in rows]) for key in rows[0]}


def fit_power(samples: dict[str, np.ndarray], idle_w: float, limit_w: float, max_clock_mhz: float) -> PowerFit:
    """The two powers by least squares over busy seconds at the full clock and below the limit (the idle power is
    the GPU spec's), then the clock exponent by least squares over every busy second; the DRAM share of compute from
    the seconds spent mostly in compute-bound kernels, where the weights and KV cache the engine model counts are a
    few percent of HBM's bandwidth."""
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
    bound = tensor >= COMPUTE_BOUND
    share = float(np.median(dram[bound] / tensor[bound])) if bound.any() else 0.0
    fitted = (float(compute_w), float(memory_w), float(exponent), share)
    return PowerFit(*fitted, rms, int(free.sum()), int(capped.sum()))
