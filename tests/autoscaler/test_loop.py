"""The loop: decisions from snapshots, metrics on a private registry, hold and flag on stale data, actuation only
while leading, a failing target never stops the others, and the Kubernetes actuator driven end to end."""

import math

from autoscaler.actuators.base import DryRun
from autoscaler.actuators.kubernetes import KubernetesActuator, WorkloadRef
from autoscaler.loop import AutoscalerLoop, Target
from autoscaler.metrics import AutoscalerMetrics
from autoscaler.policy.predictive import Predictive, PredictiveConfig
from autoscaler.snapshot import ReplicaSample, Snapshot
from tests.autoscaler.actuators.fake_kube import FakeKube


class ScriptedSource:
    """Snapshots with the rates given per pass (NaN: stale)."""

    def __init__(self, rates: dict[str, list[float]]):
        self.rates, self.calls = rates, 0

    def snapshots(self, counts, now):
        out = {}
        for name, c in counts.items():
            rate = self.rates[name][min(self.calls, len(self.rates[name]) - 1)]
            out[name] = Snapshot(
                time_s=now,
                desired=c.desired,
                ready=c.ready,
                starting=c.starting,
                stopping=c.stopping,
                replicas=tuple(ReplicaSample(4, 0, 0.2, 50) for _ in range(c.ready)),
                arrival_rate=rate,
                ttft_p95_s=0.2,
                itl_mean_s=0.02,
                stale=math.isnan(rate),
            )
        self.calls += 1
        return out


def predictive(max_replicas=10):
    return Predictive(PredictiveConfig(capacity_rps=10.0, max_replicas=max_replicas))


def value(metrics, name, **labels):
    return metrics.registry.get_sample_value(name, labels)


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        self.t += 15.0
        return self.t


def test_decisions_metrics_and_stale_hold():
    metrics = AutoscalerMetrics()
    advice = DryRun(initial=1)
    loop = AutoscalerLoop(
        [Target("chat", predictive(), advice)], ScriptedSource({"chat": [45.0, math.nan]}), metrics, clock=Clock()
    )
    first = loop.run_once()["chat"]
    assert first.desired == 7 and advice.advised == 7
    assert value(metrics, "headroom_autoscaler_desired_replicas", target="chat") == 7
    assert value(metrics, "headroom_autoscaler_forecast_requests_per_second", target="chat", quantile="point") == 45.0
    assert value(metrics, "headroom_autoscaler_capacity_requests_per_second", target="chat") == 10.0
    assert value(metrics, "headroom_autoscaler_decisions_total", target="chat", reason="forecast") == 1
    assert value(metrics, "headroom_autoscaler_loop_duration_seconds_count") == 1
    held = loop.run_once()["chat"]
    assert held.desired == 7 and value(metrics, "headroom_autoscaler_stale", target="chat") == 1
    assert value(metrics, "headroom_autoscaler_decisions_total", target="chat", reason="stale") == 1
    assert value(metrics, "headroom_autoscaler_last_success_timestamp_seconds") == 1030.0


class Follower:
    leading = False

    def try_acquire_or_renew(self):
        return self.leading


def test_only_the_leader_actuates_and_a_broken_target_does_not_stop_the_others():
    class Broken(DryRun):
        def scale(self, desired, reasons=()):
            raise RuntimeError("API down")

    metrics, elector = AutoscalerMetrics(), Follower()
    ok, broken = DryRun(initial=1), Broken(initial=1)
    loop = AutoscalerLoop(
        [Target("a", predictive(), broken), Target("b", predictive(), ok)],
        ScriptedSource({"a": [45.0], "b": [45.0]}),
        metrics,
        elector,
        clock=Clock(),
    )
    loop.run_once()
    assert ok.advised == 1 and value(metrics, "headroom_autoscaler_leader") == 0  # decided, not written
    elector.leading = True
    loop.run_once()
    assert ok.advised == 7
    assert value(metrics, "headroom_autoscaler_actuations_total", target="a", result="failed") == 1


def test_kubernetes_end_to_end_never_above_max():
    with FakeKube(replicas=1) as kube:
        actuator = KubernetesActuator(kube.api_client(), WorkloadRef("llm", "vllm"), sleep=lambda s: None)
        loop = AutoscalerLoop(
            [Target("vllm", predictive(max_replicas=5), actuator)], ScriptedSource({"vllm": [500.0]}), clock=Clock()
        )
        decision = loop.run_once()["vllm"]
        assert decision.desired == 5 and kube.workloads["vllm"]["replicas"] == 5
        assert any("capped at max 5" in r for r in decision.reasons)
        assert kube.events and "capped at max 5" in kube.events[0]["message"]


def test_a_policy_that_fails_holds_its_target_and_the_others_go_on():
    class Broken:
        name, interval_s = "broken", 15.0

        def initial_state(self):
            return None

        def decide(self, snapshot, state):
            raise OverflowError("cannot convert float infinity to integer")

    targets = [Target("bad", Broken(), DryRun(initial=3)), Target("good", predictive(), DryRun(initial=1))]
    loop = AutoscalerLoop(targets, ScriptedSource({"bad": [5.0], "good": [30.0]}), clock=Clock())
    decisions = loop.run_once()
    assert decisions["bad"].desired == 3 and "policy failed (OverflowError)" in decisions["bad"].reasons[0]
    assert decisions["good"].desired > 1


def test_predictive_holds_on_infinite_gauges_that_reach_it():
    policy = predictive()
    snapshot = Snapshot(
        time_s=1000.0,
        desired=2,
        ready=2,
        starting=0,
        stopping=0,
        arrival_rate=5.0,
        replicas=(ReplicaSample(4, math.inf, 0.2, math.inf),) * 2,
        ttft_p95_s=math.inf,
        itl_mean_s=0.02,
    )
    loop = AutoscalerLoop([Target("t", policy, DryRun(initial=2))], ScriptedSource({"t": [5.0]}), clock=Clock())
    decision = loop._decide(loop.targets[0], snapshot)
    assert decision.desired >= 2  # held or raised, never a crash
