"""Request-level fleet simulation in virtual time: each request routed to a replica running `serving/engine`, on
the fleet loop (autoscaler.sim.loop) that fluid mode shares; records, timeline and summary out."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from autoscaler.policy.base import Policy
from autoscaler.sim.config import SimConfig
from autoscaler.sim.loop import FleetLoop, Gauges, Run
from autoscaler.sim.observe import Scrape, ttft_bucket
from autoscaler.sim.request.replica import SimReplica
from autoscaler.sim.results import SimResult, summarize
from autoscaler.snapshot import ReplicaSample
from loadgen.workloads.workload import Workload
from serving.contracts.vllm_metrics import TTFT_BUCKETS
from serving.engine.scheduler import EngineRequest
from serving.fleet.state import ReplicaState as State


@dataclass
class Records:
    """Per-request outcome arrays, indexed like the workload."""

    arrival: np.ndarray
    prompt: np.ndarray
    output: np.ndarray
    replica: np.ndarray = field(init=False)
    scheduled: np.ndarray = field(init=False)
    first: np.ndarray = field(init=False)
    finish: np.ndarray = field(init=False)
    ok: np.ndarray = field(init=False)
    done: np.ndarray = field(init=False)

    def __post_init__(self):
        n = len(self.arrival)
        self.replica = np.full(n, -1, dtype=np.int32)
        self.scheduled, self.first, self.finish = (np.full(n, np.nan) for _ in range(3))
        self.ok = np.zeros(n, dtype=bool)
        self.done = np.zeros(n, dtype=bool)


class Simulator:
    """One run of one policy over one workload: the FleetModel of request-level replicas. Deterministic."""

    def __init__(
        self, config: SimConfig, workload: Workload, policy: Policy, progress: Callable[[float], None] | None = None
    ):
        self.config, self.workload, self.policy = config, workload, policy
        self.progress = progress
        self.records = Records(workload.arrival_s, workload.prompt_tokens, workload.output_tokens)
        self.replicas: list[SimReplica] = []
        self.timeline: list[dict] = []
        self.decisions: list = []
        self._next = 0  # the next request of the workload to arrive
        self._completions = 0
        self._prompt_tokens = 0
        self._ttft_counts = np.zeros(len(TTFT_BUCKETS) + 1)
        self._itl_sum = 0.0
        self._itl_count = 0
        self._busy_at_scrape: dict[int, float] = {}
        self._last_scrape = 0.0
        self._rr = 0
        self._last_end = 0.0
        self._busy_at_timeline: dict[int, float] = {}
        # the server's own cost before a request can be scheduled (HTTP, tokenization): it joins the engine later
        self._request_latency_s = config.profile.efficiency.request_latency_s

    def run(self) -> SimResult:
        for _ in range(self.config.initial_replicas):  # already serving when the trace starts, billed from t=0
            replica = SimReplica(len(self.replicas), self.config.profile, 0.0, 0.0)
            replica.state = State.READY
            self.replicas.append(replica)
        self.loop = FleetLoop(self.config, self.policy, self, self.progress, self.workload.duration_s)
        return self.loop.run()

    # ---- sink: milestones reported by replicas ---------------------------------------------
    def scheduled(self, request: EngineRequest, time: float) -> None:
        i = request.payload
        if math.isnan(self.records.scheduled[i]):
            self.records.scheduled[i] = time

    def first_token(self, request: EngineRequest, time: float) -> None:
        i = request.payload
        self.records.first[i] = time
        self._prompt_tokens += request.prompt_tokens
        self._ttft_counts[ttft_bucket(time - self.records.arrival[i])] += 1

    def finished(self, request: EngineRequest, time: float) -> None:
        i = request.payload
        r = self.records
        r.finish[i], r.ok[i], r.done[i] = time, True, True
        self._last_end = max(self._last_end, time)
        self._completions += 1
        if request.output_tokens > 1:
            self._itl_sum += time - r.first[i]
            self._itl_count += request.output_tokens - 1

    # ---- the loop's time order and arrivals -------------------------------------------------
    def next_key(self, loop: FleetLoop) -> tuple | None:
        """The next arrival (before any clock at the same time); then the clocks alone while requests remain."""
        if self._next < len(self.workload):
            return (float(self.workload.arrival_s[self._next]), -1)
        if loop.gateway.held or any(r.outstanding for r in self.replicas):
            return (math.inf, -1)
        return None

    def clock_key(self, when: float, kind: str, order: int) -> tuple:
        return (when, order)

    def advance(self, loop: FleetLoop) -> None:
        """The next request arrives: routed at once, or held behind those the gateway already holds."""
        i = self._next
        now = float(self.workload.arrival_s[i])
        self._next += 1
        loop.arrivals += 1
        if loop.gateway.held or not self._route(i, now):
            loop.gateway.hold([now, 1, 0.0, i])
            self._drain_gateway(loop, now)

    def on_event(self, loop: FleetLoop, now: float, kind: str, payload) -> None:
        """A replica becomes ready: it takes what the gateway holds."""
        if payload.state is State.STARTING:
            payload.state = State.READY
            payload.clock = now
        self._drain_gateway(loop, now)

    # ---- fleet ----------------------------------------------------------------------------
    def _active(self) -> list[SimReplica]:
        return [r for r in self.replicas if r.state in (State.STARTING, State.READY)]

    def counts(self, now: float) -> tuple[int, int, int]:
        ready = sum(1 for r in self.replicas if r.state is State.READY)
        starting = sum(1 for r in self.replicas if r.state is State.STARTING)
        draining = sum(1 for r in self.replicas if r.state is State.STOPPING)
        return ready, starting, draining

    def scale_to(self, loop: FleetLoop, desired: int, now: float) -> None:
        """Start replicas, or retire those still starting first (newest first), then the least busy ready ones;
        then the gateway's queue is routed or timed out."""
        active = self._active()
        for _ in range(desired - len(active)):
            replica = SimReplica(len(self.replicas), self.config.profile, now, self.config.cold_start_s)
            self.replicas.append(replica)
            loop.push(replica.ready_at, "ready", replica)
        surplus = len(active) - desired
        if surplus > 0:
            for r in self.replicas:
                r.sync(now, self)
            starting = sorted((r for r in active if r.state is State.STARTING), key=lambda r: -r.requested_at)
            ready = sorted((r for r in active if r.state is State.READY), key=lambda r: (r.outstanding, -r.index))
            for replica in (starting + ready)[:surplus]:
                replica.retire(now)
        self._drain_gateway(loop, now)

    def _route(self, i: int, now: float) -> bool:
        candidates = [r for r in self.replicas if r.routable]
        if not candidates:
            return False
        for r in candidates:
            r.sync(now, self)
        low = min(r.outstanding for r in candidates)
        tied = [r for r in candidates if r.outstanding == low]
        replica = tied[self._rr % len(tied)]
        self._rr += 1
        w = self.workload
        request = EngineRequest(
            str(i),
            int(w.prompt_tokens[i]),
            int(w.output_tokens[i]),
            None,
            w.prefix(i),
            arrival=float(w.arrival_s[i]),
            payload=i,
        )
        self.records.replica[i] = replica.index
        replica.add(request, now + self._request_latency_s(request.prompt_tokens), self)
        return True

    def _drain_gateway(self, loop: FleetLoop, now: float) -> None:
        """Requests held past the queue timeout fail then; the rest go out in order while a replica is ready."""
        for since, _, _, i in loop.gateway.expire(now, self.config.queue_timeout_s):
            failed_at = since + self.config.queue_timeout_s
            self.records.finish[i], self.records.done[i] = failed_at, True
            self._last_end = max(self._last_end, failed_at)
        if loop.gateway.held and any(r.routable for r in self.replicas):
            for _, _, _, i in loop.gateway.release().entries:
                self._route(i, now)

    # ---- what the clocks read -----------------------------------------------------------------
    def reading(self, loop: FleetLoop, now: float) -> Scrape:
        """Counters, and each ready replica's gauges with its busy share since the last scrape."""
        samples = []
        for r in self.replicas:
            if r.state in (State.READY, State.STOPPING):
                r.settle(now, self)
            if r.state is State.READY:
                busy = r.busy_s - self._busy_at_scrape.get(r.index, 0.0)
                span = max(1e-9, now - max(self._last_scrape, r.ready_at))
                sched = r.engine.scheduler
                samples.append(
                    ReplicaSample(
                        len(sched.running), len(sched.waiting), sched.kv.usage, min(100.0, 100.0 * busy / span)
                    )
                )
            self._busy_at_scrape[r.index] = r.busy_s
        self._last_scrape = now
        output_tokens = sum(r.tokens for r in self.replicas)
        return Scrape(
            now,
            0.0,
            self._completions,
            self._prompt_tokens,
            output_tokens,
            self._ttft_counts,
            self._itl_sum,
            self._itl_count,
            tuple(samples),
            0.0,
        )

    def in_flight(self, now: float) -> float:
        for r in self.replicas:  # requests finished since the last arrival leave the count, as a queue-proxy sees them
            if r.state in (State.READY, State.STOPPING):
                r.sync(now, self)
        return sum(r.outstanding for r in self.replicas)

    def gauges(self, now: float, since: float) -> Gauges:
        """The fleet now; GPU utilization over the replica-seconds served since the last row (replicas gone since
        included)."""
        kv = []
        for r in self.replicas:
            if r.state in (State.READY, State.STOPPING):
                r.settle(now, self)
                kv.append(r.engine.kv_usage if r.engine is not None else 0.0)  # gone in the settle: all blocks free
        running = sum(r.engine.num_running for r in self.replicas if r.state is not State.EXITED)
        waiting = sum(r.engine.num_waiting for r in self.replicas if r.state is not State.EXITED)
        gpu_busy = sum(r.busy_s - self._busy_at_timeline.get(r.index, 0.0) for r in self.replicas)
        served_s = sum(
            max(0.0, min(now, r.gone_at if r.gone_at is not None else now) - max(since, r.ready_at))
            for r in self.replicas
        )
        self._busy_at_timeline = {r.index: r.busy_s for r in self.replicas}
        return Gauges(
            running, waiting, float(np.mean(kv)) if kv else 0.0, 100.0 * gpu_busy / served_s if served_s > 0 else 0.0
        )

    def result(self, run: Run) -> SimResult:
        self.timeline, self.decisions = run.timeline, run.decisions
        end = max(self.workload.duration_s, self._last_end)
        for r in self.replicas:
            if r.gone_at is None:
                r.gone_at = end
        return summarize(self, end)
