"""Real vLLM's points against the engine model: which points are compared, and a prediction in each mode."""

import pytest

from bench.real_vllm import measured_points, predict
from serving.profiles import efficiency_set, load_profile


def test_the_warm_up_is_left_out_and_the_shared_prefix_runs_are_compared():
    names = {p["name"] for p in measured_points()}
    assert "warmup" not in names
    assert {"i128_o128_c1", "poisson_r5_i1024_o256", "prefix3072_i1024_o256_c8"} <= names


def test_a_shared_prefix_point_is_run_with_its_prefix_cached():
    """prefix3072_i1024_o256_c8: 4,096-token prompts whose first 3,072 tokens every prompt shares."""
    point = next(p for p in measured_points() if p["name"] == "prefix3072_i1024_o256_c8")
    unshared = {**point, "prefix_tokens": "0"}
    profile = load_profile("llama-3.1-8b-h100")
    assert predict(point, profile)["ttft_ms_p50"] < 0.85 * predict(unshared, profile)["ttft_ms_p50"]


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


def test_an_open_loop_point_is_run_again_with_its_requests_send_times():
    from bench.real_vllm import _send_times, measured_profile

    point = next(p for p in measured_points() if p["name"] == "poisson_r5_i1024_o256")
    sends = _send_times(point["records"] / "poisson_r5_i1024_o256.csv.gz")
    assert len(sends) == int(point["completed"]) and sends == sorted(sends) and sends[0] == 0.0
    model = predict(point, measured_profile())
    # the model serves every send of the real run: its throughput is the real one where nothing queues
    assert model["output_tokens_per_s"] == pytest.approx(float(point["output_tokens_per_s"]), rel=0.05)


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


def test_a_fit_of_chosen_parameters_leaves_the_rest_of_the_set_alone():
    from bench.real_vllm import MOE_DATA, MOE_FITTED, fit_efficiency, moe_profile

    profile = moe_profile()
    alone = [p for p in measured_points(MOE_DATA / "points.csv") if p["name"] == "i1024_o256_c1"]
    fit = fit_efficiency(alone, profile, MOE_FITTED)
    fitted = {name for name, *_ in MOE_FITTED}
    unchanged = {k: v for k, v in profile.efficiency.model_dump().items() if k not in fitted | {"graph_max_tokens"}}
    assert {k: fit.efficiency.model_dump()[k] for k in unchanged} == unchanged and fit.client_token_s == 0.0
    assert 0 < fit.efficiency.eager_step_overhead_s <= 0.5 and 0 <= fit.efficiency.request_overhead_s <= 0.1
    # alone, a 1,024-token prompt is one step beyond the graphs: its measured 88 ms are met
    assert predict(alone[0], profile.model_copy(update={"efficiency": fit.efficiency}))["ttft_ms_p50"] == (
        pytest.approx(float(alone[0]["ttft_ms_p50"]), rel=0.05)
    )


def test_the_search_starts_in_the_server_costs_valley_where_the_loss_is_least():
    import numpy as np

    from bench.real_vllm import FITTED, best_start

    names = [knob.name for knob in FITTED]
    overhead, frontend, bandwidth = (names.index(n) for n in ("request_overhead_s", "frontend_request_s", "bandwidth"))
    x0 = np.array([knob.start / knob.unit for knob in FITTED])
    x0[bandwidth] = 0.9
    # a loss least at 14 ms and no serial time per request, far from where the knobs' own starts put them
    valley = lambda x: (x[overhead] - 14.0) ** 2 + (x[frontend] - 0.0) ** 2 + (x[bandwidth] - 0.9) ** 2
    start = best_start(valley, x0, FITTED)
    assert start[overhead] == 14.0 and start[frontend] == 0.0 and start[bandwidth] == 0.9
    # where the base values are best, they stay
    assert best_start(lambda x: float(np.sum((x - x0) ** 2)), x0, FITTED) is x0
    # a fit of the delay without the worker's time (the MoE's) starts from the base values
    from bench.real_vllm import MOE_FITTED

    moe_x0 = np.array([1.0, 60.0])
    assert best_start(lambda x: (x[0] - 14.0) ** 2, moe_x0, MOE_FITTED) is moe_x0


def terraced_bowl(x):
    """A tilted bowl with flat terraces a quarter wide: Nelder-Mead's simplex shrinks onto a terrace's edge."""
    import numpy as np

    return float(np.sum((np.floor(x * 4) / 4 - 3.0) ** 2 * np.arange(1, len(x) + 1)) + 0.01 * np.sum(np.abs(x - 3)))


