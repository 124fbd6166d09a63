"""Baselines against their specs: the HPA's documented worked examples and behavior, KEDA, KPA panic, oracle."""

import numpy as np
import pytest

from autoscaler.capacity.engine_capacity import slo_capacity
from autoscaler.sim.baselines.hpa import (
    BehaviorState,
    Hpa,
    HpaConfig,
    apply_behavior,
    replicas_for_external_total,
    replicas_for_pod_metric,
)
from autoscaler.sim.baselines.keda import Keda
from autoscaler.sim.baselines.kpa import Kpa
from autoscaler.sim.baselines.oracle import ArrivalTimes, Oracle, StepCounts
from autoscaler.sim.config import SimConfig
from autoscaler.sim.policies import PolicyContext, PolicySpecError, parse_policy
from autoscaler.sim.request.simulator import Simulator
from autoscaler.snapshot import ReplicaSample, Snapshot
from serving.profiles import load_profile
from tests.autoscaler.sim.request.test_simulator import poisson


def test_hpa_docs_examples():
    # "if the current metric value is 200m, and the desired value is 100m, the number of replicas will be doubled"
    assert replicas_for_pod_metric(2, [200, 200], 0, 0, 100, 0.1) == 4
    # "If the current value is instead 50m, you'll halve the number of replicas"
    assert replicas_for_pod_metric(4, [50] * 4, 0, 0, 100, 0.1) == 2
    # "skips any scaling action if the ratio is sufficiently close to 1.0 (within ... 0.1 by default)"
    assert replicas_for_pod_metric(3, [108] * 3, 0, 0, 100, 0.1) == 3
    # HPA walkthrough: one php-apache pod at 305% of its CPU request with a 50% target -> 7 replicas
    assert replicas_for_pod_metric(1, [305], 0, 0, 50, 0.1) == 7


def test_hpa_missing_metrics_and_unready_pods_dampen():
    # scale-up: a ready pod without metrics counts as 0%, so 2 pods at 150 with 1 missing -> ratio 1.0 -> no change
    assert replicas_for_pod_metric(3, [150, 150], 1, 0, 100, 0.1) == 3
    # scale-down: the missing pod counts as 100% of target
    assert replicas_for_pod_metric(3, [20, 20], 1, 0, 100, 0.1) == 2
    # not-ready pods count as 0% when scaling up: 2 at 300 + 2 unready -> ratio 1.5 over 4 pods -> 6
    assert replicas_for_pod_metric(4, [300, 300], 0, 2, 100, 0.1) == 6
    # the same pods without unready ones would have asked for 6 as well
    assert replicas_for_pod_metric(2, [300, 300], 0, 0, 100, 0.1) == 6


def test_hpa_behavior_defaults():
    cfg = HpaConfig()
    # scale-up limited to max(100%, 4 pods) per 15 s
    assert apply_behavior(cfg, 0, 1, 20, BehaviorState())[0] == 5
    assert apply_behavior(cfg, 0, 10, 30, BehaviorState())[0] == 20
    desired, state = apply_behavior(cfg, 0, 2, 6, BehaviorState())
    assert desired == 6
    desired, state = apply_behavior(cfg, 5, 6, 20, state)
    assert desired == 6  # same 15 s period: from its start of 2 pods, max(2 x 2, 2 + 4) = 6 is the limit
    assert apply_behavior(cfg, 16, 6, 20, state)[0] == 12  # next period: max(6 x 2, 6 + 4)
    # a fresh controller records the current count first: no scale-down within the first 300 s
    desired, state = apply_behavior(cfg, 0, 8, 1, BehaviorState())
    assert desired == 8
    assert apply_behavior(cfg, 290, 8, 1, state)[0] == 8
    assert apply_behavior(cfg, 301, 8, 1, state)[0] == 1
    # scale-down waits for the highest recommendation of the last 300 s
    state = BehaviorState()
    for t, rec in ((0, 8), (100, 2), (200, 2)):
        desired, state = apply_behavior(cfg, t, 8, rec, state)
        assert desired == 8
    desired, state = apply_behavior(cfg, 301, 8, 2, state)
    assert desired == 2


def test_hpa_decides_from_snapshot():
    snap = Snapshot(
        30.0,
        desired=2,
        ready=2,
        starting=0,
        stopping=0,
        replicas=(ReplicaSample(10, 12, 0.5, 90), ReplicaSample(10, 8, 0.5, 90)),
    )
    decision, _ = Hpa(HpaConfig(metric="waiting", target=5)).decide(snap, BehaviorState())
    assert decision.desired == 4 and decision.reasons


def test_keda_divides_total_waiting_by_threshold():
    assert replicas_for_external_total(2, 23, 5, 0.1) == 5
    assert replicas_for_external_total(4, 21, 5, 0.1) == 4  # within tolerance
    snap = Snapshot(15.0, desired=1, ready=1, starting=0, stopping=0, replicas=(ReplicaSample(50, 23, 0.9, 100),))
    assert Keda().decide(snap, Keda().initial_state())[0].desired == 5


