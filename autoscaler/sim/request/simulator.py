"""Request-level fleet simulation in virtual time: trace in, policy in the loop, records, timeline and summary out."""

from __future__ import annotations

import heapq
import itertools
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from autoscaler.policy.base import Decision, Policy
from autoscaler.sim.config import SimConfig
from autoscaler.sim.harness import decide, timeline_row
from autoscaler.sim.observe import Observer, Scrape, ttft_bucket
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
    """One run of one policy over one workload. Deterministic: same inputs, same results."""

    def __init__(
        self, config: SimConfig, workload: Workload, policy: Policy, progress: Callable[[float], None] | None = None
    ):
        self.config, self.workload, self.policy = config, workload, policy
        self.progress = progress
        self.records = Records(workload.arrival_s, workload.prompt_tokens, workload.output_tokens)
        self.replicas: list[SimReplica] = []
        self.observer = Observer(config.scrape_interval_s, config.rate_window_s)
        self.gateway: deque[tuple[int, float]] = deque()
        self.timeline: list[dict] = []
        self.decisions: list[tuple[float, Decision]] = []
        self._events: list = []
        self._order = itertools.count()
        self._desired = config.initial_replicas
        self._arrivals_seen = 0
        self._completions = 0
        self._prompt_tokens = 0
        self._ttft_counts = np.zeros(len(TTFT_BUCKETS) + 1)
        self._itl_sum = 0.0
        self._itl_count = 0
        self._busy_at_scrape: dict[int, float] = {}
        self._last_scrape = 0.0
        self._rr = 0
        self._last_end = 0.0
        self._timeline_mark = (0.0, 0)  # (time, arrivals) at the last timeline row
        self._busy_at_timeline: dict[int, float] = {}
        self._next_progress = 0.0
        # the server's own cost before a request can be scheduled (HTTP, tokenization): it joins the engine later
        self._request_overhead_s = config.profile.efficiency.request_overhead_s

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

    # ---- fleet ----------------------------------------------------------------------------
    def _active(self) -> list[SimReplica]:
        return [r for r in self.replicas if r.state in (State.STARTING, State.READY)]

    def _counts(self) -> tuple[int, int, int]:
        ready = sum(1 for r in self.replicas if r.state is State.READY)
        starting = sum(1 for r in self.replicas if r.state is State.STARTING)
        draining = sum(1 for r in self.replicas if r.state is State.STOPPING)
        return ready, starting, draining

    def _start_replica(self, now: float) -> None:
        replica = SimReplica(len(self.replicas), self.config.profile, now, self.config.cold_start_s)
        self.replicas.append(replica)
        self._push(replica.ready_at, "ready", replica)

    def _actuate(self, desired: int, now: float) -> None:
        desired = max(0, min(desired, self.config.max_replicas))
        active = self._active()
        for _ in range(desired - len(active)):
            self._start_replica(now)
        surplus = len(active) - desired
        if surplus > 0:
            for r in self.replicas:
                r.sync(now, self)
            # retire replicas still starting first (newest first), then the least busy ready ones
            starting = sorted((r for r in active if r.state is State.STARTING), key=lambda r: -r.requested_at)
            ready = sorted((r for r in active if r.state is State.READY), key=lambda r: (r.outstanding, -r.index))
            for replica in (starting + ready)[:surplus]:
                replica.retire(now)
        self._desired = desired

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
        replica.add(request, now + self._request_overhead_s, self)
        return True

    def _fail(self, i: int, time: float) -> None:
        self.records.finish[i], self.records.done[i] = time, True
        self._last_end = max(self._last_end, time)

    def _drain_gateway(self, now: float) -> None:
        while self.gateway:
            i, since = self.gateway[0]
            if now - since > self.config.queue_timeout_s:
                self.gateway.popleft()
                self._fail(i, since + self.config.queue_timeout_s)
                continue
            if not self._route(i, now):
                return
            self.gateway.popleft()

    # ---- events ---------------------------------------------------------------------------
    def _push(self, time: float, kind: str, payload=None) -> None:
        heapq.heappush(self._events, (time, next(self._order), kind, payload))

    def _scrape(self, now: float) -> None:
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
        self.observer.record(
            Scrape(
                now,
                self._arrivals_seen,
                self._completions,
                self._prompt_tokens,
                sum(r.tokens for r in self.replicas),
                self._ttft_counts.copy(),
                self._itl_sum,
                self._itl_count,
                tuple(samples),
                len(self.gateway),
            )
        )

    def _control(self, now: float, state):
        for r in self.replicas:  # requests finished since the last arrival leave the count, as a queue-proxy sees them
            if r.state in (State.READY, State.STOPPING):
                r.sync(now, self)
        in_flight = sum(r.outstanding for r in self.replicas) + len(self.gateway)
        decision, state = decide(
            self.policy, self.observer, now, self._desired, self._counts(), in_flight, state, self.decisions
        )
        if decision.desired != self._desired or decision.desired != len(self._active()):
            self._actuate(decision.desired, now)
        return state

    def _timeline_row(self, now: float) -> None:
        """The fleet now; GPU utilization over the replica-seconds served since the last row (replicas gone since
        included)."""
        since, arrivals_before = self._timeline_mark
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
        row = timeline_row(
            now,
            self._desired,
            self._counts(),
            self._arrivals_seen - arrivals_before,
            since,
            running,
            waiting,
            len(self.gateway),
            float(np.mean(kv)) if kv else 0.0,
            100.0 * gpu_busy / served_s if served_s > 0 else 0.0,
        )
        self._busy_at_timeline = {r.index: r.busy_s for r in self.replicas}
        self.timeline.append(row)
        self._timeline_mark = (now, self._arrivals_seen)

    def _event(self, now: float, kind: str, payload, state):
        """A replica becomes ready, or a clock ticks (each tick schedules the next); returns the policy's state."""
        cfg = self.config
        if kind == "ready":
            if payload.state is State.STARTING:
                payload.state = State.READY
                payload.clock = now
            self._drain_gateway(now)
        elif kind == "scrape":
            self._scrape(now)
            self._push(now + cfg.scrape_interval_s, "scrape")
        elif kind == "control":
            state = self._control(now, state)
            self._drain_gateway(now)
            self._push(now + self.policy.interval_s, "control")
        elif kind == "timeline":
            self._timeline_row(now)
            self._push(now + cfg.timeline_interval_s, "timeline")
            self._report_progress(now)
        return state

    def _report_progress(self, now: float) -> None:
        duration = self.workload.duration_s
        if self.progress and now >= self._next_progress:
            self.progress(min(1.0, now / max(1e-9, duration)))
            self._next_progress = now + max(60.0, duration / 50)

    def _arrive(self, i: int, now: float) -> None:
        self._arrivals_seen += 1
        if self.gateway or not self._route(i, now):
            self.gateway.append((i, now))
            self._drain_gateway(now)

    def run(self) -> SimResult:
        cfg, w = self.config, self.workload
        for _ in range(cfg.initial_replicas):  # already serving when the trace starts, billed from t=0
            replica = SimReplica(len(self.replicas), cfg.profile, 0.0, 0.0)
            replica.state = State.READY
            self.replicas.append(replica)
        state = self.policy.initial_state()
        self._push(cfg.clock_phase_s, "scrape")
        self._push(cfg.clock_phase_s + self.policy.interval_s, "control")
        self._push(cfg.timeline_interval_s, "timeline")
        n, i, arrivals = len(w), 0, w.arrival_s
        while i < n or self.gateway or any(r.outstanding for r in self.replicas):
            next_arrival = arrivals[i] if i < n else math.inf
            if self._events and self._events[0][0] < next_arrival:
                now, _, kind, payload = heapq.heappop(self._events)
                state = self._event(now, kind, payload, state)
            else:
                self._arrive(i, next_arrival)
                i += 1
        end = max(w.duration_s, self._last_end)
        for r in self.replicas:
            if r.gone_at is None:
                r.gone_at = end
        return summarize(self, end)