def test_the_search_restarts_where_nelder_mead_stopped_short():
    import numpy as np

    from bench.real_vllm import _nelder_mead, search

    x0 = np.zeros(6)
    stalled = _nelder_mead(terraced_bowl, x0, np.ones(6)).fun
    x, losses = search(terraced_bowl, x0)
    assert stalled > 0.1 and terraced_bowl(x) < 0.05 * stalled
    assert losses[0] == pytest.approx(stalled) and losses[-1] == pytest.approx(terraced_bowl(x))


def test_the_search_stops_restarting_when_a_restart_gains_nothing(monkeypatch):
    import numpy as np

    from bench import real_vllm

    runs = []
    one_run = real_vllm._nelder_mead
    monkeypatch.setattr(real_vllm, "RESTARTS", 5)
    monkeypatch.setattr(real_vllm, "_nelder_mead", lambda *args, **kw: runs.append(1) or one_run(*args, **kw))
    x, losses = real_vllm.search(lambda x: 1.0 + float(np.sum((x - 2.0) ** 2)), np.zeros(3))  # least 1, as a real fit
    assert np.allclose(x, 2.0, atol=0.01) and len(runs) == 2  # the first, and one restart that gained under 1%
    assert len(losses) == 2 and losses[1] <= losses[0]


def test_the_moe_profiles_kv_cache_is_what_vllm_kept():
    import json

    from bench.real_vllm import MOE_DATA, moe_profile

    measured = json.loads((MOE_DATA / "facts.json").read_text())["kv_cache_tokens"]
    assert moe_profile().kv_capacity_tokens == pytest.approx(measured, rel=0.02)


def test_the_h200_grid_measures_the_h100_points_again_with_more_waves():
    from bench.real_vllm import GRIDS

    h200, h100 = ({p["name"]: p for p in measured_points(g.data / "points.csv")} for g in GRIDS)
    assert len(h200) == 25 and h200.keys() <= h100.keys()
    assert all(name.startswith("prefix") for name in h100.keys() - h200.keys())  # the H100's shared-prefix runs
    for name, point in h200.items():
        if point["concurrency"] and int(point["concurrency"]) >= 8:
            assert int(point["completed"]) >= 4 * int(point["concurrency"])
            assert int(point["completed"]) > int(h100[name]["completed"])


def test_each_sampled_run_brings_the_boards_mean_clock_to_the_fit():
    from bench.real_vllm import GRIDS

    h200 = {p["name"]: p for p in measured_points(GRIDS[0].data / "points.csv")}
    # a closed loop of long prompts held the board at its power limit; one short request at a time did not
    assert 1400.0 < h200["i16384_o128_c8"]["sm_clock_mhz"] < 1700.0
    assert h200["i128_o128_c1"]["sm_clock_mhz"] > 1950.0


def test_a_refit_starts_warm_where_the_grids_last_refit_stopped(tmp_path, monkeypatch):
    """The last refit's values, a zero among them, are the start; a knob it did not have starts at its own start;
    and the search knows which are which."""
    import json

    import numpy as np

    from bench import real_vllm
    from bench.real_vllm import CLIENT, FITTED, Grid, fit_efficiency, last_refit

    knobs = (*FITTED, CLIENT)
    last = {"gemm_compute": 0.81, "frontend_request_s": 0.0, "client_token_s": 2.5e-5, "retired_knob": 1.0}
    (tmp_path / real_vllm.LAST_REFIT).write_text(json.dumps(last))
    values = last_refit(Grid("H200", tmp_path, "llama-3.1-8b-h200"), knobs)
    assert {k.name: v for k, v in values.items()} == {n: v for n, v in last.items() if n != "retired_knob"}
    assert last_refit(Grid("H200", tmp_path / "none", "llama-3.1-8b-h200"), knobs) == {}
    started = {}
    monkeypatch.setattr(real_vllm, "best_start", lambda loss, x0, parameters: x0)
    monkeypatch.setattr(real_vllm, "search", lambda loss, x0, warm: started.update(x0=x0, warm=warm) or (x0, (0.0,)))
    fit = fit_efficiency([], parameters=knobs, last=values)
    x0 = dict(zip((k.name for k in knobs), started["x0"] * np.array([k.unit for k in knobs])))
    warm = dict(zip((k.name for k in knobs), started["warm"]))
    assert warm["gemm_compute"] and warm["frontend_request_s"] and not warm["request_token_s"]
    assert x0["gemm_compute"] == 0.81 and x0["frontend_request_s"] == 0.0
    assert x0["request_token_s"] == pytest.approx(1e-6) and fit.client_token_s == pytest.approx(2.5e-5)
    assert fit.values(knobs)["gemm_compute"] == pytest.approx(0.81)


