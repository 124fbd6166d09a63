"""The limiter fit recovers a known board: a power curve and window, NVML's 100 ms readings of it, the fit."""

import csv
import gzip

import numpy as np
import pytest

from bench.gpu_limiter import fit_limiter, read_intervals, read_probe
from serving.engine.power import PowerGovernor, clock_within, draw_w
from serving.profiles import load_profile

LOADS = {"idle": (0.0, 0.0), "gemm": (0.92, 0.12), "stream": (0.02, 0.9), "mix": (0.5, 0.55)}
PHASES = [("idle", 1.0), ("gemm", 2.0), ("stream", 1.0), ("mix", 2.0)] + [("gemm", 0.3), ("stream", 0.3)] * 6


def board():
    gpu = load_profile("llama-3.1-8b-h200").gpu
    return gpu.model_copy(
        update={"compute_power_w": 820.0, "memory_power_w": 560.0, "clock_power_exponent": 1.1, "power_window_s": 0.2}
    )


def write_probe(folder, gpu):
    """What the probe would record on `gpu`: every 100 ms the energy counter, the clock the limiter set for the
    interval just ended and GPM's activity over it; samples every 5 ms between."""
    governor, energy_mj, clock, rows = PowerGovernor(gpu), 0.0, 1.0, []
    loads = [LOADS[kind] for kind, seconds in PHASES for _ in range(round(seconds / 0.1))]
    for i, (tensor, dram) in enumerate(loads):
        at = i * 0.1
        if tensor or dram:
            clock = float(clock_within(gpu, tensor, dram, governor.allowed_w(at, 0.1)))
            power = float(draw_w(gpu, tensor, dram, clock))
            governor.record(at, 0.1, power)
        else:
            clock, power = 1.0, gpu.idle_power_w
        energy_mj += power * 0.1 * 1000
        for tick in range(20):
            activity = (tensor, dram) if tick == 0 else ("", "")
            rows.append((f"{at + 0.1 + tick * 0.005:.4f}", energy_mj, round(clock * gpu.sm_clock_mhz), *activity))
    with gzip.open(folder / "samples.csv.gz", "wt", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(("time", "power_mw", "instant_mw", "energy_mj", "sm_mhz", "reasons", "tensor", "dram"))
        writer.writerows((t, "", "", e, mhz, "", tensor, dram) for t, e, mhz, tensor, dram in rows)


def test_intervals_follow_the_energy_counter(tmp_path):
    gpu = board()
    write_probe(tmp_path, gpu)
    intervals = read_intervals(read_probe(tmp_path), gpu.sm_clock_mhz)
    assert np.allclose(intervals.end - intervals.start, 0.1, atol=1e-3)
    assert np.nanmax(intervals.power_w) <= 1.6 * gpu.tdp_w and np.nanmin(intervals.power_w) == pytest.approx(
        gpu.idle_power_w, rel=1e-3
    )


def test_the_fit_recovers_the_boards_curve_and_window(tmp_path):
    gpu = board()
    write_probe(tmp_path, gpu)
    fit = fit_limiter(tmp_path, gpu.model_copy(update={"power_window_s": 1.0, "clock_power_exponent": 0.4}))
    assert fit.compute_power_w == pytest.approx(820.0, rel=0.03)
    assert fit.memory_power_w == pytest.approx(560.0, rel=0.03)
    assert fit.clock_power_exponent == pytest.approx(1.1, rel=0.05)
    assert fit.power_window_s == pytest.approx(0.2, rel=0.15)
    assert fit.rms_mhz < 20.0


def test_a_probe_without_activity_readings_is_refused(tmp_path):
    with gzip.open(tmp_path / "samples.csv.gz", "wt") as f:
        f.write("time,power_mw,instant_mw,energy_mj,sm_mhz,reasons\n")
        f.writelines(f"{i * 0.1:.1f},,,{i * 50000},1980,\n" for i in range(50))
    with pytest.raises(ValueError, match="GPM activity"):
        fit_limiter(tmp_path, board())


def test_a_grid_whose_board_was_probed_takes_the_probes_curve_and_window(tmp_path):
    from bench.real_vllm import Grid, board_power

    gpu = board()
    (tmp_path / "limiter").mkdir()
    write_probe(tmp_path / "limiter", gpu)
    power = board_power(Grid("H200", tmp_path, "llama-3.1-8b-h200"), gpu)
    assert power.power_window_s == pytest.approx(0.2, rel=0.15) and "power_window_s" in power.gpu_changes()


def test_the_h100s_probe_shows_a_limiter_that_averages_over_a_tenth_of_a_second():
    from pathlib import Path

    probe = Path(__file__).resolve().parents[2] / "bench" / "data" / "vllm-h100" / "limiter-1"
    fit = fit_limiter(probe, load_profile("llama-3.1-8b-h100").gpu)
    assert fit.power_window_s < 0.2 and 0.4 < fit.clock_power_exponent < 1.2
    assert fit.rms_w < 80.0 and fit.lag_s < 0.0  # GPM's readings run ahead of NVML's energy
