"""The board's power limit: the clock a step may run at, the running average, and the engine's steps under it."""

import pytest

from serving.engine.engine import Engine
from serving.engine.power import MIN_CLOCK_RATIO, PowerGovernor, clock_within, draw_w
from serving.engine.profile import POWER_FIELDS, GpuSpec
from serving.engine.scheduler import EngineRequest
from serving.engine.steptime import BatchShape, StepTimeModel
from serving.profiles import load_profile

POWER = {"compute_power_w": 800.0, "memory_power_w": 600.0, "clock_power_exponent": 0.5}
# the H200 without the shipped profile's fitted power curve: the datasheet's board, whose window is the default
PLAIN = load_profile("llama-3.1-8b-h200").with_changes(gpu={f: GpuSpec.model_fields[f].default for f in POWER_FIELDS})
# GEMMs near the tensor cores' peak, as the refits to real vLLM find them: a long prefill draws more than the limit
CAPPED = PLAIN.with_changes(gpu=POWER, efficiency={"gemm_compute": 0.95, "attention_compute": 0.7})
GPU = CAPPED.gpu


def test_a_step_within_the_limit_keeps_the_full_clock():
    assert clock_within(GPU, 0.3, 0.5, GPU.tdp_w) == 1.0
    assert draw_w(GPU, 0.3, 0.5, 1.0) < GPU.tdp_w


def test_a_step_over_the_limit_runs_at_the_clock_that_draws_exactly_the_limit():
    compute, dram = 0.8, 0.1
    assert draw_w(GPU, compute, dram, 1.0) > GPU.tdp_w
    clock = float(clock_within(GPU, compute, dram, GPU.tdp_w))
    assert MIN_CLOCK_RATIO < clock < 1.0
    # compute-bound: the tensor cores stay as busy per cycle, so the draw at that clock is the limit
    assert draw_w(GPU, compute, dram, clock) == pytest.approx(GPU.tdp_w)


def test_the_clock_never_falls_below_the_boards_floor():
    assert clock_within(GPU, 1.0, 1.0, GPU.idle_power_w) == MIN_CLOCK_RATIO


def test_the_governor_lets_a_burst_after_idle_draw_more_than_the_limit_but_not_sustained_load():
    governor = PowerGovernor(GPU)  # the default window: 0.5 s
    assert governor.allowed_w(0.0, 0.1) > 2 * GPU.tdp_w  # from idle, a short step may draw far more
    for i in range(200):  # 20 s of steps drawing 800 W: the average reaches them
        governor.record(i * 0.1, 0.1, 800.0)
    assert governor.average_w == pytest.approx(800.0, rel=1e-6)
    assert governor.allowed_w(governor.at, 0.1) < GPU.tdp_w  # now a step must draw under the limit to recover
    governor.allowed_w(governor.at + 10.0, 0.1)  # ten seconds idle: the average decays to idle
    assert governor.average_w == pytest.approx(GPU.idle_power_w, abs=1e-3)


def test_sustained_prefill_slows_to_the_capped_clock_while_the_first_runs_at_full_clock():
    engine = Engine(CAPPED)
    for i in range(40):
        engine.add(EngineRequest(str(i), 8192, 1))
    steps = [engine.step() for _ in range(40)]
    first, last = steps[0].timing, steps[-1].timing
    assert first.clock == 1.0
    assert last.clock < 0.95 and last.duration_s > first.duration_s * 1.03
    assert last.power_w == pytest.approx(GPU.tdp_w, rel=0.02)  # settled at the limit
    assert engine.governor.average_w <= GPU.tdp_w * 1.01


def test_without_a_power_model_nothing_changes():
    shape = BatchShape.of([(8192, 0)])
    plain = StepTimeModel(PLAIN).timing(shape)
    assert (plain.clock, plain.power_w) == (1.0, 0.0)
    assert Engine(PLAIN).governor is None
    assert not set(POWER) & set(PLAIN.gpu.model_dump())  # the spec serializes as before: digests stay
    assert CAPPED.gpu.model_dump()["compute_power_w"] == 800.0


def test_a_decode_stretch_under_the_limit_is_fast_forwarded_and_its_power_recorded():
    engine = Engine(CAPPED)
    for i in range(8):
        engine.add(EngineRequest(str(i), 128, 64))
    engine.step()  # the prefill of all eight
    engine.step()  # their first decode
    before = engine.governor.average_w
    forward = engine.fast_forward(10.0)
    assert forward is not None and forward.steps > 10
    assert engine.governor.average_w != before


def activity(profile, shape):
    model = StepTimeModel(profile)
    kernels = model._kernels(shape.total_tokens, shape.kv_read_tokens + shape.total_tokens, shape.attention_pairs)
    timing = model.timing(shape)
    return model.activity(*kernels, timing.clock, timing.duration_s)


def test_a_compute_bound_step_keeps_the_tensor_pipe_active_a_share_of_its_run_and_brings_hbm_traffic():
    """DCGM's tensor activity counts the cycles the pipe is busy at any rate: a prefill at a fraction of the peak
    FLOP rate reads near its whole run, not its FLOPs over the peak; its tiles keep HBM busy beyond the weights."""
    prefill = BatchShape.of([(8192, 0)])
    gpu = {**POWER, "compute_tensor_activity": 0.85, "compute_dram_share": 0.2}
    tensor, dram = activity(CAPPED.with_changes(gpu=gpu), prefill)
    plain_tensor, plain_dram = activity(CAPPED, prefill)  # the whole run, no traffic of its own
    assert 0.8 < plain_tensor <= 1.0 and tensor == pytest.approx(0.85 * plain_tensor)
    assert dram == pytest.approx(plain_dram + 0.2 * plain_tensor, rel=1e-6)
    assert plain_dram < 0.1  # the weights: a few percent of the step at full bandwidth


def test_a_memory_bound_step_uses_the_tensor_pipe_only_for_its_flops():
    decode = BatchShape.of([(1, 1000)] * 8)
    gpu = {**POWER, "compute_tensor_activity": 0.5, "compute_dram_share": 0.3, "memory_dram_activity": 0.9}
    model = StepTimeModel(CAPPED)
    timing = model.timing(decode)
    tensor, dram = activity(CAPPED.with_changes(gpu=gpu), decode)
    assert tensor == pytest.approx(timing.flops / (model._peak * timing.duration_s))  # the share setting is unused
    assert dram == pytest.approx(0.9 * timing.bytes_moved / (model._bandwidth * timing.duration_s))
    assert draw_w(GPU, tensor, dram, 1.0) == pytest.approx(GPU.idle_power_w + 800 * tensor + 600 * dram)


def test_an_idle_engine_cools_so_its_next_burst_runs_at_the_full_clock():
    """The driver passes each step's start: idle time lets the limiter's average fall back to idle power."""
    engine = Engine(CAPPED)
    for i in range(41):
        engine.add(EngineRequest(str(i), 8192, 1))
    now = 0.0
    for _ in range(40):
        step = engine.step(now)
        now += step.duration_s
    assert step.timing.clock < 0.95
    after_idle = engine.step(now + 10.0)
    assert after_idle.timing.clock == 1.0
