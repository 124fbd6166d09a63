"""Collector (no HTTP) for sampled GPU readings, with dcgm-exporter's labels and, when mapped, the pod's."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from serving.contracts.dcgm_fields import DCGM_LABELS, POD_LABELS, dcgm_families


@dataclass(frozen=True)
class GpuRow:
    """One GPU's identity labels and its latest readings ({DCGM field: value})."""

    index: int
    uuid: str
    pci_bus_id: str
    device: str
    model_name: str
    readings: dict[str, float]


class GpuSource(Protocol):
    def read_all(self) -> list[GpuRow]: ...


PodLookup = Callable[[], dict[str, tuple[str, str, str]]]  # GPU UUID -> (pod, namespace, container)


class SampledGpus:
    """Reads a source every `interval_s` in a daemon thread; scrapes get the latest rows, never a slow read."""

    def __init__(self, source: GpuSource, interval_s: float = 1.0):
        self.source, self.interval_s = source, interval_s
        self._rows: list[GpuRow] = source.read_all()
        self.sampled_at = time.time()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gpu-sampler", daemon=True)

    def start(self) -> SampledGpus:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            rows = self.source.read_all()
            with self._lock:
                self._rows, self.sampled_at = rows, time.time()

    def rows(self) -> list[GpuRow]:
        with self._lock:
            return list(self._rows)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5.0)


class GpuCollector:
    """One series per GPU per field; with a pod lookup, GPUs in use by a pod also carry pod, namespace, container."""

    def __init__(self, rows: Callable[[], list[GpuRow]], hostname: str | None = None, pods: PodLookup | None = None):
        self.rows, self.pods = rows, pods
        self.hostname = hostname or socket.gethostname()

    def collect(self):
        rows = self.rows()
        owners = self.pods() if self.pods is not None else {}
        names = DCGM_LABELS + (POD_LABELS if self.pods is not None else [])
        labelled = []
        for row in rows:
            labels = [str(row.index), row.uuid, row.pci_bus_id, row.device, row.model_name, self.hostname]
            if self.pods is not None:
                labels += list(owners.get(row.uuid, ("", "", "")))
            labelled.append((labels, row.readings))
        yield from dcgm_families(names, labelled)
