"""Fluid mode on a request trace with cohort replicas (autoscaler.sim.fluid.cohort): the trace binned into steps of
arrival counts, prompt tokens and output lengths, served by the engine's step times in the fluid loop."""

from __future__ import annotations

import numpy as np
import pandas as pd

from autoscaler.policy.base import Policy
from autoscaler.sim.config import SimConfig
from autoscaler.sim.fluid.cohort import CohortReplicas, StepOutputs
from autoscaler.sim.fluid.fleet import Fleet, counts_from_workload, water_fill
from autoscaler.sim.fluid.steps import Counters, FluidRun, run_steps
from autoscaler.sim.fluid.summary import FINE, fine_histogram, fluid_summary, ttft_histogram
from autoscaler.sim.gateway import Released
from autoscaler.sim.loop import Gauges
from autoscaler.sim.results import SimResult
from autoscaler.snapshot import ReplicaColumns
from loadgen.workloads.workload import Workload
from serving.contracts.vllm_metrics import TTFT_BUCKETS


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
        model = CohortFleet(self.config, self.outputs, self.prompt_tokens, self.prompt_squares, self.step_s)
        return run_steps(self.config, self.policy, model, self.counts, self.step_s)


class CohortFleet:
    """The ReplicaModel of cohort replicas: each step's gateway entries are split over the serving replicas by
    least outstanding requests, every replica steps as the engine would, and the Prometheus counters follow."""

    scrape_at_step_start = True  # the clocks tick on whole seconds: a scrape reads the fleet as its step begins

    def __init__(
        self,
        config: SimConfig,
        outputs: StepOutputs,
        prompt_tokens: np.ndarray,
        prompt_squares: np.ndarray,
        step_s: float,
    ):
        self.step_s, self.outputs = step_s, outputs
        self.prompt_tokens, self.prompt_squares = prompt_tokens, prompt_squares
        self.replicas = CohortReplicas(config.profile, outputs, config.slo_ttft_s, config.slo_itl_s, step_s)
        self.attached = self.replicas
        self.judge_step = config.judge_step(step_s)
        self.prompt_total = self.output_total = self.itl_sum = self.itl_count = 0.0
        self.ttft_counts = np.zeros(len(TTFT_BUCKETS) + 1)
        self.ttft_fine, self.itl_fine = np.zeros(len(FINE) + 1), np.zeros(len(FINE) + 1)
        self.busy_since = 0.0
        self.busy_in_timeline = self.served_in_timeline = 0.0  # GPU-busy and serving replica-seconds since the last row
        self._served, self._routed = None, 0.0

    def arrival(self, step: int, t: float, requests: float) -> list:
        """[arrival time (mid-step), requests, prompt tokens, step, squared prompt tokens]."""
        return [
            t + 0.5 * self.step_s,
            requests,
            float(self.prompt_tokens[step]),
            step,
            float(self.prompt_squares[step]),
        ]

    def serve(self, step: int, t: float, fleet: Fleet, released: Released | None) -> None:
        replicas = self.replicas
        self._routed = 0.0
        if released is not None:  # least outstanding requests: the emptiest replicas first
            serving = fleet.serving(t)
            share = np.zeros(len(fleet))
            share[serving] = water_fill(replicas.outstanding()[serving], released.requests)
            split = share / released.requests
            for arrived_at, requests, tokens, arrival_step, squares in released.entries:
                replicas.enqueue(split * requests, split * tokens, arrived_at, arrival_step, split * squares)
            self._routed = released.requests
        served = replicas.step(t)
        fleet.n = replicas.outstanding()
        fleet.busy += served.busy_s
        self.busy_in_timeline += float(served.busy_s.sum())
        self._served = served

    def settle(self, step: int, t: float, fleet: Fleet, drained: float, arrivals: float, expired: float):
        served = self._served
        completions = float(served.completions.sum()) + drained
        self.prompt_total += float(served.first_prompt_tokens.sum())
        self.output_total += float(served.output_tokens.sum())
        self._histograms(step, served)
        serving = fleet.serving(t)
        self.served_in_timeline += np.count_nonzero(fleet.ready_at <= t) * self.step_s  # draining ones serve too
        waiting_since = self.replicas.oldest_arrival()
        queue_delay = max(0.0, t + self.step_s - waiting_since)
        met = float(served.met.sum())
        return completions, (t, arrivals, self._routed, met, expired, len(serving), queue_delay)

    def _histograms(self, step: int, served) -> None:
        """vLLM's TTFT buckets and ITL sums (what scrapes read), and the summary's fine histograms once judged."""
        if len(served.ttft):
            self.ttft_counts += ttft_histogram(served.ttft, served.ttft_weights)
        if step >= self.judge_step and len(served.ttft):
            self.ttft_fine += fine_histogram(served.ttft, served.ttft_weights)
        if step >= self.judge_step and len(served.itl):
            self.itl_fine += fine_histogram(served.itl, served.itl_weights)
        self.itl_sum += served.itl_sum
        self.itl_count += served.itl_count

    def observe(self, fleet: Fleet, t: float, step_end: float, scrape_due: bool) -> float:
        return float(self.replicas.running.sum() + self.replicas.waiting.sum())  # over the step, as the gauges

    def samples(self, fleet: Fleet, t: float) -> ReplicaColumns:
        """Each serving replica's gauges as the step before left them, and its busy share since the last scrape
        (utilization as DCGM reads it), counted from the first step it served in."""
        r, serving = self.replicas, fleet.serving(t)
        first = np.ceil(fleet.ready_at[serving] / self.step_s) * self.step_s
        span = t - np.maximum(self.busy_since, first)
        util = np.minimum(
            100.0, np.divide(100.0 * fleet.busy[serving], span, out=np.zeros(len(serving)), where=span > 0)
        )
        fleet.busy[:], self.busy_since = 0.0, t
        return ReplicaColumns(r.running[serving], r.waiting[serving], r.kv_usage[serving], util)

    def counters(self, completions: float) -> Counters:
        return Counters(self.prompt_total, self.output_total, self.ttft_counts, self.itl_sum, self.itl_count)

    def gauges(self, fleet: Fleet, t: float) -> Gauges:
        r, serving = self.replicas, fleet.serving(t)
        busy, served = self.busy_in_timeline, self.served_in_timeline
        self.busy_in_timeline = self.served_in_timeline = 0.0
        kv = float(r.kv_usage[serving].sum()) / max(1, len(serving))
        return Gauges(float(r.running.sum()), float(r.waiting.sum()), kv, 100.0 * busy / served if served else 0.0)

    def result(self, run: FluidRun) -> SimResult:
        dt = self.step_s
        records = pd.DataFrame(
            run.steps, columns=["time_s", "arrivals", "routed", "met", "failed", "ready", "queue_delay_s"]
        )
        records.insert(6, "rate_per_replica", records["routed"] / dt / records["ready"].clip(lower=1))
        judged = records.iloc[run.judge_step :]
        arrived, failed = float(judged["arrivals"].sum()), float(judged["failed"].sum())
        output_tokens = (arrived - failed) * self.outputs.mean_output
        hists = (self.ttft_fine, self.itl_fine)
        timeline = pd.DataFrame(run.timeline)
        summary = fluid_summary(run, arrived, failed, float(judged["met"].sum()), *hists, output_tokens, timeline)
        summary["fluid_model"] = "cohort"
        return SimResult(summary, records, pd.DataFrame(run.timeline), run.decisions)
