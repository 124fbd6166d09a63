"""The GPU host's results into bench/data: points, per-request values and the server's facts, from a real archive's
layout (a `vllm bench serve --save-detailed` result, the server log, the cold start)."""

import csv
import gzip
import io
import json
import tarfile

from bench.vllm_device.collect import collect
from bench.vllm_device.runs import read_runs

RESULT = {
    "completed": 2,
    "max_concurrency": 2,
    "request_rate": "inf",
    "duration": 1.5,
    "total_input_tokens": 2 * (2048 + 3072),
    "total_output_tokens": 512,
    "request_throughput": 1.33,
    "output_throughput": 341.3,
    "mean_ttft_ms": 40.0,
    "median_ttft_ms": 40.0,
    "p99_ttft_ms": 41.0,
    "mean_itl_ms": 7.0,
    "median_itl_ms": 7.0,
    "mean_tpot_ms": 7.0,
    "mean_e2el_ms": 1830.0,
    "input_lens": [2048 + 3072, 2048 + 3072],
    "output_lens": [256, 256],
    "ttfts": [0.039, 0.041],
    "itls": [[0.007, 0.007], [0.006, 0.008]],
    "start_times": [100.0, 100.25],
    "errors": ["", ""],
}
LOG = (
    "INFO version 0.20.2\nINFO Using AttentionBackendEnum.FLASH_ATTN backend.\n"
    "INFO GPU KV cache size: 439,552 tokens\nINFO Available KV cache memory: 53.66 GiB\n"
)


def archive(path, files: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_points_requests_and_facts(tmp_path):
    archive(
        tmp_path / "results_c3.tgz",
        {
            "vwork/results/prefix3072_i2048_o256_c2.json": json.dumps(RESULT).encode(),
            "vwork/results/cold_start_seconds.txt": b"86.20\n",
            "vwork/results/gpu_c3.csv": b"time,DCGM_FI_DEV_POWER_USAGE\n1.0,700.1\n",
            "vwork/logs/server.log": LOG.encode(),
            "vwork/logs/server.pid": b"123",
        },
    )
    out = tmp_path / "data"
    collect(out, [tmp_path / "results_c3.tgz"])
    with open(out / "points.csv") as f:
        (point,) = csv.DictReader(f)
    assert point["name"] == "prefix3072_i2048_o256_c2" and point["prefix_tokens"] == "3072"
    assert point["input_tokens"] == "5120" and point["ttft_ms_p99"] == "41.0"
    with gzip.open(out / "requests" / "prefix3072_i2048_o256_c2.csv.gz", "rt") as f:
        rows = list(csv.DictReader(f))
    assert [float(r["itl_s_mean"]) for r in rows] == [0.007, 0.007] and rows[1]["start_s"] == "0.25"
    facts = json.loads((out / "facts.json").read_text())
    assert facts == {
        "vllm_version": "0.20.2",
        "attention_backend": "FLASH_ATTN",
        "kv_cache_tokens": 439552.0,
        "kv_cache_memory_gib": 53.66,
        "cold_start_s": 86.2,
    }
    assert (out / "gpu_c3.csv").exists() and not (out / "server.pid").exists()


def test_a_later_call_merges_into_what_the_folder_holds(tmp_path):
    first = {"vwork/results/i128_o128_c1.json": json.dumps(RESULT).encode(), "vwork/logs/server.log": LOG.encode()}
    runs = b"name,start,end\ni128_o128_c1,1000.0,1001.5\n"
    archive(
        tmp_path / "results_c3.tgz",
        {**first, "vwork/results/cold_start_seconds.txt": b"86.20\n", "vwork/results/runs.csv": runs},
    )
    later_log = LOG.replace("439,552", "440,000") + "INFO Model loading took 14.99 GiB\n"
    archive(
        tmp_path / "results_c6.tgz",
        {
            "vwork/results/prefix3072_i2048_o256_c2.json": json.dumps({**RESULT, "median_ttft_ms": 55.0}).encode(),
            "vwork/results/cold_start_seconds.txt": b"99.0\n",
            "vwork/results/runs.csv": b"name,start,end\nprefix3072_i2048_o256_c2,2000.0,2001.5\n",
            "vwork/logs/server.log": later_log.encode(),
        },
    )
    out = tmp_path / "data"
    collect(out, [tmp_path / "results_c3.tgz"])
    collect(out, [tmp_path / "results_c6.tgz"], merge=True)
    with open(out / "points.csv") as f:
        points = {row["name"]: row for row in csv.DictReader(f)}
    assert sorted(points) == ["i128_o128_c1", "prefix3072_i2048_o256_c2"]  # the earlier point is kept
    assert points["prefix3072_i2048_o256_c2"]["ttft_ms_p50"] == "55.0"
    facts = json.loads((out / "facts.json").read_text())
    # the first server's statements stand; what only the later one stated is added
    assert (
        facts["kv_cache_tokens"] == 439552.0 and facts["cold_start_s"] == 86.2 and facts["model_weights_gib"] == 14.99
    )
    assert (out / "server.log.gz").exists() and (out / "server_c6.log.gz").exists()
    # when each run ran, from both calls: the GPU exporter's samples of each are found by it
    assert read_runs(out) == {"i128_o128_c1": (1000.0, 1001.5), "prefix3072_i2048_o256_c2": (2000.0, 2001.5)}
