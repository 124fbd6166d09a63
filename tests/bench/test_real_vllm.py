"""Real vLLM's points against the engine model: which points are compared, and a prediction in each mode."""

import pytest

from bench.real_vllm import measured_points, predict
from serving.profiles import load_profile


def test_the_warm_up_and_shared_prefix_runs_are_left_out():
    names = {p["name"] for p in measured_points()}
    assert "warmup" not in names and not any(name.startswith("prefix") for name in names)
    assert {"i128_o128_c1", "poisson_r5_i1024_o256"} <= names


@pytest.mark.parametrize(
    "point",
    [
        {"input_tokens": "128", "output_tokens": "32", "completed": "8", "concurrency": "4", "request_rate": "inf"},
        {"input_tokens": "128", "output_tokens": "32", "completed": "20", "concurrency": "", "request_rate": "5"},
    ],
)
def test_a_point_is_predicted_in_its_own_mode(point):
    model = predict(point, load_profile("llama-3.1-8b-h100"))
    assert 0 < model["ttft_ms_mean"] < 1000 and 1 < model["itl_ms_mean"] < 50
    assert model["output_tokens_per_s"] > 0


def test_the_held_out_half_is_chosen_by_name_and_never_fitted():
    from bench.real_vllm import held_out

    points = measured_points()
    fit, held = held_out(points)
    names = lambda rows: {p["name"] for p in rows}
    assert names(fit).isdisjoint(names(held)) and names(fit) | names(held) == names(points)
    assert abs(len(fit) - len(held)) <= 1 and held_out(list(reversed(points))) == (fit, held)
