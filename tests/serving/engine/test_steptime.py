"""Step time: never below the physical floor over a grid of batches; sensible monotonicity."""

import pytest

from serving.engine.steptime import BatchShape, StepTimeModel
from serving.profiles import list_profiles, load_profile


def batch(decodes: int, context: int, prefill: int = 0, prompts: tuple[int, ...] = ()) -> BatchShape:
    return BatchShape.of([(1, context)] * decodes + ([(prefill, 0)] if prefill else []) + [(p, 0) for p in prompts])


@pytest.mark.parametrize("name", list_profiles())
def test_no_step_below_floor(name):
    model = StepTimeModel(load_profile(name))
    for decodes in (0, 1, 8, 64, 256):
        for context in (16, 1024, 8192):
            for prefill in (0, 64, 2048, 8192):
                shape = batch(decodes, context, prefill)
                if shape.num_seqs == 0:
                    continue
                t = model.timing(shape)
                assert t.duration_s >= t.floor_s > 0
                assert 0 < t.busy_fraction <= 1


def test_decode_is_memory_bound_and_grows_with_batch_and_context():
    model = StepTimeModel(load_profile("llama-3.1-8b-h100"))
    one = model.duration(batch(1, 512))
    assert 0.004 < one < 0.012  # weights (16 GB) over 3.35 TB/s plus overhead: a few ms
    assert model.duration(batch(64, 512)) > one
    assert model.duration(batch(64, 8192)) > model.duration(batch(64, 512))


def test_prefill_is_compute_bound():
    model = StepTimeModel(load_profile("llama-3.1-8b-h100"))
    t = model.timing(batch(0, 0, prefill=8192))
    attention_pairs = 8192 * (8192 + 1) / 2
    flops_time = (2 * 8.03e9 * 8192 + 4 * 32 * 32 * 128 * attention_pairs) / 989e12
    assert t.floor_s == pytest.approx(flops_time, rel=0.01)
    assert t.bytes_moved / 3.35e12 < flops_time
    assert t.duration_s > flops_time


def test_tensor_parallel_is_faster_per_step_than_fewer_gpus():
    tp4 = StepTimeModel(load_profile("llama-3.1-70b-h100-tp4")).duration(batch(32, 1024))
    tp8 = StepTimeModel(load_profile("llama-3.1-70b-h100-tp8")).duration(batch(32, 1024))
    assert tp8 < tp4


@pytest.mark.parametrize(
    "decodes,context,prompts,prompt", [(0, 0, 1, 2048), (16, 700, 0, 1), (64, 1500, 3, 1024), (200, 300, 1, 7000)]
)
def test_mixed_steps_times_a_batch_as_the_engine_does(decodes, context, prompts, prompt):
    """The fluid models' vectorized step time: decodes over their context plus whole prompts, as one BatchShape."""
    import numpy as np

    model = StepTimeModel(load_profile("llama-3.1-8b-h100"))
    shape = batch(decodes, context, prompts=(prompt,) * prompts)
    duration, busy = model.mixed_steps(
        np.array([float(decodes)]),
        np.array([float(decodes * context)]),
        np.array([float(prompts * prompt)]),
        float(prompt),
    )
    timing = model.timing(shape)
    assert duration[0] == pytest.approx(timing.duration_s, rel=1e-9)
    assert busy[0] == pytest.approx(timing.gpu_busy_s, rel=1e-9)
    empty, _ = model.mixed_steps(np.zeros(1), np.zeros(1), np.zeros(1))
    assert empty[0] == 0.0


@pytest.mark.parametrize("prompts", [(300, 6000), (100, 2000, 5000), (1, 8000)])
def test_mixed_steps_weigh_a_chunk_of_many_prompt_lengths_by_their_squares(prompts):
    """Whole prompts of several lengths in one chunk: their attention work is the sum of L(L+1)/2, which the mean
    length alone underestimates (by 3% to 7% of the step here, beside a few decodes)."""
    import numpy as np

    model = StepTimeModel(load_profile("llama-3.1-8b-h100"))
    shape = batch(8, 600, prompts=prompts)
    lengths = np.array(prompts, dtype=float)
    args = (np.array([8.0]), np.array([8.0 * 600]), np.array([lengths.sum()]), lengths.mean())
    duration, busy = model.mixed_steps(*args, (lengths**2).sum() / lengths.sum())
    timing = model.timing(shape)
    assert duration[0] == pytest.approx(timing.duration_s, rel=1e-9)
    assert busy[0] == pytest.approx(timing.gpu_busy_s, rel=1e-9)
    assert model.mixed_steps(*args)[0][0] < 0.99 * timing.duration_s  # the mean length alone


def test_steps_beyond_the_cuda_graphs_pay_the_eager_launch_cost():
    """vLLM captures steps of up to 512 tokens in CUDA graphs; a larger step launches its kernels one by one, which
    a 48-layer MoE model pays tens of milliseconds for (docs/vllm-on-h200.md). Unset, nothing changes."""
    plain = load_profile("llama-3.1-8b-h100")
    eager = plain.with_changes(efficiency={"eager_step_overhead_s": 0.06})
    costs = lambda profile: [StepTimeModel(profile).duration(BatchShape.of([(n, 0)])) for n in (512, 513)]
    (plain_512, plain_513), (eager_512, eager_513) = costs(plain), costs(eager)
    assert eager_512 == plain_512 and eager_513 == pytest.approx(plain_513 + 0.06)
    assert "eager_step_overhead_s" not in plain.efficiency.model_dump()
    assert eager.efficiency.model_dump()["graph_max_tokens"] == 512
