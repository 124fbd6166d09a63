"""Loader for the JSONL replay format that guidellm and aiperf read (timestamp ms, input/output length, hash_ids)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from loadgen.workloads.prefix import PrefixBlocks
from loadgen.workloads.workload import TraceError, Workload
from serving.engine.profile import BLOCK_SIZE

MAX_SPAN_S = 366 * 86400.0


def _field(path: str, line: int, doc: dict, name: str, minimum: float, integer: bool = True):
    if name not in doc:
        raise TraceError(path, line, name, None, "missing field")
    value = doc[name]
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok:
        raise TraceError(path, line, name, value, "expected an integer" if integer else "expected a number")
    if not math.isfinite(value):
        raise TraceError(path, line, name, value, "must be a finite number")
    if value < minimum:
        raise TraceError(path, line, name, value, f"must be >= {minimum}")
    return value


def load_jsonl(path: str | Path, hash_block_size: int = 512) -> Workload:
    """One JSON object per line; `timestamp` in milliseconds; optional `hash_ids` of `hash_block_size`-token blocks."""
    path = str(path)
    rows = []
    with open(path) as f:
        for line, text in enumerate(f, start=1):
            if not text.strip():
                continue
            try:
                doc = json.loads(text)
            except json.JSONDecodeError as err:
                raise TraceError(path, line, "line", text.strip()[:80], f"not valid JSON ({err.msg})") from None
            if not isinstance(doc, dict):
                raise TraceError(path, line, "line", text.strip()[:80], "expected a JSON object")
            stamp = _field(path, line, doc, "timestamp", 0, integer=False)
            prompt = _field(path, line, doc, "input_length", 1)
            output = _field(path, line, doc, "output_length", 1)
            hashes = doc.get("hash_ids", [])
            if not isinstance(hashes, list) or not all(isinstance(h, int) and not isinstance(h, bool) for h in hashes):
                raise TraceError(path, line, "hash_ids", hashes, "expected a list of integers")
            rows.append((stamp / 1000.0, prompt, output, hashes))
    if not rows:
        raise TraceError(path, 1, "line", "", "the trace has no requests")
    rows.sort(key=lambda r: r[0])
    arrival = np.array([r[0] for r in rows])
    span_s = arrival[-1] - arrival[0]
    if span_s > MAX_SPAN_S:  # a unit mistake (seconds or microseconds for milliseconds), not a trace to simulate
        raise TraceError(
            path,
            1,
            "timestamp",
            f"{span_s / 86400:.0f} days from first to last",
            f"a trace may span at most {MAX_SPAN_S / 86400:.0f} days; timestamps are milliseconds",
        )
    prefix = PrefixBlocks.from_lists([r[3] for r in rows], per_block=max(1, hash_block_size // BLOCK_SIZE))
    return Workload(
        Path(path).stem,
        arrival - arrival[0],
        np.array([r[1] for r in rows]),
        np.array([r[2] for r in rows]),
        prefix if prefix else None,
    )
