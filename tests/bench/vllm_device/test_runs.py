"""When each run ran: recorded by the bench driver, or found in the GPU exporter's samples from the runs' order and
durations; and DCGM's mean activity over each."""

import csv

import numpy as np
import pytest

from bench.gpu_power import read_samples, run_activity
from bench.vllm_device.bench_driver import record_run
from bench.vllm_device.runs import BUSY, main, match, read_runs

DATA = __import__("pathlib").Path(__file__).resolve().parents[3] / "bench" / "data"


def timeline(pieces: list[tuple[float, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Graphics-engine activity second by second from (activity, seconds) pieces, from t = 1000."""
    activity = np.concatenate([np.full(seconds, level) for level, seconds in pieces])
    return 1000.0 + np.arange(len(activity), dtype=float), activity


def test_runs_back_to_back_are_told_apart_by_the_dip_between_them():
    # idle, a 10 s run, a one-second dip, an 8 s run, a call's idle stretch, a 12 s run
    times, activity = timeline([(0.0, 5), (0.98, 10), (0.3, 1), (0.97, 8), (0.0, 30), (0.99, 12), (0.0, 5)])
    found = match(times, activity >= BUSY, [("a", 9.6), ("b", 8.2), ("c", 11.8)])
    assert found["a"][0] == pytest.approx(1004.5) and found["a"][1] == pytest.approx(1014.1)
    assert found["b"][0] == pytest.approx(1015.5)
    assert found["c"][0] == pytest.approx(1053.5)  # after the idle stretch, not where b ended


def test_a_run_with_quiet_seconds_inside_keeps_its_measured_duration():
    # an open loop at a low rate: the GPU idles between its requests
    times, activity = timeline([(0.0, 3), (0.95, 4), (0.1, 3), (0.95, 4), (0.1, 2), (0.95, 3), (0.2, 1), (0.98, 6)])
    found = match(times, activity >= BUSY, [("slow", 16.0), ("next", 6.0)])
    assert found["slow"] == pytest.approx((1002.5, 1018.5)) and found["next"][0] == pytest.approx(1019.5)


def test_the_h200_grid_is_found_where_its_dips_lie():
    """The 2026-12-06 H200 samples: runs.csv was matched from them; the runs agree with the dips an eye finds."""
    runs = read_runs(DATA / "vllm-h200")
    start = min(s for s, _ in runs.values())
    relative = {name: round(s - start) for name, (s, _) in runs.items()}
    assert relative["i1024_o256_c128"] - relative["i128_o128_c1"] == 182  # 216 and 34 s into the samples
    assert relative["poisson_r5_i1024_o256"] - relative["i128_o128_c1"] == 656  # after the third call's idle start


def test_the_driver_records_each_run_as_the_matcher_writes_them(tmp_path):
    record_run(str(tmp_path), "a", 100.04, 110.5)
    record_run(str(tmp_path), "b", 111.0, 120.25)
    assert read_runs(tmp_path) == {"a": (100.0, 110.5), "b": (111.0, 120.2)}


def test_mean_activity_over_each_run_leaves_out_its_edge_seconds(tmp_path):
    times, activity = timeline([(0.0, 2), (1.0, 10), (0.0, 2)])
    tensor = np.where(activity > 0, 0.5, 0.0)
    tensor[2] = tensor[11] = 0.9  # the run's first and last seconds share the neighbours' work
    samples = {"time": times, "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE": tensor, "DCGM_FI_PROF_DRAM_ACTIVE": activity * 0.4}
    found = run_activity(samples, {"run": (1001.5, 1011.5), "gone": (2000.0, 2010.0)})
    assert found == {"run": {"tensor_active": pytest.approx(0.5), "dram_active": pytest.approx(0.4)}}
    samples["DCGM_FI_DEV_SM_CLOCK"] = np.where(activity > 0, 1500.0, 1980.0)
    assert run_activity(samples, {"run": (1001.5, 1011.5)})["run"]["sm_clock_mhz"] == pytest.approx(1500.0)


def test_the_command_line_names_a_run_the_folder_never_measured(tmp_path):
    with open(tmp_path / "points.csv", "w") as f:
        csv.writer(f).writerows([["name", "duration_s"], ["a", "3.0"]])
    (tmp_path / "gpu_c1.csv").write_text(
        "time,DCGM_FI_PROF_GR_ENGINE_ACTIVE\n" + "".join(f"{1000 + i},{0.95}\n" for i in range(5))
    )
    with pytest.raises(SystemExit, match="no measured point named b"):
        main([str(tmp_path), "a", "b"])
    main([str(tmp_path), "a"])
    assert read_runs(tmp_path) == {"a": (999.5, 1002.5)}
    assert read_samples(tmp_path)["time"][0] == 1000.0
