"""The predictive policy as a pure function: replicas for the forecast at the SLO capacity, the burst path, hold on
stale data, bounds, scale-down stabilization; every decision carries its reasons."""

import math

import pytest

from autoscaler.capacity.mix_table import CapacityTable
from autoscaler.policy.predictive import Predictive, PredictiveConfig
from autoscaler.snapshot import ReplicaSample, Snapshot


def policy(**kw):
    return Predictive(PredictiveConfig(capacity_rps=10.0, **kw))


def snap(t, rate, desired, ready=None, **kw):
    ready = desired if ready is None else ready
    replicas = kw.pop("replicas", tuple(ReplicaSample(5.0, 0.0, 0.3, 60.0) for _ in range(ready)))
    return Snapshot(
        time_s=t,
        desired=desired,
        ready=ready,
        starting=0,
        stopping=0,
        replicas=replicas,
        arrival_rate=rate,
        ttft_p95_s=0.2,
        itl_mean_s=0.02,
        **kw,
    )


def run(p, rates, start=1, dt=15.0, **kw):
    state, desired, out = p.initial_state(), start, []
    for i, rate in enumerate(rates):
        decision, state = p.decide(snap(i * dt, rate, desired, **kw), state)
        desired = decision.desired
        out.append(decision)
    return out


def test_replicas_for_the_forecast_upper_bound_at_capacity():
    d = run(policy(), [45.0])[-1]
    # 45 req/s x default margin 1.25 / (10 req/s x fill 0.9) = 6.25 -> 7
    assert d.desired == 7 and "forecast peak" in d.reasons[0]


def test_bounds_hold():
    assert run(policy(max_replicas=4), [100.0])[-1].desired == 4
    assert run(policy(min_replicas=2), [0.0])[-1].desired == 2


def test_scale_down_waits_for_the_stabilization_window():
    p = policy(scale_down_window_s=120.0, scale_down_window_unproven_s=0.0, cooldown_s=0.0)
    decisions = run(p, [80.0] * 4 + [8.0] * 12)
    counts = [d.desired for d in decisions]
    assert counts[3] == counts[4] == counts[10]  # 120 s after the drop (8 intervals) it still holds
    assert counts[-1] < counts[3]
    assert any("stabilization" in r for d in decisions for r in d.reasons)


def test_until_the_forecast_has_errors_to_go_by_scale_down_waits_as_long_as_the_hpa():
    """A minute of load then a fall: with too few scored forecasts to trust a lull, the count holds for the
    HPA's 300 s window; the same fall after twelve minutes of load (forecasts scored) waits only 60 s."""
    p = policy(cooldown_s=0.0)
    young = [d.desired for d in run(p, [80.0] * 4 + [8.0] * 24)]
    assert young[22] == young[3] and young[23] < young[3]  # the last high recommendation was at 45 s; 345 s is past
    old = [d.desired for d in run(p, [80.0] * 48 + [8.0] * 12)]
    assert min(old[48:51]) > 2 * old[-1] and old[51] == old[-1]  # held 45 s after the fall, down at 60 s
    assert any("highest of the last 300 s" in r for d in run(p, [80.0] * 4 + [8.0] * 8) for r in d.reasons)


def test_stale_metrics_hold_and_say_so():
    p = policy()
    state = p.initial_state()
    decision, state = p.decide(snap(0.0, 60.0, 8), state)
    stale = snap(15.0, math.nan, decision.desired, stale=True)
    held, _ = p.decide(stale, state)
    assert held.desired == decision.desired
    assert any("stale" in r for r in held.reasons)
    lower, _ = p.decide(snap(30.0, math.nan, decision.desired + 3, stale=True), state)
    assert lower.desired == decision.desired + 3  # never down on missing data


def test_a_backlog_the_forecast_missed_takes_the_burst_path():
    d = run(policy(), [20.0], start=3, gateway_queue=200.0)[-1]
    assert any(r.startswith("burst") for r in d.reasons) and d.desired > 3


def test_hot_gpus_add_replicas():
    hot = tuple(ReplicaSample(5.0, 0.0, 0.3, 99.0) for _ in range(4))
    d = run(policy(), [5.0], start=4, replicas=hot)[-1]
    assert d.desired == math.ceil(4 * 99.0 / 85.0) and any("GPU utilization" in r for r in d.reasons)


def test_capacity_follows_the_length_mix_the_traffic_shows():
    table = CapacityTable((100.0, 1000.0), (100.0, 1000.0), {(0, 0): 40.0, (0, 1): 10.0, (1, 0): 20.0, (1, 1): 5.0})
    p = Predictive(PredictiveConfig(capacity_rps=40.0, capacity_table=table, fallback_mix=(100.0, 100.0)))
    state = p.initial_state()
    long = Snapshot(
        time_s=0.0,
        desired=1,
        ready=1,
        starting=0,
        stopping=0,
        arrival_rate=10.0,
        prompt_tokens_rate=10000.0,
        output_tokens_rate=10000.0,
        ttft_p95_s=0.2,
        itl_mean_s=0.02,
    )
    decision, state = p.decide(long, state)
    assert state.last_capacity_rps == pytest.approx(5.0)  # 1000-token prompts and answers: the slow corner
    assert decision.desired == math.ceil(10.0 * 1.25 / (5.0 * 0.9))


def reversals(counts, within):
    """Up-down-up or down-up-down inside `within` steps."""
    changes = [(i, counts[i] - counts[i - 1]) for i in range(1, len(counts)) if counts[i] != counts[i - 1]]
    return sum(
        1
        for (i, a), (_, b), (k, c) in zip(changes, changes[1:], changes[2:])
        if (a > 0) == (c > 0) != (b > 0) and k - i <= within
    )


def test_no_up_down_up_on_a_noisy_plateau():
    # 40 minutes of a plateau swinging 7% either way across the edge between 5 and 6 replicas, a swing a minute
    rates = [36.0 if i % 8 < 4 else 41.0 for i in range(160)]
    counts = [d.desired for d in run(policy(cooldown_s=0.0), rates)]
    assert reversals(counts, within=40) == 0, counts  # none within 10 minutes
    forgetful = [d.desired for d in run(policy(cooldown_s=0.0, down_headroom_after_rise=0.85), rates)]
    assert reversals(forgetful, within=40) > 0  # what the memory of the rise prevents


def test_a_clear_fall_after_a_rise_still_scales_down():
    p = policy(cooldown_s=0.0)
    counts = [d.desired for d in run(p, [40.0] * 8 + [10.0] * 24)]
    assert counts[-1] < max(counts)  # the load fell by three quarters: the memory of the rise does not hold it
