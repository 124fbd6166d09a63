"""Fluid replicas read off load tables (one per length-mix period): each replica's state is the work it holds, in
requests of the mean mix, stepped through the throughput the engine showed at that load (ReplicaDynamics). For
ServeGen's days of 15 s steps, and request traces with `--fluid-model table`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from autoscaler.capacity.load_table import LoadTable, build_load_table
from autoscaler.policy.base import Policy
from autoscaler.sim.config import SimConfig
from autoscaler.sim.fluid.dynamics import ReplicaDynamics
from autoscaler.sim.fluid.fleet import Fleet, counts_from_workload, water_fill, work_from_workload
from autoscaler.sim.fluid.served import Served
from autoscaler.sim.fluid.steps import Counters, FluidRun, run_steps
from autoscaler.sim.fluid.summary import fluid_summary
from autoscaler.sim.gateway import Released
from autoscaler.sim.loop import Gauges
from autoscaler.sim.results import SimResult
from autoscaler.snapshot import ReplicaColumns
from loadgen.workloads.servegen import LengthSampler
from loadgen.workloads.workload import Workload


class FluidSimulator:
    """Same inputs and outputs as the request-level Simulator; records are per step instead of per request.
    Replicas hold work in requests of the mean mix (`work` per step; by default the request counts); requests
    are counted by `counts` (arrivals, failures, attainment), and those inside leave in proportion to their work.
    With `tables` and `period_of_step`, each step is read with its length mix's table (autoscaler.sim.mix_periods):
    replicas then hold work in requests of that period's mix."""

    def __init__(
        self,
        config: SimConfig,
        workload: Workload | None,
        policy: Policy,
        *,
        counts: np.ndarray | None = None,
        work: np.ndarray | None = None,
        lengths: LengthSampler | None = None,
        table: LoadTable | None = None,
        step_s: float = 1.0,
        name: str = "",
        tables: list[LoadTable] | None = None,
        period_of_step: np.ndarray | None = None,
        completion_lag_s: float | None = None,
    ):
        if workload is None and (counts is None or lengths is None):
            raise ValueError("fluid mode needs a workload, or per-step counts with a length sampler")
        self.config, self.policy, self.step_s = config, policy, step_s
        self.completion_lag_s = completion_lag_s  # None: measured per table (ReplicaDynamics); 0: completions at once
        self.counts = counts if counts is not None else counts_from_workload(workload, step_s)
        if lengths is None:
            lengths = LengthSampler.from_workload(workload)
        self.lengths = lengths
        if (tables is None) != (period_of_step is None):
            raise ValueError("fluid mode: tables per mix period need their period_of_step, and the other way round")
        self.tables, self.period_of_step = (
            (list(tables), np.asarray(period_of_step, dtype=np.int64)) if tables else (None, None)
        )
        self.table = table if table is not None or not tables else tables[0]
        self.name = name or (workload.name if workload is not None else "rates")
        if work is None and workload is not None and counts is None:
            work = work_from_workload(workload, step_s, self._table().prompt_token_weight)
        self.work = self.counts if work is None else np.asarray(work, dtype=np.float64)
        if len(self.work) != len(self.counts):
            raise ValueError(f"fluid mode: {len(self.work)} steps of work for {len(self.counts)} steps of counts")
        if self.period_of_step is not None:
            if len(self.period_of_step) != len(self.counts):
                raise ValueError(
                    f"fluid mode: {len(self.period_of_step)} steps of mix periods for {len(self.counts)} steps of counts"
                )
            if len(self.counts) and not 0 <= self.period_of_step.min() <= self.period_of_step.max() < len(self.tables):
                raise ValueError(f"fluid mode: mix periods must index the {len(self.tables)} tables given")

    def _table(self) -> LoadTable:
        if self.table is None:
            rng = np.random.default_rng(self.config.seed)
            prompts, outputs = self.lengths.sample(4000, rng)
            self.table = build_load_table(
                self.config.profile,
                prompts,
                outputs,
                self.config.slo_ttft_s,
                self.config.slo_itl_s,
                seed=self.config.seed,
            )
        return self.table

    def run(self) -> SimResult:
        tables = self.tables or [self._table()]
        model = TableReplicas(self.config, tables, self.period_of_step, self.work, self.step_s, self.completion_lag_s)
        return run_steps(self.config, self.policy, model, self.counts, self.step_s)


@dataclass(frozen=True)
class Routed:
    """One step's routing on load-table replicas, for the rest of the step."""

    done: float  # work the replicas completed
    incoming: float  # work routed, and its requests
    incoming_requests: float
    share: float | np.ndarray  # work per replica (one number where every replica is alike, all serving)
    same: bool  # every serving replica held the same before the step
    uniform: bool  # ...and all of them serve
    waits: np.ndarray  # seconds the step's arrivals wait behind a burst's prefills, per serving replica


