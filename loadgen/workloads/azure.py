"""Loader for the Azure LLM inference trace 2023 CSV (TIMESTAMP, ContextTokens, GeneratedTokens)."""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

import numpy as np

from loadgen.workloads.workload import TraceError, Workload

COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")


def parse_count(path: str, line: int, column: str, raw: str, minimum: int) -> int:
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise TraceError(path, line, column, raw, "expected a whole number of tokens") from None
    if value < minimum:
        raise TraceError(path, line, column, raw, f"must be >= {minimum}")
    return value


def load_azure(path: str | Path) -> Workload:
    """Arrivals relative to the first row; rows must be in time order, as the published files are."""
    path = str(path)
    times, prompts, outputs = [], [], []
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or tuple(h.strip() for h in header) != COLUMNS:
            raise TraceError(path, 1, "header", header, f"expected the columns {', '.join(COLUMNS)}")
        for line, row in enumerate(reader, start=2):
            if not row or row == [""]:
                continue
            if len(row) != 3:
                raise TraceError(path, line, "row", ",".join(row), "expected 3 columns")
            try:
                stamp = datetime.fromisoformat(row[0].strip()).timestamp()
            except ValueError:
                raise TraceError(path, line, "TIMESTAMP", row[0], "expected YYYY-MM-DD HH:MM:SS.fffffff") from None
            if times and stamp < times[-1]:
                raise TraceError(
                    path, line, "TIMESTAMP", row[0], "earlier than the previous row; the trace must be sorted"
                )
            times.append(stamp)
            prompts.append(parse_count(path, line, "ContextTokens", row[1], 1))
            outputs.append(parse_count(path, line, "GeneratedTokens", row[2], 0))
    if not times:
        raise TraceError(path, 2, "row", "", "the trace has no requests")
    arrival = np.asarray(times, dtype=np.float64)
    out = np.maximum(np.asarray(outputs, dtype=np.int64), 1)  # a request yields at least one token
    return Workload(Path(path).stem, arrival - arrival[0], np.asarray(prompts, dtype=np.int64), out)
