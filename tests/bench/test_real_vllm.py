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


def test_the_moe_points_run_against_the_profile_built_from_the_served_config():
    """Qwen3-30B-A3B as `headroom profiles add --config` builds it from the config.json the GPU host served."""
    from bench.real_vllm import MOE_DATA, moe_profile

    profile = moe_profile()
    assert profile.model.experts == 128 and profile.model.experts_per_token == 8
    assert profile.model.active_parameters == pytest.approx(3.35e9, rel=0.01)
    points = measured_points(MOE_DATA / "points.csv")
    assert len(points) == 9 and all(int(p["completed"]) > 0 for p in points)
    alone = next(p for p in points if p["name"] == "i128_o128_c1")
    assert 1 < predict(alone, profile)["itl_ms_mean"] < 20
