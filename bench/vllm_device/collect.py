"""Here: the GPU host's results (`results_cN.tgz` from device.sh) into bench/data/vllm-h200/: one row per measured
point (points.csv), each point's per-request values (requests/NAME.csv.gz), the server's facts (cold start, KV
cache, scheduler limits: facts.json), the /metrics scrapes, the GPU exporter's samples and when each run ran
(runs.csv).

usage: python -m bench.vllm_device.collect [--merge] OUT_FOLDER results_c3.tgz [results_c4.tgz ...]
--merge: add to what OUT_FOLDER holds (a later session's runs): its points stay unless measured again, its server's
facts stand, and the new calls' server logs are kept beside its own (server_cN.log.gz)."""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import sys
import tarfile
from pathlib import Path

from bench.vllm_device.runs import read_runs, write_runs

POINT_COLUMNS = (
    "name",
    "input_tokens",
    "output_tokens",
    "prefix_tokens",
    "concurrency",
    "request_rate",
    "completed",
    "duration_s",
    "requests_per_s",
    "output_tokens_per_s",
    "ttft_ms_mean",
    "ttft_ms_p50",
    "ttft_ms_p99",
    "itl_ms_mean",
    "itl_ms_p50",
    "tpot_ms_mean",
    "e2el_ms_mean",
)
SERVER_FACTS = {  # what the server log states, by the pattern that finds it
    "vllm_version": r"version (\d+\.\d+\.\d+)",
    "attention_backend": r"Using AttentionBackendEnum\.(\w+) backend",
    "flash_attention_version": r"Using FlashAttention version (\d+)",
    "max_num_batched_tokens": r"max_num_batched_tokens=(\d+)",
    "model_weights_gib": r"Model loading took ([\d.]+) GiB",
    "kv_cache_memory_gib": r"Available KV cache memory: ([\d.]+) GiB",
    "kv_cache_tokens": r"GPU KV cache size: ([\d,]+) tokens",
    "max_concurrency_at_max_len": r"Maximum concurrency for [\d,]+ tokens per request: ([\d.]+)x",
    "engine_init_s": r"init engine \(profile, create kv cache, warmup model\) took ([\d.]+) s",
    "compilation_s": r"compilation: ([\d.]+) s",
}
TEXT_FACTS = {"vllm_version", "attention_backend"}


def point_row(name: str, result: dict) -> dict:
    completed = result.get("completed", 0)
    return {
        "name": name,
        "input_tokens": round(result["total_input_tokens"] / max(completed, 1)),
        "output_tokens": round(result["total_output_tokens"] / max(completed, 1)),
        "prefix_tokens": prefix_tokens(name),
        "concurrency": result.get("max_concurrency") or "",
        "request_rate": result.get("request_rate"),
        "completed": completed,
        "duration_s": result.get("duration"),
        "requests_per_s": result.get("request_throughput"),
        "output_tokens_per_s": result.get("output_throughput"),
        "ttft_ms_mean": result.get("mean_ttft_ms"),
        "ttft_ms_p50": result.get("median_ttft_ms"),
        "ttft_ms_p99": result.get("p99_ttft_ms"),
        "itl_ms_mean": result.get("mean_itl_ms"),
        "itl_ms_p50": result.get("median_itl_ms"),
        "tpot_ms_mean": result.get("mean_tpot_ms"),
        "e2el_ms_mean": result.get("mean_e2el_ms"),
    }


def prefix_tokens(name: str) -> int:
    """The shared prefix a run's name carries (prefixNNNN_...), else 0."""
    match = re.match(r"prefix(\d+)_", name)
    return int(match.group(1)) if match else 0


def request_rows(result: dict) -> list[dict]:
    """Per request: its lengths, TTFT, end-to-end time and inter-token latencies (mean and count)."""
    rows = []
    itls = result.get("itls") or []
    for i, ttft in enumerate(result.get("ttfts") or []):
        gaps = itls[i] if i < len(itls) else []
        rows.append(
            {
                "input_tokens": result["input_lens"][i],
                "output_tokens": result["output_lens"][i],
                "ttft_s": ttft,
                "itl_s_mean": sum(gaps) / len(gaps) if gaps else "",
                "itl_count": len(gaps),
                "start_s": result["start_times"][i] - result["start_times"][0] if result.get("start_times") else "",
                "error": (result.get("errors") or [""] * (i + 1))[i],
            }
        )
    return rows


def server_facts(log: str) -> dict:
    facts: dict = {}
    for key, pattern in SERVER_FACTS.items():
        found = re.search(pattern, log)
        if found:
            value = found.group(1).replace(",", "")
            facts[key] = value if key in TEXT_FACTS else float(value)
    return facts


def collect(out: Path, archives: list[Path], merge: bool = False) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "requests").mkdir(exist_ok=True)
    points, facts = ({}, {}) if not merge else _existing(out)
    first_facts = dict(facts)
    runs = read_runs(out) if merge else {}
    for archive in archives:
        log_name = f"server_{archive.stem.removeprefix('results_')}.log.gz" if merge else "server.log.gz"
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                if not member.isfile():
                    continue
                data = tar.extractfile(member).read()
                name = Path(member.name).name
                if member.name.startswith("vwork/results/") and name.endswith(".json") and b'"ttfts"' in data:
                    result = json.loads(data)
                    run = name.removesuffix(".json")
                    points[run] = point_row(run, result)
                    write_requests(out / "requests" / f"{run}.csv.gz", request_rows(result))
                elif name == "server.log":
                    facts.update(server_facts(data.decode(errors="replace")))
                    (out / log_name).write_bytes(gzip.compress(data))
                elif name == "runs.csv":
                    runs.update(_runs(data.decode()))
                elif name == "cold_start_seconds.txt":
                    facts["cold_start_s"] = float(data.decode().strip())
                elif re.fullmatch(r"(metrics_\w+\.txt|gpu_c\d+\.csv|latency_\w+\.json)", name):
                    (out / name).write_bytes(data)
    with open(out / "points.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=POINT_COLUMNS)
        writer.writeheader()
        writer.writerows(points[name] for name in sorted(points))
    (out / "facts.json").write_text(json.dumps({**facts, **first_facts}, indent=2) + "\n")
    if runs:
        write_runs(out, runs)


def _runs(text: str) -> dict[str, tuple[float, float]]:
    return {row["name"]: (float(row["start"]), float(row["end"])) for row in csv.DictReader(io.StringIO(text))}


def _existing(out: Path) -> tuple[dict, dict]:
    """The points and facts a folder already holds, for --merge."""
    points = {}
    if (out / "points.csv").exists():
        with open(out / "points.csv") as f:
            points = {row["name"]: row for row in csv.DictReader(f)}
    facts = json.loads((out / "facts.json").read_text()) if (out / "facts.json").exists() else {}
    return points, facts


def write_requests(path: Path, rows: list[dict]) -> None:
    text = io.StringIO()
    if rows:
        writer = csv.DictWriter(text, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with gzip.open(path, "wt") as f:
        f.write(text.getvalue())


if __name__ == "__main__":
    args = sys.argv[1:]
    merge = args[:1] == ["--merge"]
    folder, *archives = args[1:] if merge else args
    collect(Path(folder), [Path(p) for p in archives], merge)
