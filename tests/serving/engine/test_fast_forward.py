"""Fast-forward equals step-by-step: same finish times, tokens, preemptions and KV state."""

import copy
import random

import numpy as np
import pytest

from serving.engine.engine import Engine
from serving.engine.scheduler import EngineRequest
from serving.engine.steptime import BatchShape
from tests.serving.engine.test_scheduler import small_profile


def run(engine: Engine, arrivals: list[tuple[float, EngineRequest]], use_fast_forward: bool):
    """A tiny discrete-event driver: arrivals join before the first step that starts at or after them."""
    now, finished, pending = 0.0, {}, sorted(arrivals, key=lambda a: a[0])
    while pending or engine.has_work:
        while pending and pending[0][0] <= now:
            engine.add(pending.pop(0)[1])
        if not engine.has_work:
            now = pending[0][0]
            continue
        budget = (pending[0][0] - now) if pending else float("inf")
        ff = engine.fast_forward(budget) if use_fast_forward else None
        if ff is not None:
            now += ff.elapsed_s
            done = ff.finished
        else:
            step = engine.step()
            now += step.duration_s
            done = step.finished
        for r in done:
            finished[r.request_id] = (now, r.output_tokens, r.finish_reason, r.num_preemptions)
    return finished


@pytest.mark.parametrize("seed", range(8))
def test_fast_forward_matches_stepping(seed):
    rng = random.Random(seed)
    engine = small_profile(
        blocks=rng.choice([60, 200, 2000]), max_num_seqs=rng.choice([4, 32]), max_batched=rng.choice([256, 2048])
    )
    reqs = [
        (
            rng.uniform(0, 3),
            EngineRequest(
                f"r{i}", rng.randint(1, 400), rng.randint(1, 300), stop_after=rng.choice([None, rng.randint(1, 100)])
            ),
        )
        for i in range(60)
    ]
    slow = run(copy.deepcopy(engine), copy.deepcopy(reqs), False)
    fast = run(engine, reqs, True)
    assert slow.keys() == fast.keys() and len(slow) == 60
    for key in slow:
        assert fast[key][1:] == slow[key][1:]
        assert fast[key][0] == pytest.approx(slow[key][0], rel=1e-9, abs=1e-9)


def test_decode_run_matches_timing():
    engine = small_profile(blocks=1000)
    contexts = [5, 40, 300]
    kv0 = sum(c + 1 for c in contexts)
    durations, busy = engine.steptime.decode_run(3, kv0, kv0, 20)
    for j in range(20):
        shape = BatchShape.of((1, c + j) for c in contexts)
        t = engine.steptime.timing(shape)
        assert durations[j] == pytest.approx(t.duration_s, rel=1e-12) and busy[j] == pytest.approx(
            t.gpu_busy_s, rel=1e-12
        )


def test_not_in_a_stretch_during_prefill_or_with_admissible_waiting():
    engine = small_profile(blocks=1000)
    assert engine.fast_forward(1.0) is None  # empty
    engine.add(EngineRequest("a", 100, 50))
    assert engine.fast_forward(1.0) is None  # prefill pending
    engine.step()
    ff = engine.fast_forward(1.0)
    assert ff is not None and ff.steps > 1 and np.isclose(ff.tokens, ff.steps)
    engine.add(EngineRequest("b", 10, 5))
    assert engine.fast_forward(1.0) is None  # b can be admitted at the next step
