"""The thin loop: read counts (actuators), measure (source), decide (policies), and actuate only while leading.
One pass per interval over every target; a failing target is logged and held, never the others."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from autoscaler.actuators.base import Actuator
from autoscaler.metrics import AutoscalerMetrics
from autoscaler.policy.base import Decision, Policy
from autoscaler.sources.prometheus import FleetCounts

log = logging.getLogger("headroom.autoscaler")


@dataclass
class Target:
    name: str
    policy: Policy
    actuator: Actuator
    state: Any = None
    last_counts: FleetCounts | None = None

    def __post_init__(self):
        if self.state is None:
            self.state = self.policy.initial_state()


@dataclass
class AutoscalerLoop:
    targets: list[Target]
    source: Any  # snapshots(counts: dict[str, FleetCounts], now) -> dict[str, Snapshot]
    metrics: AutoscalerMetrics = field(default_factory=AutoscalerMetrics)
    elector: Any = None  # try_acquire_or_renew() -> bool; None: always leading
    clock: Callable[[], float] = time.time
    source_errors: tuple[str, ...] = ()  # what kept the last pass's snapshots from being read, if anything
    closing: tuple[Callable[[], None], ...] = ()  # what `close` stops: the capacity tables' background measurements

    def close(self) -> None:
        for stop in self.closing:
            stop()

    def run_once(self) -> dict[str, Any]:
        """One pass; returns each target's decision."""
        started = time.perf_counter()
        now = self.clock()
        counts = {}
        for target in self.targets:
            try:
                target.last_counts = counts[target.name] = target.actuator.counts()
            except Exception as err:  # cannot read the target: decide from the last counts, never act blind  # noqa: BLE001
                log.warning(json.dumps({"event": "counts_failed", "target": target.name, "error": str(err)}))
                if target.last_counts is not None:
                    counts[target.name] = target.last_counts
        snapshots = self.source.snapshots(counts, now)
        self.source_errors = tuple(sorted({e for s in snapshots.values() for e in s.extra.get("errors", ())}))
        leading = True if self.elector is None else bool(self.elector.try_acquire_or_renew())
        self.metrics.leader.set(1 if leading else 0)
        decisions = {}
        for target in self.targets:
            snapshot = snapshots.get(target.name)
            if snapshot is None:
                continue
            decision = self._decide(target, snapshot)
            decisions[target.name] = decision
            self.metrics.record(target.name, snapshot, decision, target.state)
            changed = False
            if leading and decision.desired != snapshot.desired:
                try:
                    changed = target.actuator.scale(decision.desired, decision.reasons)
                    self.metrics.actuations.labels(target.name, "changed" if changed else "unchanged").inc()
                except Exception as err:  # noqa: BLE001
                    self.metrics.actuations.labels(target.name, "failed").inc()
                    log.error(json.dumps({"event": "actuation_failed", "target": target.name, "error": str(err)}))
            log.info(
                json.dumps(
                    {
                        "event": "decision",
                        "target": target.name,
                        "time": now,
                        "current": snapshot.desired,
                        "ready": snapshot.ready,
                        "desired": decision.desired,
                        "stale": snapshot.stale,
                        "leading": leading,
                        "changed": changed,
                        "reasons": list(decision.reasons),
                    }
                )
            )
        self.metrics.loop_duration.observe(time.perf_counter() - started)
        self.metrics.last_success.set(now)
        return decisions

    @staticmethod
    def _decide(target: Target, snapshot) -> Decision:
        """The policy's decision; a policy that fails holds its target at the count it has (logged, never raised)."""
        try:
            decision, target.state = target.policy.decide(snapshot, target.state)
            return decision
        except Exception as err:  # noqa: BLE001
            log.error(
                json.dumps({"event": "policy_failed", "target": target.name, "error": f"{type(err).__name__}: {err}"})
            )
            return Decision(snapshot.desired, (f"held: the policy failed ({type(err).__name__})",))
