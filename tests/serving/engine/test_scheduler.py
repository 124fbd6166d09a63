"""Scheduler invariants on randomized workloads: budgets, KV capacity, preemption, exactly-once completion."""

import random

import pytest

from serving.engine.engine import Engine
from serving.engine.kvcache import blocks_for
from serving.engine.scheduler import EngineRequest, Status
from serving.profiles import load_profile


def small_profile(blocks: int, max_num_seqs: int = 32, max_batched: int = 512, chunked: bool = True):
    """A real profile shrunk so that the KV cache runs out quickly."""
    base = load_profile("llama-3.1-8b-h100")
    profile = base.with_changes(
        scheduler={
            "max_num_seqs": max_num_seqs,
            "max_num_batched_tokens": max_batched,
            "enable_chunked_prefill": chunked,
        },
        model={"max_model_len": 4096},
    )
    engine = Engine(profile)
    engine.scheduler.kv.__init__(blocks, True)  # same class, fewer blocks
    return engine


def drive(engine: Engine, arrivals: list[tuple[int, EngineRequest]], max_steps: int = 200_000):
    """Add requests at given step indices; check invariants every step; return per-request emitted counts."""
    cfg = engine.profile.scheduler
    kv = engine.scheduler.kv
    emitted: dict[str, int] = {}
    finished: list[str] = []
    pending = sorted(arrivals, key=lambda a: a[0])
    step_index = 0
    while pending or engine.has_work:
        while pending and pending[0][0] <= step_index:
            engine.add(pending.pop(0)[1])
        step = engine.step()
        items = step.batch.items
        assert len(engine.scheduler.running) <= cfg.max_num_seqs
        assert len(items) <= cfg.max_num_seqs
        assert sum(n for _, n in items) <= cfg.max_num_batched_tokens
        assert len({r.request_id for r, _ in items}) == len(items), "a request scheduled twice in one step"
        assert kv.used_blocks <= kv.num_blocks
        for request in engine.scheduler.running:
            assert len(kv.held(request.request_id)) >= blocks_for(request.num_computed_tokens)
        kv.check()
        if items:
            assert step.timing.duration_s >= step.timing.floor_s > 0
        for request in step.emitted:
            emitted[request.request_id] = emitted.get(request.request_id, 0) + 1
        finished += [r.request_id for r in step.finished]
        step_index += 1
        assert step_index < max_steps, "no progress"
    return emitted, finished


@pytest.mark.parametrize("seed", range(6))
def test_invariants_under_random_load_with_preemption(seed):
    rng = random.Random(seed)
    engine = small_profile(
        blocks=rng.choice([40, 80, 160]), max_num_seqs=rng.choice([4, 16, 64]), max_batched=rng.choice([64, 256, 1024])
    )
    requests = [
        EngineRequest(
            f"r{i}", rng.randint(1, 300), rng.randint(1, 200), stop_after=rng.choice([None, rng.randint(1, 50)])
        )
        for i in range(80)
    ]
    arrivals = [(rng.randint(0, 400), r) for r in requests]
    emitted, finished = drive(engine, arrivals)
    assert sorted(finished) == sorted(r.request_id for r in requests), "every request finishes exactly once"
    for r in requests:
        assert r.status is Status.FINISHED
        assert emitted[r.request_id] == r.output_tokens
        expected = min(r.max_tokens, r.stop_after or r.max_tokens)
        assert r.output_tokens == expected
        assert r.finish_reason == ("stop" if r.stop_after is not None and r.stop_after < r.max_tokens else "length")
    assert engine.scheduler.kv.used_blocks == 0


def test_preemption_happens_and_preempted_request_completes():
    engine = small_profile(blocks=24, max_num_seqs=8, max_batched=512)
    requests = [EngineRequest(f"r{i}", 64, 128) for i in range(6)]  # 6 x 12 blocks at the end > 24 blocks
    _emitted, finished = drive(engine, [(0, r) for r in requests])
    preempted = [r for r in requests if r.num_preemptions > 0]
    assert engine.scheduler.num_preemptions > 0 and preempted
    assert all(r.output_tokens == 128 for r in requests)
    assert sorted(finished) == sorted(r.request_id for r in requests)


def test_newest_request_is_preempted_first():
    engine = small_profile(blocks=10, max_num_seqs=8, max_batched=512)
    first, second = EngineRequest("old", 70, 60), EngineRequest("new", 70, 60)
    engine.add(first)
    engine.step()
    engine.add(second)
    while second.num_preemptions == 0 and engine.has_work:
        engine.step()
        assert first.num_preemptions == 0
    assert second.num_preemptions == 1


def test_chunked_prefill_splits_long_prompts_and_no_chunking_waits():
    engine = small_profile(blocks=1000, max_batched=128)
    request = EngineRequest("long", 1000, 2)
    engine.add(request)
    steps = 0
    while request.output_tokens == 0:
        step = engine.step()
        assert sum(n for _, n in step.batch.items) <= 128
        steps += 1
    assert steps == -(-1000 // 128)

    strict = small_profile(blocks=1000, max_batched=128, chunked=False)
    strict.add(EngineRequest("too-long", 1000, 2))
    assert strict.step().batch.items == []  # never fits the token budget without chunking


def test_prefix_cache_hits_shared_prefix_and_counts_tokens():
    engine = small_profile(blocks=200)
    shared = tuple(range(8))  # 8 blocks = 128 tokens of shared prefix
    a = EngineRequest("a", 200, 4, prefix_block_ids=shared)
    engine.add(a)
    while engine.has_work:
        engine.step()
    b = EngineRequest("b", 200, 4, prefix_block_ids=shared + (99,))
    engine.add(b)
    step = engine.step()
    assert b.prefix_hit_tokens == 128
    assert {r.request_id: n for r, n in step.batch.items}["b"] == 200 - 128
    assert engine.scheduler.prefix_hits_tokens == 128
    assert engine.scheduler.prefix_queries_tokens == 400


def test_full_prefix_hit_still_recomputes_last_token():
    engine = small_profile(blocks=200)
    ids = tuple(range(4))
    for name in ("a", "b"):
        r = EngineRequest(name, 64, 2, prefix_block_ids=ids)
        engine.add(r)
        while engine.has_work:
            engine.step()
    assert r.prefix_hit_tokens == 48  # 64 tokens hit, but the last block is recomputed to produce a token


def test_abort_frees_blocks():
    engine = small_profile(blocks=100)
    r = EngineRequest("x", 300, 100)
    engine.add(r)
    engine.step()
    assert engine.scheduler.kv.used_blocks > 0
    engine.abort(r)
    assert engine.scheduler.kv.used_blocks == 0 and not engine.has_work
    assert r.finish_reason == "abort"


def test_request_over_max_model_len_is_refused():
    engine = small_profile(blocks=100)
    with pytest.raises(ValueError, match="max_model_len"):
        engine.add(EngineRequest("big", 4000, 200))