class TableState:
    """Per-replica state of the table model beside the fleet's arrays, kept in step with them."""

    def __init__(self):
        self.lagged = np.zeros(0)  # the state their completions follow (ReplicaDynamics)
        self.burst = np.zeros(0)  # of the requests inside, the ones a burst left waiting for their prefill

    def add(self, count: int) -> None:
        self.lagged = np.append(self.lagged, np.zeros(count))
        self.burst = np.append(self.burst, np.zeros(count))

    def keep(self, keep: np.ndarray) -> None:
        self.lagged, self.burst = self.lagged[keep], self.burst[keep]


class TableReplicas:
    """The ReplicaModel of load-table replicas. Requests are counted by the loop (arrivals, failures, attainment);
    inside the fleet they are work, and leave in proportion to the work done. Arrivals beyond what a replica can
    prefill in a step wait behind each other (`burst`)."""

    scrape_at_step_start = False

    def __init__(
        self,
        config: SimConfig,
        tables: list[LoadTable],
        period_of_step: np.ndarray | None,
        work: np.ndarray,
        step_s: float,
        completion_lag_s: float | None,
    ):
        self.config, self.tables, self.work, self.step_s = config, tables, work, step_s
        self.models = [ReplicaDynamics(t, step_s, config.seed, completion_lag_s) for t in tables]
        self.period_of_step, self.period = period_of_step, 0
        self.model, self.table = self.models[0], tables[0]
        self.prompt_means = np.array([t.mean_prompt_tokens for t in tables])
        self.output_means = np.array([t.mean_output_tokens for t in tables])
        self.completed_by_period = np.zeros(len(tables))  # token counters count each period's requests at its mix
        per_token = np.array([max(t.mean_output_tokens - 1, 0.0) for t in tables])
        self.served = Served(self.models, config.slo_ttft_s, per_token, config.judge_step(step_s), period_of_step)
        self.attached = TableState()
        self.inside_requests = self.inside_work = 0.0  # in the whole fleet: requests leave as their work is done
        self.busy_since = 0.0  # start of the first step whose busy time the next scrape reads
        self._routed: Routed | None = None  # what serve() leaves for settle() and observe() in the same step
        self._now_n = np.zeros(0)  # requests inside each serving replica after the step
        self._gauges: tuple = ((), (), (), ())

    def arrival(self, step: int, t: float, requests: float) -> list:
        return [t, requests, float(self.work[step])]

    def _switch_period(self, step: int) -> None:
        """Where the mix changes, this period's table reads the step."""
        periods = self.period_of_step
        if periods is None or not len(periods):
            return
        period = int(periods[min(step, len(periods) - 1)])
        if period != self.period:
            self.period, self.model, self.table = period, self.models[period], self.tables[period]

    def serve(self, step: int, t: float, fleet: Fleet, released: Released | None) -> None:
        """Least outstanding requests routes the released work (water-filling), then every replica steps."""
        self._switch_period(step)
        serving = fleet.serving(t)
        whole = len(serving) == len(fleet)
        incoming = incoming_requests = 0.0
        if released is not None:
            incoming, incoming_requests = released.work, released.requests
            self.inside_requests += incoming_requests
            self.inside_work += incoming
        levels = fleet.n if whole else fleet.n[serving]
        same = len(levels) > 0 and levels.max() - levels.min() <= 1e-9 * max(1.0, levels.max())
        uniform = whole and same
        if uniform:  # the steady state: every replica alike, all of them serving
            share = incoming / len(serving)
            routed = share
        else:
            share = water_fill(levels, incoming)
            routed = np.zeros(len(fleet))
            routed[serving] = share
        inside = fleet.n + routed
        prefill_per_step = self.table.prefill_rps * self.step_s
        state = self.attached
        # arrivals spread over the step; those beyond what the engine can prefill in it wait behind each other
        waits = np.maximum(0.0, state.burst + (routed - prefill_per_step) / 2) / self.table.prefill_rps
        fleet.n, state.lagged = self.model.step(inside, state.lagged)
        state.burst = np.minimum(np.maximum(0.0, state.burst + routed - prefill_per_step), fleet.n)
        done = float(inside.sum() - fleet.n.sum())
        # the waits in serving order, which survives the drain's compaction
        self._routed = Routed(
            done, incoming, incoming_requests, share, same, uniform, waits if whole else waits[serving]
        )

    def settle(self, step: int, t: float, fleet: Fleet, drained: float, arrivals: float, expired: float):
        """Busy time accrues and the step's joiners are recorded; requests leave in proportion to the work done."""
        r = self._routed
        step_done = r.done + drained
        serving = fleet.serving(t)
        now_n = fleet.n if len(serving) == len(fleet) else fleet.n[serving]
        self._accrue_busy(fleet, serving, now_n, r.same)
        if r.incoming > 0:
            per_work = r.incoming_requests / r.incoming  # requests per unit of work in this step's arrivals
            if r.same and not r.waits.any():  # one row stands for all
                self.served.add(step, now_n[:1], np.array([r.incoming_requests]), r.waits[:1])
            else:
                shares = np.full(len(now_n), r.share) if r.uniform else r.share
                self.served.add(step, now_n, shares * per_work, r.waits)
        inside_requests, inside_work = self.inside_requests, self.inside_work
        done_requests = step_done * inside_requests / inside_work if inside_work > 0 else 0.0
        self.inside_requests = max(0.0, inside_requests - done_requests)
        self.inside_work = max(0.0, inside_work - step_done)
        self.completed_by_period[self.period] += done_requests
        self._now_n = now_n
        fullest = float(now_n.max()) if len(now_n) else 0.0
        return done_requests, (t, arrivals, r.incoming_requests, expired, len(serving), fullest)

    def _accrue_busy(self, fleet: Fleet, serving: np.ndarray, now_n: np.ndarray, same: bool) -> None:
        """GPU-busy time accrues on serving replicas, as the engine's does while they hold requests."""
        if not len(now_n):
            return
        busy = self.model.column("gpu_util", now_n[:1] if same else now_n) * self.step_s
        if len(serving) == len(fleet):
            fleet.busy += busy
        else:
            fleet.busy[serving] += busy

    def observe(self, fleet: Fleet, t: float, step_end: float, scrape_due: bool) -> float:
        """The gauges at the step's end (a scrape reads utilization as DCGM does: the busy share since the last
        scrape); returns the requests inside as the gateway counts them: sampled on serving replicas, the rest held."""
        if scrape_due:
            self.served.flush()
        now_n = self._now_n
        gauges = self.model.gauges(now_n, uniform=self._routed.same)
        if scrape_due:
            serving = fleet.serving(t)
            whole = len(serving) == len(fleet)
            # seconds served since then: from the first step a replica served in (ready_at <= its start)
            first = np.ceil((fleet.ready_at if whole else fleet.ready_at[serving]) / self.step_s) * self.step_s
            span = step_end - np.maximum(self.busy_since, first)
            mean_busy = (fleet.busy if whole else fleet.busy[serving]) / np.maximum(span, 1e-9)
            gauges = (*gauges[:3], np.where(span > 0, mean_busy, gauges[3]))
            fleet.busy[:], self.busy_since = 0.0, step_end
        self._gauges = gauges
        return float(gauges[0].sum() + gauges[1].sum() + fleet.n.sum() - now_n.sum())

    def samples(self, fleet: Fleet, t: float) -> ReplicaColumns:
        return ReplicaColumns(*self._gauges)  # hundreds of replicas every scrape, for days: rows only if read

    def counters(self, completions: float) -> Counters:
        served = self.served
        if self.period_of_step is None:
            prompt, output = completions * self.table.mean_prompt_tokens, completions * self.table.mean_output_tokens
        else:
            prompt = float(self.completed_by_period @ self.prompt_means)
            output = float(self.completed_by_period @ self.output_means)
        return Counters(prompt, output, served.ttft_counts, served.itl_sum, served.itl_count)

    def gauges(self, fleet: Fleet, t: float) -> Gauges:
        running, waiting, kv, util = self._gauges
        k = max(1, len(kv))
        return Gauges(float(running.sum()), float(waiting.sum()), float(kv.sum()) / k, float(util.sum()) / k)

    def result(self, run: FluidRun) -> SimResult:
        """Over [judge_from_s, end): arrivals, failures and attainment of the steps since, replicas paid since."""
        served, steps = self.served, run.steps
        met_per_step = served.met_per_step(len(steps))
        judged = slice(served.judge_step, None)
        arrived = float(sum(row[1] for row in steps[judged]))
        failed = float(sum(row[3] for row in steps[judged]))
        if served.period_of_step is None:
            out_tokens = (arrived - failed) * self.tables[0].mean_output_tokens
        else:  # each period's requests at its mix
            periods = served.periods_of(np.arange(len(steps)))[judged]
            out_tokens = float(np.dot([row[1] - row[3] for row in steps[judged]], self.output_means[periods]))
        frame = pd.DataFrame(run.timeline)
        met = float(met_per_step[judged].sum())
        hists = (served.ttft_fine, served.itl_fine)
        summary = fluid_summary(run, arrived, failed, met, *hists, out_tokens, frame)
        records = pd.DataFrame(steps, columns=["time_s", "arrivals", "routed", "failed", "ready", "queue_delay_s"])
        records.insert(3, "met", met_per_step)
        records.insert(6, "rate_per_replica", records["routed"] / self.step_s / records["ready"].clip(lower=1))
        fullest = records["queue_delay_s"].to_numpy()  # the fullest replica's state, read as its queue delay
        records["queue_delay_s"] = served.read(
            served.periods_of(np.arange(len(records))), lambda model, rows: model.queue_delay(fullest[rows])
        )
        return SimResult(summary, records, frame, run.decisions)
