"""What every simulation mode shares around its replicas: the control tick and the timeline row."""

from __future__ import annotations

from autoscaler.policy.base import Decision, Policy
from autoscaler.sim.observe import Observer


def decide(
    policy: Policy,
    observer: Observer,
    now: float,
    desired: int,
    counts: tuple[int, int, int],
    in_flight: float,
    state,
    decisions: list,
) -> tuple[Decision, object]:
    """One control tick: the policy reads the snapshot Prometheus would give it now (with the requests in flight
    as the gateway counts them); its decision is recorded. Returns the decision and the policy's new state."""
    snapshot = observer.snapshot(now, desired, *counts, extra={"in_flight_now": in_flight})
    decision, state = policy.decide(snapshot, state)
    decisions.append((now, decision))
    return decision, state


def timeline_row(
    when: float,
    desired: int,
    counts: tuple[int, int, int],
    arrivals: float,
    since: float,
    running: float,
    waiting: float,
    gateway_queue: float,
    kv_usage: float,
    gpu_util: float,
) -> dict:
    """One row of a run's timeline: the fleet at `when` and the arrivals since the row before (at `since`)."""
    ready, starting, draining = counts
    return {
        "time_s": when,
        "desired": desired,
        "ready": ready,
        "starting": starting,
        "draining": draining,
        "arrivals": arrivals,
        "arrival_rate": arrivals / max(1e-9, when - since),
        "running": running,
        "waiting": waiting,
        "gateway_queue": gateway_queue,
        "kv_usage": kv_usage,
        "gpu_util": gpu_util,
    }
