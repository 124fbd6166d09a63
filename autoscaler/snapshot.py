"""What a scaling policy sees each control interval: built from Prometheus in production, from the simulator's scrapes in tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple


class ReplicaSample(NamedTuple):
    """One ready replica's gauges as last scraped (a NamedTuple: fleets of hundreds are built every scrape)."""

    running: float
    waiting: float
    kv_usage: float  # 0-1
    gpu_util: float  # DCGM_FI_DEV_GPU_UTIL, percent


class ReplicaColumns(Sequence):
    """Ready replicas' gauges held as four columns (arrays or lists), read as a sequence of ReplicaSample rows: a
    simulated fleet of hundreds is scraped every 15 s for days, and most policies read one column, or its total.
    A column becomes a list of floats the first time it is read, and is summed left to right, as over rows."""

    __slots__ = ("_columns", "_lists")

    def __init__(self, running, waiting, kv_usage, gpu_util):
        self._columns = (running, waiting, kv_usage, gpu_util)
        self._lists: list[list[float] | None] = [None] * 4
        if len({len(c) for c in self._columns}) > 1:
            raise ValueError(f"replica columns of unequal lengths: {[len(c) for c in self._columns]}")

    def column(self, name: str) -> list[float]:
        i = ReplicaSample._fields.index(name)
        values = self._lists[i]
        if values is None:
            column = self._columns[i]
            values = self._lists[i] = column.tolist() if hasattr(column, "tolist") else list(column)
        return values

    def __len__(self) -> int:
        return len(self._columns[0])

    def __getitem__(self, index):
        if isinstance(index, slice):
            return list(self)[index]
        return ReplicaSample._make(self.column(name)[index] for name in ReplicaSample._fields)

    def __iter__(self):
        return map(ReplicaSample._make, zip(*(self.column(name) for name in ReplicaSample._fields)))

    def __eq__(self, other) -> bool:
        return isinstance(other, Sequence) and len(other) == len(self) and all(a == b for a, b in zip(self, other))

    def __repr__(self) -> str:
        return f"ReplicaColumns({list(self)!r})"


def replica_column(replicas: Sequence[ReplicaSample], name: str) -> list[float]:
    """One gauge of every replica, from rows or columns alike."""
    if isinstance(replicas, ReplicaColumns):
        return replicas.column(name)
    return [getattr(r, name) for r in replicas]


@dataclass(frozen=True)
class Snapshot:
    time_s: float
    desired: int  # replicas currently asked for (the scale subresource's spec.replicas)
    ready: int
    starting: int
    stopping: int
    replicas: Sequence[ReplicaSample] = ()  # ready replicas with a sample: a tuple of rows, or ReplicaColumns
    arrival_rate: float = 0.0  # requests/s reaching the gateway, over the rate window
    completion_rate: float = 0.0  # requests/s finished by the engines
    prompt_tokens_rate: float = 0.0
    output_tokens_rate: float = 0.0
    ttft_p95_s: float = float("nan")
    itl_mean_s: float = float("nan")
    gateway_queue: float = 0.0  # requests held at the gateway for want of a ready replica
    sample_age_s: float = 0.0  # age of the newest sample behind these numbers
    window_s: float = 60.0
    stale: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def running(self) -> float:
        return sum(replica_column(self.replicas, "running"))

    @property
    def waiting(self) -> float:
        return sum(replica_column(self.replicas, "waiting"))

    @property
    def in_flight(self) -> float:
        """Requests in the system: running and waiting in engines, plus queued at the gateway."""
        return self.running + self.waiting + self.gateway_queue