def test_kpa_panics_and_does_not_scale_down_while_panicking():
    kpa = Kpa(target=10)
    state = kpa.initial_state()

    def tick(t, concurrency, ready, desired):
        nonlocal state
        snap = Snapshot(t, desired=desired, ready=ready, starting=0, stopping=0, extra={"in_flight_now": concurrency})
        decision, state = kpa.decide(snap, state)
        return decision.desired

    for t in range(0, 60, 2):
        assert tick(t, 10, 1, 1) == 1
    assert tick(60, 80, 1, 1) == 4  # panic: the 6 s average (10, 10, 80) needs 4 pods, >= 2x the one ready pod
    assert state.panic_since == 60
    assert tick(62, 5, 8, 8) >= 8  # no scale-down while panicking
    for t in range(64, 130, 2):
        tick(t, 5, 8, 8)
    assert state.panic_since is None
    assert tick(130, 5, 8, 8) == 4  # stable mode again, at most 2x down per tick


def test_policy_specs():
    ctx = PolicyContext(min_replicas=1, max_replicas=9)
    assert parse_policy("static:3", ctx).name == "static:3"
    assert parse_policy("hpa:waiting=5", ctx).config.max_replicas == 9
    assert parse_policy("keda", ctx).threshold == 5
    assert parse_policy("kpa:40", ctx).target == 40
    for bad, words in (
        ("static", "whole replica count"),
        ("hpa:queue=3", "metric"),
        ("kpa:x", "not a number"),
        ("bogus", "unknown policy"),
        ("oracle", "workload"),
        ("no.such.module:Thing", "cannot import"),
    ):
        with pytest.raises(PolicySpecError, match=words):
            parse_policy(bad, ctx)
    oracles = PolicyContext(oracle_factory=lambda derate, window_s: (derate, window_s))
    assert parse_policy("oracle", oracles) == (1.0, 30.0)
    assert parse_policy("oracle:0.8", oracles) == (0.8, 30.0)
    assert parse_policy("oracle:1@5s", oracles) == parse_policy("oracle:1@5", oracles) == (1.0, 5.0)
    for bad, words in (
        ("oracle:1.5", "capacity factor"),
        ("oracle:1@-2", "burst window"),
        ("oracle:1@x", "not a number"),
    ):
        with pytest.raises(PolicySpecError, match=words):
            parse_policy(bad, oracles)


def test_user_policy_loads_through_the_same_interface():
    policy = parse_policy("tests.autoscaler.sim.user_policy:Doubler", PolicyContext())
    assert policy.name == "doubler"
    w = poisson([(60, 2.0)])
    result = Simulator(SimConfig(load_profile("llama-3.1-8b-h100")), w, policy).run()
    assert result.summary["policy"] == "doubler" and result.summary["requests"] == len(w)


def test_oracle_meets_the_slo_where_capacity_allows():
    profile = load_profile("llama-3.1-8b-h100")
    prompts, outputs = np.full(100, 400), np.full(100, 80)
    capacity = slo_capacity(profile, prompts, outputs, 1.0, 0.05, requests=400)
    assert capacity > 1
    w = poisson([(200, 0.5 * capacity), (200, 3.2 * capacity), (200, 1.1 * capacity)], seed=7)
    oracle = Oracle(ArrivalTimes(w.arrival_s), capacity, cold_start_s=60.0)
    result = Simulator(SimConfig(profile, cold_start_s=60.0, initial_replicas=1), w, oracle).run()
    assert result.summary["slo_attainment"] >= 0.99
    assert result.summary["max_replicas"] >= 4


def test_oracle_future_from_step_counts_matches_arrival_times():
    rng = np.random.default_rng(4)
    times = np.sort(rng.uniform(0, 600, 3000))
    counts = np.bincount((times // 15).astype(int), minlength=40).astype(float)
    exact, binned = ArrivalTimes(times), StepCounts(counts, 15.0)
    # on step-aligned windows the busiest one is the same; arrival-anchored windows can only find a busier one
    for start, end in ((0, 600), (90, 300), (300, 345)):
        assert binned.peak_rate(start, end, 30.0) <= exact.peak_rate(start, end, 30.0) + 1e-9
    assert binned.peak_rate(0, 600, 30.0) == max(counts[i] + counts[i + 1] for i in range(39)) / 30.0
    assert binned.peak_rate(0, 600, 5.0) == counts.max() / 15.0  # finer than a step: judged on one step
    assert binned.peak_rate(900, 1000, 30.0) == exact.peak_rate(900, 1000, 30.0) == 0.0
    assert Oracle(binned, 10.0, 90.0).needed(0, 600) == int(np.ceil(binned.peak_rate(0, 600, 30.0) / 10.0))
