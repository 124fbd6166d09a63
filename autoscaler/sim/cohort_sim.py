"""Fluid-mode fleet simulation of a request trace with cohort replicas (autoscaler.sim.cohort): per-step arrival
counts and prompt tokens, the engine's step times, and the same gateway, scrape-lagged snapshots and policies as
the request-level mode."""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import pandas as pd

from autoscaler.policy.base import Policy
from autoscaler.sim.cohort import CohortReplicas, StepOutputs
from autoscaler.sim.fluid import (
    _FINE,
    _TTFT_BOUNDS,
    Fleet,
    _water_fill,
    control,
    counts_from_workload,
    fluid_summary,
)
from autoscaler.sim.observe import Observer, Scrape
from autoscaler.sim.results import SimResult
from autoscaler.sim.simulator import SimConfig
from autoscaler.snapshot import ReplicaColumns
from loadgen.workloads.workload import Workload
from serving.contracts.vllm_metrics import TTFT_BUCKETS

_EMPTY = 0.5  # a draining replica holding fewer requests than this has finished


class CohortSimulator:
    """Same inputs and outputs as the request-level Simulator; records are per step. The workload's requests are
    binned into steps of `step_s`: their count, prompt tokens and output lengths per step are what the replicas see."""

    def __init__(self, config: SimConfig, policy: Policy, workload: Workload, step_s: float = 1.0):
        self.config, self.policy, self.step_s, self.name = config, policy, step_s, workload.name
        self.counts = counts_from_workload(workload, step_s)
        self.prompt_tokens = counts_from_workload(workload, step_s, workload.prompt_tokens.astype(np.float64))
        self.prompt_squares = counts_from_workload(workload, step_s, workload.prompt_tokens.astype(np.float64) ** 2)
        self.outputs = StepOutputs(
            (workload.arrival_s // step_s).astype(np.int64), workload.output_tokens, len(self.counts)
        )

    def run(self) -> SimResult:
        cfg, policy, dt = self.config, self.policy, self.step_s
        replicas = CohortReplicas(cfg.profile, self.outputs, cfg.slo_ttft_s, cfg.slo_itl_s, dt)
        fleet = Fleet(cfg.initial_replicas, attached=replicas)
        observer = Observer(cfg.scrape_interval_s, cfg.rate_window_s)
        desired, state = cfg.initial_replicas, policy.initial_state()
        gateway: deque[list[float]] = (
            deque()
        )  # [arrival time, requests, prompt tokens, step, their squares] held while no replica is ready
        held = 0.0
        arrivals_total = completions_total = failed_total = prompt_total = output_total = 0.0
        ttft_counts = np.zeros(len(TTFT_BUCKETS) + 1)
        ttft_fine, itl_fine = np.zeros(len(_FINE) + 1), np.zeros(len(_FINE) + 1)
        itl_sum = itl_count = 0.0
        next_control, next_scrape = cfg.clock_phase_s + policy.interval_s, cfg.clock_phase_s
        next_timeline = cfg.timeline_interval_s
        judge_step = int(math.ceil(cfg.judge_from_s / dt))
        paid_before_judging, busy_since = 0.0, 0.0
        timeline, steps_out, decisions = [], [], []
        arrivals_at_timeline, last_timeline = 0.0, 0.0
        busy_in_timeline = served_in_timeline = 0.0  # GPU-busy and serving replica-seconds since the last row
        n_steps = len(self.counts)
        step_index, t = 0, 0.0
        while step_index < n_steps or held > 0 or fleet.n.sum() > _EMPTY:
            t = step_index * dt
            reading = None
            if next_scrape < t + dt:  # a scrape in this step reads the fleet as the step begins, as one at its instant
                serving = np.flatnonzero(~fleet.retired & (fleet.ready_at <= t))  # does in the request level: nothing
                first = np.ceil(fleet.ready_at[serving] / dt) * dt  # of the step's own arrivals yet
                span = t - np.maximum(
                    busy_since, first
                )  # utilization as DCGM reads it: the busy share since the last scrape
                util = np.minimum(
                    100.0, np.divide(100.0 * fleet.busy[serving], span, out=np.zeros(len(serving)), where=span > 0)
                )
                fleet.busy[:], busy_since = 0.0, t
                samples = ReplicaColumns(
                    replicas.running[serving], replicas.waiting[serving], replicas.kv_usage[serving], util
                )
                reading = (
                    arrivals_total,
                    completions_total,
                    prompt_total,
                    output_total,
                    ttft_counts.copy(),
                    itl_sum,
                    itl_count,
                    samples,
                    held,
                )
            if step_index == judge_step:
                paid_before_judging = fleet.paid_seconds(t)
            arrivals = float(self.counts[step_index]) if step_index < n_steps else 0.0
            if arrivals:
                gateway.append(
                    [
                        t + 0.5 * dt,
                        arrivals,
                        float(self.prompt_tokens[step_index]),
                        step_index,
                        float(self.prompt_squares[step_index]),
                    ]
                )
                held += arrivals
            expired = 0.0
            while gateway and t - gateway[0][0] > cfg.queue_timeout_s:
                expired += gateway.popleft()[1]
            held -= expired
            failed_total += expired
            serving = np.flatnonzero(~fleet.retired & (fleet.ready_at <= t))
            routed = 0.0
            if len(serving) and held > 0:  # least outstanding requests: the emptiest replicas first
                outstanding = replicas.outstanding()
                share = np.zeros(len(fleet))
                share[serving] = _water_fill(outstanding[serving], held)
                split = share / held
                for arrived_at, requests, tokens, step, squares in gateway:
                    replicas.enqueue(split * requests, split * tokens, arrived_at, step, split * squares)
                routed, held = held, 0.0
                gateway.clear()
            served = replicas.step(t)
            fleet.n = replicas.outstanding()
            fleet.busy += served.busy_s
            busy_in_timeline += float(served.busy_s.sum())
            completions = float(served.completions.sum())
            met = float(served.met.sum())
            if fleet.draining:
                drained = fleet.retired & (fleet.n < _EMPTY)
                if drained.any():  # retired replicas leave once their last requests are done
                    completions += float(fleet.n[drained].sum())
                    fleet.remove(drained, t + dt)
            arrivals_total += arrivals
            completions_total += completions
            prompt_total += float(served.first_prompt_tokens.sum())
            output_total += float(served.output_tokens.sum())
            if len(served.ttft):
                ttft_counts += np.bincount(
                    np.searchsorted(_TTFT_BOUNDS, served.ttft), weights=served.ttft_weights, minlength=len(ttft_counts)
                )
                if step_index >= judge_step:
                    ttft_fine += np.bincount(
                        np.searchsorted(_FINE, served.ttft), weights=served.ttft_weights, minlength=len(ttft_fine)
                    )
            if len(served.itl) and step_index >= judge_step:
                itl_fine += np.bincount(
                    np.searchsorted(_FINE, served.itl), weights=served.itl_weights, minlength=len(itl_fine)
                )
            itl_sum += served.itl_sum
            itl_count += served.itl_count
            serving = np.flatnonzero(~fleet.retired & (fleet.ready_at <= t))
            served_in_timeline += np.count_nonzero(fleet.ready_at <= t) * dt  # draining ones too, as they serve
            waiting_since = replicas.oldest_arrival()
            steps_out.append((t, arrivals, routed, met, expired, len(serving), max(0.0, t + dt - waiting_since)))
            step_end = t + dt
            in_flight = float(replicas.running.sum() + replicas.waiting.sum())  # over the step, as the gauges
            while next_scrape < step_end or next_control < step_end:  # in time order; at a tie the control reads
                if next_scrape < next_control:  # the scrape before, as in the request level
                    observer.record(Scrape(next_scrape, *reading))
                    next_scrape += cfg.scrape_interval_s
                    continue
                desired, state = control(
                    cfg, policy, observer, fleet, next_control, desired, state, in_flight + held, decisions
                )
                next_control += policy.interval_s
            if next_timeline <= step_end:  # the fleet may have changed at a control since
                serving = np.flatnonzero(~fleet.retired & (fleet.ready_at <= t))
            while next_timeline <= step_end:
                when = next_timeline
                ready, starting, draining = fleet.counts(when)
                came = arrivals_total - arrivals_at_timeline
                k = max(1, len(serving))
                timeline.append(
                    {
                        "time_s": when,
                        "desired": desired,
                        "ready": ready,
                        "starting": starting,
                        "draining": draining,
                        "arrivals": came,
                        "arrival_rate": came / max(1e-9, when - last_timeline),
                        "running": float(replicas.running.sum()),
                        "waiting": float(replicas.waiting.sum()),
                        "gateway_queue": held,
                        "kv_usage": float(replicas.kv_usage[serving].sum()) / k,
                        "gpu_util": 100.0 * busy_in_timeline / served_in_timeline if served_in_timeline else 0.0,
                    }
                )
                arrivals_at_timeline, last_timeline = arrivals_total, when
                busy_in_timeline = served_in_timeline = 0.0
                next_timeline += cfg.timeline_interval_s
            step_index += 1
        end = max(t + dt, n_steps * dt)
        records = pd.DataFrame(
            steps_out, columns=["time_s", "arrivals", "routed", "met", "failed", "ready", "queue_delay_s"]
        )
        records.insert(6, "rate_per_replica", records["routed"] / dt / records["ready"].clip(lower=1))
        judged = records.iloc[judge_step:]
        output_tokens = float(judged["arrivals"].sum() - judged["failed"].sum()) * self.outputs.mean_output
        summary = fluid_summary(
            cfg,
            self.policy.name,
            float(judged["arrivals"].sum()),
            float(judged["failed"].sum()),
            float(judged["met"].sum()),
            fleet.paid_seconds(end) - paid_before_judging,
            end,
            ttft_fine,
            itl_fine,
            output_tokens,
            pd.DataFrame(timeline),
            decisions,
        )
        summary["fluid_model"] = "cohort"
        return SimResult(summary, records, pd.DataFrame(timeline), decisions)
