"""The autoscaler's own metrics (headroom_autoscaler_*), as a collector on a registry it is given (tests read a
private one): replica counts, forecast, capacity, decisions by reason, loop duration, last success, staleness."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LOOP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
REASON_KINDS = (
    "forecast",
    "burst",
    "gpu_util",
    "stabilization",
    "absorb",
    "stale",
    "cooldown",
    "step",
    "min",
    "max",
    "policy",
)


def reason_kind(reason: str) -> str:
    """A bounded label for a free-text reason."""
    text = reason.lower()
    for kind, needles in (
        ("forecast", ("forecast",)),
        ("burst", ("burst",)),
        ("gpu_util", ("gpu utilization",)),
        ("stabilization", ("stabilization",)),
        ("absorb", ("would run above", "fewer would run")),
        ("stale", ("stale",)),
        ("cooldown", ("cooldown",)),
        ("step", ("step capped",)),
        ("min", ("min ",)),
        ("max", ("max ",)),
    ):
        if any(n in text for n in needles):
            return kind
    return "policy"


class AutoscalerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r, t = self.registry, ["target"]
        self.desired = Gauge("headroom_autoscaler_desired_replicas", "Replicas the policy asks for.", t, registry=r)
        self.current = Gauge(
            "headroom_autoscaler_current_replicas", "spec.replicas of the target as read.", t, registry=r
        )
        self.ready = Gauge("headroom_autoscaler_ready_replicas", "Ready replicas of the target.", t, registry=r)
        self.starting = Gauge(
            "headroom_autoscaler_starting_replicas", "Replicas asked for and not ready yet.", t, registry=r
        )
        self.stopping = Gauge(
            "headroom_autoscaler_stopping_replicas",
            "Replicas draining after a scale-down: their GPUs are still held (and paid).",
            t,
            registry=r,
        )
        self.forecast = Gauge(
            "headroom_autoscaler_forecast_requests_per_second",
            "Forecast peak request rate over the horizon (quantile: point or upper).",
            ["target", "quantile"],
            registry=r,
        )
        self.capacity = Gauge(
            "headroom_autoscaler_capacity_requests_per_second",
            "Requests/s one replica carries within the SLO, as corrected online.",
            t,
            registry=r,
        )
        self.decisions = Counter(
            "headroom_autoscaler_decisions", "Decisions by the kind of reason given.", ["target", "reason"], registry=r
        )
        self.actuations = Counter(
            "headroom_autoscaler_actuations", "Replica count changes written.", ["target", "result"], registry=r
        )
        self.stale = Gauge(
            "headroom_autoscaler_stale",
            "1 while the target's metrics are stale or missing (the policy holds).",
            t,
            registry=r,
        )
        self.loop_duration = Histogram(
            "headroom_autoscaler_loop_duration_seconds", "One pass over every target.", buckets=LOOP_BUCKETS, registry=r
        )
        self.last_success = Gauge(
            "headroom_autoscaler_last_success_timestamp_seconds", "When a pass last completed.", registry=r
        )
        self.price = Gauge(
            "headroom_gpu_price_dollars_per_hour",
            "Price of one GPU-hour of each target's GPU (from its config), for the cost recording rules.",
            ["model_name", "gpu"],
            registry=r,
        )
        self.gpus_per_replica = Gauge(
            "headroom_gpus_per_replica", "GPUs one replica of the target holds.", ["model_name"], registry=r
        )
        self.leader = Gauge(
            "headroom_autoscaler_leader", "1 while this instance holds the lease and may actuate.", registry=r
        )

    def record(self, target: str, snapshot, decision, state) -> None:
        self.desired.labels(target).set(decision.desired)
        self.current.labels(target).set(snapshot.desired)
        self.ready.labels(target).set(snapshot.ready)
        self.starting.labels(target).set(snapshot.starting)
        self.stopping.labels(target).set(snapshot.stopping)
        self.stale.labels(target).set(1 if snapshot.stale else 0)
        for reason in decision.reasons:
            self.decisions.labels(target, reason_kind(reason)).inc()
        forecast = getattr(state, "last_forecast", None)
        if forecast is not None:
            self.forecast.labels(target, "point").set(forecast.point)
            self.forecast.labels(target, "upper").set(forecast.upper)
        capacity = getattr(state, "last_capacity_rps", None)
        if capacity is not None:
            self.capacity.labels(target).set(capacity)

    def describe(self, target: str, gpu: str, price_per_gpu_hour: float, gpus_per_replica: int) -> None:
        """What a target costs, set once from its config: the mixin's cost rules read these."""
        self.price.labels(target, gpu).set(price_per_gpu_hour)
        self.gpus_per_replica.labels(target).set(gpus_per_replica)
