"""The server's cost of a prompt outside the engine's steps, from `bench/vllm_device/prompt_cost.py`'s runs on real
vLLM: per length, the client's time less the engine's queue and prefill time, and a line through every request."""

from __future__ import annotations

import csv
from pathlib import Path
from statistics import median

import numpy as np

DATA = Path(__file__).resolve().parent / "data" / "vllm-h100" / "prompt_cost.csv"


def outside_engine(path: Path = DATA) -> list[tuple[int, float]]:
    """(prompt tokens, seconds outside the engine) of each request: its client time less its queue and prefill."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{path}: no requests")
    return [
        (
            int(r["prompt_tokens"]),
            float(r["client_s"]) - float(r["request_queue_time_seconds"]) - float(r["request_prefill_time_seconds"]),
        )
        for r in rows
    ]


def per_token_line(requests: list[tuple[int, float]]) -> tuple[float, float]:
    """(fixed seconds, seconds a prompt token): least squares through every request."""
    tokens, seconds = np.array(requests, dtype=float).T
    slope, intercept = np.polyfit(tokens, seconds, 1)
    return float(intercept), float(slope)


def prompt_cost_section(path: Path = DATA) -> str:
    requests = outside_engine(path)
    fixed, per_token = per_token_line(requests)
    lengths = sorted({n for n, _ in requests})
    rows = [f"| {n:,} | {median(s for m, s in requests if m == n) * 1e3:.1f} |" for n in lengths]
    return "\n".join(
        [
            "## The server's cost of a prompt on real vLLM 0.20.2",
            "",
            (
                f"`python -m bench prompt-cost`, from {path.relative_to(path.parents[3])} (measured on the H100 host "
                "with `bench/vllm_device/prompt_cost.py`: one request at a time, max_tokens 1; the engine's own "
                "queue and prefill time from the server's /metrics around each request). Median time outside the "
                f"engine's steps per prompt length; a line through all {len(requests)} requests gives "
                f"{fixed * 1e3:.1f} ms and {per_token * 1e6:.2f} µs a prompt token (the engine model's "
                "`request_overhead_s` and `request_token_s`; docs/vllm-on-h200.md)."
            ),
            "",
            "| prompt tokens | client less queue and prefill (ms) |",
            "|---|---|",
            *rows,
        ]
    )
