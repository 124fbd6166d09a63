"""`static:N`: a fixed replica count, the over-provisioned reference."""

from __future__ import annotations

from dataclasses import dataclass

from autoscaler.policy.base import Decision
from autoscaler.snapshot import Snapshot


@dataclass(frozen=True)
class Static:
    replicas: int
    interval_s: float = 15.0

    @property
    def name(self) -> str:
        return f"static:{self.replicas}"

    def initial_state(self):
        return None

    def decide(self, snapshot: Snapshot, state) -> tuple[Decision, None]:
        return Decision(self.replicas, ("static",)), None
