"""Load generator cost: streamed requests per CPU-second of the Locust process, and how late it sends."""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

from bench.emulator_cost import free_port


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(rates=(25.0, 50.0, 100.0), seconds: float = 20.0, output_tokens: int = 100) -> list[dict]:
    from loadgen.run import run_campaign

    import pandas as pd

    port = free_port()
    log = Path(tempfile.mkdtemp()) / "server.jsonl"
    emulator = subprocess.Popen([sys.executable, "-m", "headroom", "emulate", "--port", str(port), "--request-log", str(log)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = []
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        with tempfile.TemporaryDirectory() as tmp:
            for rate in rates:
                campaign = {"name": f"cost-{rate:g}", "target": f"http://127.0.0.1:{port}",
                            "model": "meta-llama/Llama-3.1-8B-Instruct", "api": "completions",
                            "shape": {"kind": "constant", "rate": rate}, "duration_s": seconds,
                            "arrivals": {"process": "poisson"}, "lengths": {"prompt_tokens": 128, "output_tokens": output_tokens}}
                path = Path(tmp) / f"c{rate:g}.yaml"
                path.write_text(yaml.safe_dump(campaign))
                before = _children_cpu()
                summary, _ = run_campaign(str(path), Path(tmp) / f"out{rate:g}", 0, True)
                cpu = _children_cpu() - before  # the Locust process (the emulator is still running: not counted)
                records = pd.read_parquet(Path(tmp) / f"out{rate:g}" / "requests.parquet")
                server = pd.read_json(log, lines=True).set_index("id")["ttft_s"]
                gap = (records["ttft_s"] - records["response_id"].map(server)).dropna()
                rows.append({"rate": rate, "completed": summary["completed"], "failed": summary["failed"],
                             "loadgen_cpu_s": cpu, "requests_per_cpu_s": summary["completed"] / cpu,
                             "events_per_cpu_s": summary["completed"] * output_tokens / cpu,
                             "lag_p99_ms": summary["generator_lag_p99_ms"], "mean_ttft_ms": summary["mean_ttft_ms"],
                             "ttft_gap_median_ms": gap.median() * 1000, "ttft_gap_p99_ms": gap.quantile(0.99) * 1000,
                             "matched": len(gap)})
    finally:
        emulator.terminate()
        emulator.wait(15)
    return rows


def cost_section() -> str:
    rows = measure()
    lines = ["| offered req/s | completed | failed | Locust CPU s | requests per CPU-s | SSE events per CPU-s | send lag p99 ms | "
             "TTFT client - server, median ms | p99 ms |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['rate']:g} | {r['completed']} | {r['failed']} | {r['loadgen_cpu_s']:.1f} | {r['requests_per_cpu_s']:.0f} | "
                     f"{r['events_per_cpu_s']:,.0f} | {r['lag_p99_ms']:.1f} | {r['ttft_gap_median_ms']:.2f} | {r['ttft_gap_p99_ms']:.2f} |")
    return "\n".join([
        "## Load generator cost",
        "",
        "One Locust process (`headroom loadtest run`, no workers) sending streamed completions (128-token prompts, 100 "
        "output tokens, ignore_eos) at a Poisson rate for 20 s to one emulator on the same machine. CPU time is the "
        "Locust process's own, start-up and report writing included, so the figures are a lower bound of what a "
        "process sustains per core. TTFT client - server: each request's TTFT as the campaign measured it minus the "
        "emulator's own (its `--request-log`, joined on the response id); goal: median under 1 ms. guidellm needs torch and transformers, which this benchmark does not install; "
        "the side-by-side comparison with it is not run yet.",
        "",
        *lines,
    ])
