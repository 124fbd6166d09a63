"""The Kubernetes actuator and leader election against an in-test API server: patch with resourceVersion, re-read and
retry on 409, back off on 429 (Retry-After) and 5xx, an annotation and an Event per change, clear errors; a leader
handover within two lease durations with never two leaders."""

import datetime

import pytest

from autoscaler.actuators.kubernetes import REASON_ANNOTATION, ActuationError, KubernetesActuator, WorkloadRef
from autoscaler.actuators.lease import LeaderElector, LeaseConfig
from tests.autoscaler.actuators.fake_kube import FakeKube

SCALE = r"/deployments/vllm/scale$"


def actuator(kube, sleeps=None, kind="Deployment"):
    record = sleeps if sleeps is not None else []
    return KubernetesActuator(
        kube.api_client(), WorkloadRef("llm", "vllm", kind), instance="pod-a", sleep=record.append
    )


def test_scale_patches_with_the_version_it_read_and_leaves_a_trail():
    with FakeKube(replicas=2, ready=1) as kube:
        act = actuator(kube)
        assert act.counts().desired == 2 and act.counts().ready == 1 and act.counts().starting == 1
        assert act.scale(5, ("forecast peak 40 req/s",)) is True
        assert kube.workloads["vllm"]["replicas"] == 5
        assert "from 2 to 5: forecast peak 40 req/s" in kube.workloads["vllm"]["annotations"][REASON_ANNOTATION]
        [event] = kube.events
        assert event["reason"] == "HeadroomScaled" and event["involvedObject"]["kind"] == "Deployment"
        assert act.scale(5) is False  # already there: no patch, no event
        assert len(kube.events) == 1
        patches = [c for c in kube.calls if c[0] == "PATCH" and c[1].endswith("/scale")]
        assert len(patches) == 1


def test_a_conflict_is_re_read_and_retried():
    with FakeKube(replicas=2) as kube:
        kube.before_patch = lambda: kube.concurrent_write("vllm", 3)  # someone scales between our read and our patch
        assert actuator(kube).scale(6) is True
        assert kube.workloads["vllm"]["replicas"] == 6
        scale_calls = [c for c in kube.calls if c[1].endswith("/scale")]
        assert scale_calls == [("GET", scale_calls[0][1]), ("PATCH", scale_calls[0][1])] * 2


def test_throttling_and_server_errors_back_off_then_succeed():
    with FakeKube(replicas=2) as kube:
        kube.fail_next("PATCH", SCALE, 429, {"Retry-After": "7"})
        kube.fail_next("GET", SCALE, 503)
        sleeps = []
        assert actuator(kube, sleeps).scale(4) is True
        assert kube.workloads["vllm"]["replicas"] == 4
        assert sleeps == [0.5, 7.0]  # exponential backoff on the 503, then the 429's Retry-After honoured


def test_giving_up_and_client_errors_are_clear():
    with FakeKube(replicas=2) as kube:
        for _ in range(10):
            kube.fail_next("GET", SCALE, 500)
        with pytest.raises(ActuationError, match="gave up after 6 attempts"):
            actuator(kube).scale(4)
        missing = KubernetesActuator(kube.api_client(), WorkloadRef("llm", "nope"), sleep=lambda s: None)
        with pytest.raises(ActuationError, match=r'HTTP 404.*deployments.apps "nope" not found'):
            missing.scale(3)
    with pytest.raises(ValueError, match="kind must be one of"):
        WorkloadRef("llm", "x", "ReplicaSet")


def test_statefulsets_scale_the_same_way():
    with FakeKube(replicas=1) as kube:
        assert actuator(kube, kind="StatefulSet").scale(3) is True
        assert any("/statefulsets/vllm/scale" in path for _, path in kube.calls)


def test_leader_handover_within_two_lease_durations_and_never_two_leaders():
    with FakeKube() as kube:
        config = LeaseConfig("llm", duration_s=10)
        a = LeaderElector(kube.api_client(), config, "pod-a")
        b = LeaderElector(kube.api_client(), config, "pod-b")
        t0 = datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC)
        at = lambda s: t0 + datetime.timedelta(seconds=s)
        actuations = []
        a_alive = True
        handover = None
        for second in range(60):  # both loops tick every second; A dies at 20 s
            if second == 20:
                a_alive = False
            leaders = []
            if a_alive and a.try_acquire_or_renew(at(second)):
                leaders.append("a")
            if b.try_acquire_or_renew(at(second)):
                leaders.append("b")
                handover = handover if handover is not None else second
            assert len(leaders) <= 1, f"two leaders at {second} s"
            actuations += [(second, who) for who in leaders]  # only a leader of this tick actuates
        assert {who for s, who in actuations if s < 20} == {"a"}
        assert handover is not None and 20 < handover <= 20 + 2 * config.duration_s
        assert kube.leases["headroom-autoscaler"]["spec"]["leaseTransitions"] == 1
        # A comes back (a paused process): it sees B's fresh lease and does not actuate
        assert a.try_acquire_or_renew(at(60)) is False and b.try_acquire_or_renew(at(60)) is True
