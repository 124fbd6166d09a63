"""Kubernetes HorizontalPodAutoscaler (autoscaling/v2), as the controller computes it.

Spec: https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/ ("Algorithm details",
"Configurable scaling behavior") and the controller's replica_calculator.go / horizontal.go:
- desired = ceil(current x currentMetric / target), no change within a 10% tolerance;
- per-pod metrics: ready pods with metrics are averaged; missing metrics count as 100% of target on a
  scale-down and 0% on a scale-up; not-yet-ready pods count as 0% when scaling up; if that recount flips
  the direction or lands within tolerance, nothing changes;
- default behavior: scale-up stabilization 0 s with at most max(100%, 4 pods) added per 15 s; scale-down
  stabilization 300 s (the highest recommendation of the last 5 minutes, the count at start-up included) with
  100% per 15 s;
- sync period 15 s; min and max replicas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from autoscaler.policy.base import Decision
from autoscaler.snapshot import Snapshot, replica_column

METRICS = ("waiting", "gpu_util", "running")


@dataclass(frozen=True)
class HpaConfig:
    metric: str = "gpu_util"  # per-pod: vllm:num_requests_waiting, DCGM_FI_DEV_GPU_UTIL or vllm:num_requests_running
    target: float = 70.0  # average value per pod
    min_replicas: int = 1
    max_replicas: int = 100
    tolerance: float = 0.1
    interval_s: float = 15.0
    scale_down_window_s: float = 300.0
    scale_up_window_s: float = 0.0
    scale_up_percent: float = 100.0
    scale_up_pods: int = 4
    scale_up_period_s: float = 15.0
    scale_down_percent: float = 100.0
    scale_down_period_s: float = 15.0

    def __post_init__(self):
        if self.metric not in METRICS:
            raise ValueError(f"hpa metric must be one of {', '.join(METRICS)}, got {self.metric!r}")
        if self.target <= 0:
            raise ValueError(f"hpa target must be positive, got {self.target}")


def pod_metric(snapshot: Snapshot, metric: str) -> list[float]:
    attribute = {"waiting": "waiting", "gpu_util": "gpu_util", "running": "running"}[metric]
    return replica_column(snapshot.replicas, attribute)


def replicas_for_pod_metric(
    current: int, values: list[float], missing: int, unready: int, target: float, tolerance: float
) -> int:
    """replica_calculator.go GetMetricReplicas for AverageValue targets (pod and resource metrics)."""
    if not values:
        return current
    usage_ratio = (sum(values) / len(values)) / target
    scale_up_with_unready = unready > 0 and usage_ratio > 1.0
    if not scale_up_with_unready and missing == 0:
        if abs(1.0 - usage_ratio) <= tolerance:
            return current
        return math.ceil(usage_ratio * len(values))
    filled = list(values)
    if missing:
        filled += [target if usage_ratio < 1.0 else 0.0] * missing
    if scale_up_with_unready:
        filled += [0.0] * unready
    new_ratio = (sum(filled) / len(filled)) / target
    if abs(1.0 - new_ratio) <= tolerance or (usage_ratio > 1.0) != (new_ratio > 1.0):
        return current
    new_replicas = math.ceil(new_ratio * len(filled))
    if (new_ratio < 1.0 and new_replicas > current) or (new_ratio > 1.0 and new_replicas < current):
        return current
    return new_replicas


def replicas_for_external_total(current: int, total: float, target_average: float, tolerance: float) -> int:
    """replica_calculator.go GetExternalPerPodMetricReplicas: an external metric with an AverageValue target."""
    usage_ratio = total / (target_average * max(current, 1))
    if current and abs(1.0 - usage_ratio) <= tolerance:
        return current
    return math.ceil(total / target_average)


@dataclass(frozen=True)
class BehaviorState:
    recommendations: tuple[tuple[float, int], ...] = ()
    events: tuple[tuple[float, int], ...] = ()  # (time, replica change) for the rate limits


def apply_behavior(
    cfg: HpaConfig, now: float, current: int, recommended: int, state: BehaviorState
) -> tuple[int, BehaviorState]:
    """horizontal.go normalizeDesiredReplicasWithBehaviors: stabilization windows, then rate limits, then bounds.
    On its first call the controller records the current count as a recommendation (recordInitialRecommendation),
    so a freshly started HPA does not scale down before a whole stabilization window has passed."""
    recommended = max(cfg.min_replicas, min(cfg.max_replicas, recommended))
    horizon = max(cfg.scale_down_window_s, cfg.scale_up_window_s)
    earlier = tuple((t, r) for t, r in state.recommendations or ((now, current),) if now - t < horizon)
    # the stored recommendations newer than each window's cutoff, and the one made now
    up = min([recommended] + [r for t, r in earlier if now - t < cfg.scale_up_window_s])
    down = max([recommended] + [r for t, r in earlier if now - t < cfg.scale_down_window_s])
    recs = earlier + ((now, recommended),)
    stabilized = current
    stabilized = max(stabilized, up)
    stabilized = min(stabilized, down)
    events = tuple((t, d) for t, d in state.events if now - t < max(cfg.scale_up_period_s, cfg.scale_down_period_s))
    if stabilized > current:
        added = sum(d for t, d in events if d > 0 and now - t < cfg.scale_up_period_s)
        start = current - added
        limit = max(math.ceil(start * (1 + cfg.scale_up_percent / 100)), start + cfg.scale_up_pods)
        desired = min(stabilized, limit)
    elif stabilized < current:
        removed = -sum(d for t, d in events if d < 0 and now - t < cfg.scale_down_period_s)
        start = current + removed
        limit = math.floor(start * (1 - cfg.scale_down_percent / 100))
        desired = max(stabilized, limit)
    else:
        desired = current
    desired = max(cfg.min_replicas, min(cfg.max_replicas, desired))
    if desired != current:
        events += ((now, desired - current),)
    return desired, BehaviorState(recs, events)


@dataclass(frozen=True)
class Hpa:
    config: HpaConfig = HpaConfig()

    @property
    def name(self) -> str:
        return f"hpa:{self.config.metric}={self.config.target:g}"

    @property
    def interval_s(self) -> float:
        return self.config.interval_s

    def initial_state(self) -> BehaviorState:
        return BehaviorState()

    def decide(self, snapshot: Snapshot, state: BehaviorState) -> tuple[Decision, BehaviorState]:
        cfg = self.config
        current = snapshot.desired
        values = pod_metric(snapshot, cfg.metric)
        missing = max(0, snapshot.ready - len(values))
        recommended = replicas_for_pod_metric(current, values, missing, snapshot.starting, cfg.target, cfg.tolerance)
        desired, state = apply_behavior(cfg, snapshot.time_s, current, recommended, state)
        mean = sum(values) / len(values) if values else float("nan")
        return Decision(
            desired,
            (
                f"{cfg.metric} per pod {mean:.2f} vs target {cfg.target:g} -> {recommended}",
                f"after behavior: {desired}",
            ),
        ), state
