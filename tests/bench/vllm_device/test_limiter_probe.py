"""The limiter probe's summary: each phase's samples, power and clock, its first and last moments, its work rate."""

import pytest

from bench.vllm_device.limiter_probe import phase_summary


def test_a_phase_is_summarized_from_its_own_samples_only():
    # 2 ms samples over one second: the clock falls 1 MHz a sample; the instant power is read every other sample
    samples = [
        {"time": i * 0.002, "power_mw": 600_000.0, "instant_mw": 700_000.0 if i % 2 else None, "sm_mhz": 1980.0 - i}
        for i in range(500)
    ]
    phases = [
        {"pattern": "p", "cycle": 0, "kind": "gemm", "start": 0.0, "end": 0.5, "amount": 4e14, "busy_s": 0.5},
        {"pattern": "p", "cycle": 0, "kind": "stream", "start": 0.5, "end": 1.0, "amount": 1.5e12, "busy_s": 0.5},
    ]
    gemm, stream = phase_summary(samples, phases)
    assert gemm["samples"] == stream["samples"] == 250
    assert gemm["power_w"] == 600.0 and gemm["instant_w"] == 700.0  # the blank readings are left out, not zeros
    assert gemm["sm_first_mhz"] == pytest.approx(1980 - 12, abs=1) and gemm["sm_min_mhz"] == 1980 - 249
    assert stream["sm_last_mhz"] == pytest.approx(1980 - 487, abs=1)
    assert gemm["rate"] == 800.0 and stream["rate"] == 3.0  # TFLOP/s and TB/s


def test_a_phase_without_samples_is_left_out():
    phase = {"pattern": "p", "cycle": 0, "kind": "idle", "start": 5.0, "end": 6.0, "amount": 0.0, "busy_s": 1.0}
    assert phase_summary([{"time": 0.0, "power_mw": 1.0, "instant_mw": None, "sm_mhz": 1.0}], [phase]) == []
