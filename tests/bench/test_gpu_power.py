"""The power model's fit to the GPU exporter's samples: it recovers a known board and reads the measured ones."""

from pathlib import Path

import numpy as np
import pytest

from bench.gpu_power import fit_power, read_samples

DATA = Path(__file__).resolve().parents[2] / "bench" / "data"


def synthetic(compute_w: float, memory_w: float, exponent: float, idle_w: float = 75.0) -> dict[str, np.ndarray]:
    """Busy seconds of a board drawing exactly the model's power, its limiter holding 700 W by the clock."""
    rng = np.random.default_rng(3)
    tensor, dram = rng.uniform(0.0, 0.9, 400), rng.uniform(0.1, 0.7, 400)
    full = idle_w + compute_w * tensor + memory_w * dram
    spare = np.maximum(700.0 - idle_w - memory_w * dram, 1.0) / (compute_w * tensor + 1e-9)
    clock = np.where(full > 700.0, np.clip(spare ** (1 / exponent), 0.5, 1.0), 1.0)
    power = idle_w + compute_w * tensor * clock**exponent + memory_w * dram
    return {
        "DCGM_FI_PROF_GR_ENGINE_ACTIVE": np.ones(400),
        "DCGM_FI_DEV_POWER_USAGE": power,
        "DCGM_FI_DEV_SM_CLOCK": clock * 1980.0,
        "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE": tensor,
        "DCGM_FI_PROF_DRAM_ACTIVE": dram,
    }


def test_the_fit_recovers_a_known_board():
    fit = fit_power(synthetic(650.0, 600.0, 0.5), 75.0, 700.0, 1980.0)
    assert fit.compute_power_w == pytest.approx(650.0, rel=1e-3)
    assert fit.memory_power_w == pytest.approx(600.0, rel=1e-3)
    assert fit.clock_power_exponent == pytest.approx(0.5, abs=0.01)
    assert fit.rms_w < 1.0 and fit.capped > 20 and fit.uncapped > 100


def test_the_h200_samples_fit_a_board_that_caps():
    gpu = {"idle_w": 75.0, "limit_w": 700.0, "max_clock_mhz": 1980.0}
    fit = fit_power(read_samples(DATA / "vllm-h200"), **gpu)
    assert 500 < fit.compute_power_w < 800 and 400 < fit.memory_power_w < 800
    assert 0.1 < fit.clock_power_exponent < 1.5
    assert fit.capped > 300 and fit.rms_w < 40


def test_a_folder_without_samples_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        read_samples(tmp_path)
