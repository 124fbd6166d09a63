"""`headroom loadtest run` against the emulator over real HTTP: timing and tokens as the emulator saw them, the
open loop holding its rate against a slow server, distributed equal to local, errors and partial results."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from loadgen.run import run_campaign
from serving.emulator.replica import Faults
from tests.helpers import EmulatorServer

pytestmark = pytest.mark.integration
HEADROOM = [sys.executable, "-m", "headroom"]


def campaign_file(tmp_path, url: str, model: str, **fields) -> str:
    body = {
        "name": "t",
        "target": url,
        "model": model,
        "api": "chat",
        "shape": {"kind": "constant", "rate": 4},
        "duration_s": 8,
        "arrivals": {"process": "constant"},
        "lengths": {"prompt_tokens": 200, "output_tokens": 50},
        "timeout_s": 60,
        **fields,
    }
    path = tmp_path / "campaign.yaml"
    path.write_text(json.dumps(body))  # JSON is YAML
    return str(path)


def emulator_means(url: str) -> dict:
    """Mean TTFT and ITL as the emulator recorded them (its histograms' sum / count)."""
    text = urllib.request.urlopen(f"{url}/metrics", timeout=10).read().decode()
    sums = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            sums[sample.name] = sums.get(sample.name, 0.0) + sample.value
    mean = lambda name: sums[f"{name}_sum"] / sums[f"{name}_count"]
    return {
        "ttft": mean("vllm:time_to_first_token_seconds"),
        "itl": mean("vllm:inter_token_latency_seconds"),
        "count": sums["vllm:time_to_first_token_seconds_count"],
    }


def test_timing_and_tokens_agree_with_the_emulator_and_workers_send_the_same(tmp_path):
    with EmulatorServer(request_log=tmp_path / "server.jsonl") as emulator:
        path = campaign_file(tmp_path, emulator.url, emulator.model)
        summary, code = run_campaign(path, tmp_path / "local", quiet=True)
        server = emulator_means(emulator.url)
        records = pd.read_parquet(tmp_path / "local" / "requests.parquet")
        assert code == 0 and not summary["partial"] and summary["completed"] == 32 == server["count"]
        assert (records["output_tokens"] == 50).all() and records["usage_reported"].all()
        assert (records["prompt_tokens_reported"] == 200).all()
        # the client sees the server's timing plus loopback and parsing: a few milliseconds at most
        assert 0 <= summary["mean_ttft_ms"] / 1000 - server["ttft"] < 0.005
        assert abs(summary["mean_itl_ms"] / 1000 - server["itl"]) < 0.002
        logged = pd.read_json(tmp_path / "server.jsonl", lines=True).set_index("id")
        joined = records.join(logged[["ttft_s"]].rename(columns={"ttft_s": "ttft_s_server"}), on="response_id")
        assert joined["ttft_s_server"].notna().all()  # every request matched to the server's own record by its id
        assert (joined["ttft_s"] - joined["ttft_s_server"]).median() < 0.003
        for name in ("locust_stats.csv", "locust.html", "summary.json", "latency_throughput.png"):
            assert (tmp_path / "local" / name).stat().st_size > 0
        stats = pd.read_csv(tmp_path / "local" / "locust_stats.csv")
        assert {"TTFT", "TPOT", "/v1/chat/completions"} <= set(stats["Name"])

        distributed, code = run_campaign(path, tmp_path / "workers", workers=2, quiet=True)
        spread = pd.read_parquet(tmp_path / "workers" / "requests.parquet")
        assert code == 0 and distributed["completed"] == summary["completed"]
        assert sorted(spread["index"]) == sorted(records["index"]) and spread["worker"].nunique() == 2


def test_open_loop_holds_its_rate_against_a_slow_server(tmp_path):
    with EmulatorServer(faults=Faults(slow_factor=40.0)) as emulator:
        path = campaign_file(
            tmp_path,
            emulator.url,
            emulator.model,
            duration_s=20,
            shape={"kind": "constant", "rate": 10},
            lengths={"prompt_tokens": 64, "output_tokens": 4},
        )
        summary, code = run_campaign(path, tmp_path / "out", quiet=True)
    records = pd.read_parquet(tmp_path / "out" / "requests.parquet")
    assert code == 0 and summary["planned"] == 200
    sent_in_time = (records["sent_s"] < 20.0).sum()
    assert abs(sent_in_time - 200) <= 2  # within 1% although answers take seconds
    assert records["lag_s"].quantile(0.99) < 0.05
    assert summary["median_e2el_ms"] > 1000  # the server really was slow


def test_bad_campaign_and_unreachable_target_exit_non_zero(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntarget: http://127.0.0.1:9\nmodel: m\nshape: {kind: constant, rate: -2}\nduration_s: 5\n")
    proc = subprocess.run(
        [*HEADROOM, "loadtest", "run", str(bad)], check=False, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2 and "shape.constant.rate" in proc.stderr and "(got -2)" in proc.stderr
    path = campaign_file(tmp_path, "http://127.0.0.1:9", "m")
    proc = subprocess.run(
        [*HEADROOM, "loadtest", "run", path, "--out", str(tmp_path / "out"), "--quiet"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "unreachable" in proc.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["partial"] and summary["unanswered"] == 32


def _default_sigint():
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # a test run in the background inherits SIGINT ignored


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupted_run_keeps_partial_results(tmp_path, stop):
    with EmulatorServer() as emulator:
        # ten minutes of arrivals: interrupted long before the end, however slowly a busy machine starts Locust
        path = campaign_file(tmp_path, emulator.url, emulator.model, duration_s=600)
        proc = subprocess.Popen(
            [*HEADROOM, "loadtest", "run", path, "--out", str(tmp_path / "out"), "--quiet"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": os.getcwd()},
            preexec_fn=_default_sigint,
        )
        deadline = time.time() + 180
        records = tmp_path / "out" / "records"
        while time.time() < deadline and not any(p.stat().st_size for p in records.glob("*.jsonl")):
            time.sleep(0.5)
        time.sleep(2)
        proc.send_signal(stop)
        _out, _err = proc.communicate(timeout=60)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert proc.returncode == 1 and summary["partial"] and "interrupted" in summary["partial_reason"]
    assert 0 < summary["completed"] < summary["planned"] == 2400
    assert len(pd.read_parquet(tmp_path / "out" / "requests.parquet")) == summary["completed"] + summary["failed"]


def test_sweep_finds_the_highest_rate_within_the_slo_and_writes_a_capacity_file(tmp_path):
    from loadgen.sweep import load_capacity_file, sweep_capacity

    with EmulatorServer(faults=Faults(slow_factor=10.0)) as emulator:
        path = campaign_file(
            tmp_path,
            emulator.url,
            emulator.model,
            lengths={"prompt_tokens": 512, "output_tokens": 64},
            slo={"ttft_s": 1.0, "tpot_s": 0.1},
            arrivals={"process": "poisson"},
        )
        result = sweep_capacity(
            path, tmp_path / "sweep", probe_s=8.0, start_rate=2.0, tolerance=0.2, progress=lambda line: None
        )
    meeting = [p.rate for p in result.probes if p.slo_attainment >= 0.99]
    missing = [p.rate for p in result.probes if p.slo_attainment < 0.99]
    assert result.capacity_rps == max(meeting) and missing and min(missing) > result.capacity_rps
    assert min(missing) <= result.capacity_rps * 1.25  # bisected to the tolerance
    again = load_capacity_file(tmp_path / "sweep" / "capacity.yaml")
    assert again == result and again.mean_prompt_tokens == 512
