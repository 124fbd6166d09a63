"""The API server's one worker: requests and step outputs wait for it in arrival order."""

import pytest

from serving.engine.frontend import Frontend
from serving.profiles import load_profile

EFFICIENCY = load_profile("llama-3.1-8b-h100").efficiency.model_copy(
    update={"frontend_request_s": 0.002, "frontend_token_s": 1e-4, "frontend_finish_s": 0.001}
)


def test_requests_arriving_together_are_handed_over_one_worker_time_apart():
    frontend = Frontend(EFFICIENCY)
    assert [frontend.admit(0.0) for _ in range(3)] == pytest.approx([0.002, 0.004, 0.006])


def test_a_steps_outputs_wait_behind_the_requests_before_them_and_cost_per_token():
    frontend = Frontend(EFFICIENCY)
    frontend.admit(0.0)
    frontend.admit(0.0)
    assert frontend.stream(0.001, tokens=10) == pytest.approx(0.004 + 10 * 1e-4)
    # an idle worker starts at once
    assert frontend.stream(1.0, tokens=1) == pytest.approx(1.0 + 1e-4)


def test_ending_a_stream_costs_its_own_time():
    frontend = Frontend(EFFICIENCY)
    assert frontend.stream(0.0, 1, finished=True) == pytest.approx(1e-4 + 0.001)
    assert frontend.stream(0.0, 1) == pytest.approx(2 * 1e-4 + 0.001)


def test_without_costs_everything_passes_through():
    frontend = Frontend()
    assert frontend.admit(0.5) == 0.5 and frontend.stream(0.7, tokens=100) == 0.7


def test_a_steps_outputs_streamed_at_once_leave_when_one_by_one_they_would():
    batch, single = Frontend(EFFICIENCY), Frontend(EFFICIENCY)
    batch.admit(0.0)
    single.admit(0.0)
    ends = {1, 4}  # of six requests emitting a token, the second and fifth end their streams
    one_by_one = [single.stream(0.001, 1, i in ends) for i in range(6)]
    marks = [(0, False), (1, True), (4, True), (5, False)]
    assert batch.stream_step(0.001, 6, marks) == pytest.approx([one_by_one[i] for i, _ in marks])
    assert batch.free_at == pytest.approx(single.free_at)


@pytest.mark.parametrize("gap", [0.0005, 0.02])  # steps faster than the worker's tokens, and slower
def test_a_decode_stretch_leaves_the_worker_as_its_steps_one_by_one_would(gap):
    import numpy as np

    arrivals = 0.01 + gap * np.arange(50)
    batch, single = Frontend(EFFICIENCY), Frontend(EFFICIENCY)
    for worker in (batch, single):
        worker.admit(0.0)
    for at in arrivals:
        single.stream(float(at), tokens=64)
    batch.stream_steps(arrivals, 64)
    assert batch.free_at == pytest.approx(single.free_at)
    assert Frontend(EFFICIENCY).has_costs and not Frontend().has_costs
