"""Per-request records of a campaign: written as JSON lines by each Locust process as requests finish (so a
crash loses nothing already measured), merged into a DataFrame and requests.parquet afterwards."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

COLUMNS = [
    "index",
    "worker",
    "scheduled_s",
    "sent_s",
    "lag_s",
    "ok",
    "status",
    "error",
    "ttft_s",
    "tpot_s",
    "itl_mean_s",
    "itls_s",
    "e2e_s",
    "prompt_tokens",
    "prompt_tokens_reported",
    "output_tokens_requested",
    "output_tokens",
    "usage_reported",
    "response_id",
]


class RecordWriter:
    """Appends one JSON line per finished request to its own file (line-buffered)."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file = open(path, "a", buffering=1)  # noqa: SIM115

    def write(self, record: dict) -> None:
        self._file.write(json.dumps(record, allow_nan=True) + "\n")

    def close(self) -> None:
        self._file.close()


def read_records(folder: Path) -> pd.DataFrame:
    """Every record under `folder` (one file per process), ordered by request index. A line cut short by a
    killed process is skipped, not guessed at."""
    rows = []
    for path in sorted(folder.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue
    frame = pd.DataFrame(rows, columns=COLUMNS)
    return frame.sort_values("index", kind="stable").reset_index(drop=True)
