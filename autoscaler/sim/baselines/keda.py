"""KEDA's Prometheus scaler as vLLM production-stack configures it, with the HPA underneath.

Spec: KEDA docs (scalers/prometheus: `query`, `threshold` as an AverageValue target, `pollingInterval`,
`minReplicaCount`) and vLLM production-stack's KEDA tutorial: query `vllm:num_requests_waiting`, threshold 5,
15 s polling. KEDA serves the summed query result as an external metric; the HPA divides it by the
threshold (GetExternalPerPodMetricReplicas) and applies its default behavior (300 s scale-down window).
"""

from __future__ import annotations

from dataclasses import dataclass

from autoscaler.policy.base import Decision
from autoscaler.sim.baselines.hpa import BehaviorState, HpaConfig, apply_behavior, replicas_for_external_total
from autoscaler.snapshot import Snapshot


@dataclass(frozen=True)
class Keda:
    threshold: float = 5.0
    min_replicas: int = 1
    max_replicas: int = 100
    polling_interval_s: float = 15.0

    @property
    def name(self) -> str:
        return f"keda:waiting={self.threshold:g}"

    @property
    def interval_s(self) -> float:
        return self.polling_interval_s

    def _hpa(self) -> HpaConfig:
        return HpaConfig(
            metric="waiting",
            target=self.threshold,
            min_replicas=self.min_replicas,
            max_replicas=self.max_replicas,
            interval_s=self.polling_interval_s,
        )

    def initial_state(self) -> BehaviorState:
        return BehaviorState()

    def decide(self, snapshot: Snapshot, state: BehaviorState) -> tuple[Decision, BehaviorState]:
        total = snapshot.waiting  # sum(vllm:num_requests_waiting)
        current = snapshot.desired
        recommended = replicas_for_external_total(current, total, self.threshold, 0.1)
        desired, state = apply_behavior(self._hpa(), snapshot.time_s, current, recommended, state)
        return Decision(
            desired, (f"sum(vllm:num_requests_waiting) {total:g} / threshold {self.threshold:g} -> {recommended}",)
        ), state
