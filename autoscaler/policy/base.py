"""The policy interface every scaler implements (Headroom's own, the baselines, and users' own)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from autoscaler.snapshot import Snapshot


@dataclass(frozen=True)
class Decision:
    desired: int
    reasons: tuple[str, ...] = ()


@runtime_checkable
class Policy(Protocol):
    """A scaling policy. Pure: `decide` reads only its arguments; time comes in the snapshot.

    - `name`: shown in reports.
    - `interval_s`: how often the loop (or the simulator) calls `decide`.
    - `initial_state()`: the state before the first call.
    - `decide(snapshot, state) -> (Decision, new_state)`: the replica count wanted now, with its reasons.
    """

    name: str
    interval_s: float

    def initial_state(self) -> Any: ...

    def decide(self, snapshot: Snapshot, state: Any) -> tuple[Decision, Any]: ...