def test_a_warm_search_is_one_pass_with_a_restarts_steps_for_the_last_values(monkeypatch):
    import numpy as np

    from bench import real_vllm

    taken = []
    one_run = real_vllm._nelder_mead
    monkeypatch.setattr(
        real_vllm, "_nelder_mead", lambda loss, x0, steps: taken.append(steps) or one_run(loss, x0, steps)
    )
    x0 = np.array([1.0, 0.0, 4.0])
    bowl = lambda x: 1.0 + float(np.sum((x - 2.0) ** 2))  # least 1, as a real fit
    x, losses = real_vllm.search(bowl, x0, warm=np.array([True, True, False]))
    # the last refit's values move by a restart's steps, a knob it did not have by a first step
    assert len(taken) == 1 and len(losses) == 1 and np.allclose(taken[0], [0.1, 0.5, 1.0])
    assert np.allclose(x, 2.0, atol=0.01)  # one pass from near the least finds it


def test_a_board_probed_without_gpm_takes_the_h100_probes_window_and_fits_only_its_curve():
    """The latencies barely see the limiter's window: a board whose probe read no activity takes the probe's that
    did (0.063 s), and the refit fits the power curve beside the efficiencies, never the window."""
    from bench.gpu_limiter import LimiterFit
    from bench.gpu_power import PowerFit
    from bench.real_vllm import CURVE, power_knobs, probed_window

    gpu = load_profile("llama-3.1-8b-h200").gpu
    window = probed_window(gpu)
    assert 0.04 < window < 0.1
    knobs, start = power_knobs(PowerFit(657.0, 604.0, 0.38, 30.0, 500, 283), gpu)
    names = {k.name for k in knobs}
    assert "power_window_s" not in names and {k.name for k in CURVE} <= names
    assert start["power_window_s"] == window and start["compute_power_w"] == 657.0
    probe = LimiterFit(728.0, 496.0, 0.69, 0.2, 67.0, 198.0, 372, -0.09)
    knobs, start = power_knobs(probe, gpu)  # a board with its own probe keeps the probe's curve and window
    assert not {k.name for k in CURVE} & {k.name for k in knobs} and start["power_window_s"] == 0.2


def _assert_goal_on_the_h200s_held_out_half(profile, client_token_s: float = 0.0) -> None:
    """Every held-out point within 20% and each metric's median within 10% (issue 32's goal)."""
    from statistics import median

    from bench.real_vllm import GRIDS, METRICS, comparison, held_out

    _, held = held_out(measured_points(GRIDS[0].data / "points.csv"))
    rows = comparison(profile, client_token_s, held)
    for label, _ in METRICS:
        errors = {r["point"]: abs(r["error"]) for r in rows if r["metric"] == label}
        assert len(errors) == 12 and median(errors.values()) <= 0.10, (label, errors)
        assert max(errors.values()) <= 0.20, (label, {p: e for p, e in errors.items() if e > 0.20})


def test_the_shipped_h200_profile_meets_the_goal_on_the_held_out_half():
    """Issue 32's goal, kept: what `simulate`, `plan` and `emulate` run for an H200 (its efficiency set, power curve
    and asynchronous scheduling, fitted to the other half: the seventh refit) meets it as served; the benchmark
    client's own reading is not the server's, so it is left out. A change to the engine model that moves these
    figures fails here. (The bench's later refits go on fitting the other half; the eighth, 2026-12-08, misses
    one held-out point by 0.1 points, so it was not shipped.)"""
    from bench.real_vllm import GRIDS

    shipped = load_profile(GRIDS[0].profile)
    assert shipped.efficiency == efficiency_set("vllm-0.20-h200") and shipped.gpu.power_capped
    _assert_goal_on_the_h200s_held_out_half(shipped)


def test_each_grid_names_the_efficiency_set_its_shipped_profile_holds():
    from bench.real_vllm import GRIDS

    for grid in GRIDS:
        assert load_profile(grid.profile).efficiency == efficiency_set(grid.shipped_set), grid.gpu
    assert [bool(grid.calibrated) for grid in GRIDS] == [True, False]  # the H200's is fitted; the H100's not yet
