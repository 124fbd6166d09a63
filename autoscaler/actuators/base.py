"""The actuator Protocol and the two that change nothing: dry-run (advisory) and metric (for an HPA or KEDA)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from autoscaler.sources.prometheus import FleetCounts


@runtime_checkable
class Actuator(Protocol):
    """The only writer. `counts()` reads the target's replica counts; `scale()` asks for `desired` (True if changed)."""

    kind: str

    def counts(self) -> FleetCounts: ...

    def scale(self, desired: int, reasons: tuple[str, ...] = ()) -> bool: ...


class DryRun:
    """Advisory: decides and exports (the loop's metrics show every decision), changes nothing. Counts come from a
    reader (e.g. a read-only Kubernetes actuator) or, without one, are taken to follow the advice."""

    kind = "dry-run"

    def __init__(self, read: Callable[[], FleetCounts] | None = None, initial: int = 1):
        self._read = read
        self.advised = initial
        self.log: list[tuple[int, tuple[str, ...]]] = []

    def counts(self) -> FleetCounts:
        return self._read() if self._read else FleetCounts(desired=self.advised, ready=self.advised)

    def scale(self, desired: int, reasons: tuple[str, ...] = ()) -> bool:
        changed = desired != self.advised
        self.advised = desired
        self.log.append((desired, reasons))
        return changed


class MetricOnly(DryRun):
    """Exports the desired count (headroom_autoscaler_desired_replicas) for an existing HPA or KEDA to consume, e.g. a
    KEDA `prometheus` trigger on that series; writes nothing itself."""

    kind = "metric"
