"""Fluid-mode fleet simulation for days of traffic: per-step arrival counts, engine-derived per-replica behaviour
(a LoadTable measured on `serving/engine`), a FIFO backlog beyond saturation, and the same scrape-lagged
snapshots and policies as the request-level mode."""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import pandas as pd

from autoscaler.capacity.load_table import LoadTable, build_load_table
from autoscaler.policy.base import Policy
from autoscaler.sim.fluid_replica import ReplicaDynamics
from autoscaler.sim.observe import Observer, Scrape
from autoscaler.sim.results import SimResult, count_scale_actions
from autoscaler.sim.simulator import SimConfig
from autoscaler.snapshot import ReplicaColumns
from loadgen.workloads.servegen import LengthSampler
from loadgen.workloads.workload import Workload
from serving.contracts.vllm_metrics import TTFT_BUCKETS


def counts_from_workload(workload: Workload, step_s: float, weights: np.ndarray | None = None) -> np.ndarray:
    """Arrivals per step (each counted by its weight, or as one)."""
    bins = int(math.ceil(max(workload.duration_s, step_s) / step_s)) + 1
    return np.bincount((workload.arrival_s // step_s).astype(np.int64), weights=weights, minlength=bins).astype(
        np.float64
    )


def work_from_workload(
    workload: Workload,
    step_s: float,
    prompt_token_weight: float | np.ndarray,
    period_of_request: np.ndarray | None = None,
) -> np.ndarray:
    """Arrivals per step in requests of the mean mix: each request counts as its (output + weight x prompt) tokens
    over the mean of the trace, or of its mix period (`period_of_request`, with a weight per period), so minutes of
    short answers or long prompts load the replicas as they would."""
    prompts, outputs = workload.prompt_tokens.astype(np.float64), workload.output_tokens.astype(np.float64)
    if period_of_request is None:
        size = outputs + prompt_token_weight * prompts
        return counts_from_workload(workload, step_s, size / size.mean() if len(size) and size.mean() > 0 else None)
    size = outputs + np.asarray(prompt_token_weight, dtype=np.float64)[period_of_request] * prompts
    mean = (np.bincount(period_of_request, weights=size) / np.maximum(np.bincount(period_of_request), 1))[
        period_of_request
    ]
    return counts_from_workload(workload, step_s, np.divide(size, mean, out=np.ones_like(size), where=mean > 0))


class Fleet:
    """Live replicas as arrays (one slot each, compacted when some are gone); billing of the departed is kept.
    `attached` (with add(count) and keep(mask)) holds more per-replica state, kept in step with the arrays."""

    def __init__(self, initial: int, attached=None):
        self.attached = attached
        if attached is not None:
            attached.add(initial)
        self.requested = np.zeros(initial)
        self.ready_at = np.zeros(initial)
        self.retired = np.zeros(initial, dtype=bool)
        self.n = np.zeros(initial)  # requests inside each replica
        self.lagged = np.zeros(initial)  # the state their completions follow (ReplicaDynamics)
        self.burst = np.zeros(initial)  # of those, the ones a burst left waiting for their prefill (see FluidSimulator)
        self.busy = np.zeros(initial)  # GPU-busy percent-seconds served since the last scrape (read as their mean)
        self.order = np.arange(initial, dtype=np.int64)  # creation order, for ties
        self.created = initial
        self.paid_s = 0.0  # replica-seconds of replicas already gone
        self.version = 0  # bumped whenever replicas come, go or retire
        self.next_ready = math.inf  # when the next starting replica becomes ready (kept by the simulator)
        self.draining = 0  # retired replicas still holding requests
        self._counts: tuple[int, float, float, tuple[int, int, int]] = (-1, 0.0, 0.0, (0, 0, 0))  # see counts()

    def __len__(self) -> int:
        return len(self.n)

    def add(self, count: int, now: float, cold_start_s: float) -> None:
        self.requested = np.append(self.requested, np.full(count, now))
        self.ready_at = np.append(self.ready_at, np.full(count, now + cold_start_s))
        self.retired = np.append(self.retired, np.zeros(count, dtype=bool))
        self.n = np.append(self.n, np.zeros(count))
        self.lagged = np.append(self.lagged, np.zeros(count))
        self.burst = np.append(self.burst, np.zeros(count))
        self.busy = np.append(self.busy, np.zeros(count))
        self.order = np.append(self.order, np.arange(self.created, self.created + count))
        self.created += count
        self.version += 1
        if self.attached is not None:
            self.attached.add(count)

    def remove(self, gone: np.ndarray, when: float) -> None:
        """Replicas in the mask `gone` stop costing at `when` and leave the arrays."""
        self.paid_s += float(np.sum(when - self.requested[gone]))
        keep = ~gone
        self.requested, self.ready_at, self.retired = self.requested[keep], self.ready_at[keep], self.retired[keep]
        self.n, self.lagged, self.order, self.burst = (
            self.n[keep],
            self.lagged[keep],
            self.order[keep],
            self.burst[keep],
        )
        self.busy = self.busy[keep]
        self.draining = int(np.count_nonzero(self.retired))
        self.version += 1
        if self.attached is not None:
            self.attached.keep(keep)

    def scale_to(self, target: int, now: float, cold_start_s: float) -> None:
        """Start replicas, or retire starting ones first (newest first), then the ready ones holding least."""
        if target == len(self) - self.draining:  # as many active (starting or ready) as wanted
            return
        active = np.flatnonzero(~self.retired)
        if target > len(active):
            self.add(target - len(active), now, cold_start_s)
            return
        surplus = len(active) - target
        if surplus <= 0:
            return
        starting = self.ready_at[active] > now
        pick = active[np.lexsort((-self.order[active], self.n[active], ~starting))][:surplus]
        self.retired[pick] = True
        self.draining = int(np.count_nonzero(self.retired))
        self.version += 1
        idle = np.zeros(len(self), dtype=bool)
        idle[pick] = (self.ready_at[pick] > now) | (self.n[pick] <= 0.0)
        if idle.any():
            self.remove(idle, now)

    def counts(self, when: float) -> tuple[int, int, int]:
        """(ready, starting, draining). Asked every control tick (each 2 s for the KPA, for days): the answer holds
        until the fleet changes or the next starting replica becomes ready, so it is kept until then."""
        version, since, until, answer = self._counts
        if version == self.version and since <= when < until:
            return answer
        ready_at = self.ready_at[~self.retired]
        is_ready = ready_at <= when
        ready = int(np.count_nonzero(is_ready))
        answer = (ready, len(ready_at) - ready, len(self) - len(ready_at))
        self._counts = (
            self.version,
            float(ready_at[is_ready].max(initial=-math.inf)),
            float(ready_at[~is_ready].min(initial=math.inf)),
            answer,
        )
        return answer

    def paid_seconds(self, end: float) -> float:
        return self.paid_s + float(np.sum(end - self.requested))


class _Served:
    """What was served in which replica state, step by step. Scrapes need the TTFT histogram in Prometheus' buckets
    and the ITL sums at once; the summary's fine histograms and per-step SLO attainment are folded in batches."""

    def __init__(
        self,
        models: list[ReplicaDynamics],
        slo_ttft_s: float,
        per_token: np.ndarray,
        judge_step: int = 0,
        period_of_step: np.ndarray | None = None,
    ):
        self.models, self.slo_ttft_s, self.per_token = models, slo_ttft_s, per_token
        self.period_of_step = period_of_step  # which model a step's rows are read with (None: the one model)
        self.judge_step = judge_step  # the summary's histograms count from this step on (the policy's view: all)
        self.pending: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []
        self.unfolded: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self.unfolded_rows = 0
        self.ttft_counts = np.zeros(len(TTFT_BUCKETS) + 1)
        self.ttft_fine = np.zeros(len(_FINE) + 1)
        self.itl_fine = np.zeros(len(_FINE) + 1)
        self.itl_sum = self.itl_count = 0.0
        self.met_steps: list[np.ndarray] = []
        self.met_values: list[np.ndarray] = []

    def add(self, step: int, states: np.ndarray, requests: np.ndarray, waits: np.ndarray) -> None:
        """`requests` joined replicas in `states` during `step`, waiting `waits` seconds behind a burst's prefills."""
        if len(states) > 4:  # a fleet of hundreds sits in a few states (least outstanding requests levels them)
            states, requests, waits = _merge_alike(states, requests, waits)
        self.pending.append((step, states, requests, waits))

    def flush(self) -> None:
        """What a scrape reads: the pending rows into the Prometheus TTFT buckets and the ITL sums."""
        if not self.pending:
            return
        if len(self.pending) == 1:
            step, states, weights, waits = self.pending[0]
            steps = np.full(len(states), step)
        else:
            steps = np.concatenate([np.full(len(states), i) for i, states, _, _ in self.pending])
            states = np.concatenate([states for _, states, _, _ in self.pending])
            weights = np.concatenate([requests for _, _, requests, _ in self.pending])
            waits = np.concatenate([waits for _, _, _, waits in self.pending])
        self.pending = []
        periods = self.periods_of(steps)
        points = self.read(periods, lambda model, rows: model.ttft_points(states[rows], waits[rows]))
        quantiles = points.shape[1]
        per_point = np.repeat(weights / quantiles, quantiles)
        self.ttft_counts += np.bincount(
            np.searchsorted(_TTFT_BOUNDS, points.ravel()), weights=per_point, minlength=len(self.ttft_counts)
        )
        itl = self.read(periods, lambda model, rows: model.column("itl_mean", states[rows]))
        if periods is None:
            self.itl_sum += float(np.dot(weights, itl)) * float(self.per_token[0])
            self.itl_count += float(weights.sum()) * float(self.per_token[0])
        else:  # tokens per request differ by period
            tokens = weights * self.per_token[periods]
            self.itl_sum += float(np.dot(tokens, itl))
            self.itl_count += float(tokens.sum())
        self.unfolded.append((steps, states, weights, points, itl))
        self.unfolded_rows += len(steps)
        if self.unfolded_rows >= _FOLD_ROWS:
            self._fold()

    def _fold(self) -> None:
        """Rows flushed since the last fold into the fine histograms (from judge_step on) and per-step attainment."""
        if not self.unfolded:
            return
        steps, states, weights, points, itl = (np.concatenate(column) for column in zip(*self.unfolded))
        self.unfolded, self.unfolded_rows = [], 0
        quantiles = points.shape[1]
        judged = steps >= self.judge_step
        points_judged, itl_judged, weights_judged = points[judged], itl[judged], weights[judged]
        self.ttft_fine += np.bincount(
            np.searchsorted(_FINE, points_judged.ravel()),
            weights=np.repeat(weights_judged / quantiles, quantiles),
            minlength=len(self.ttft_fine),
        )
        self.itl_fine += np.bincount(
            np.searchsorted(_FINE, itl_judged), weights=weights_judged, minlength=len(self.itl_fine)
        )
        attainment = self.read(self.periods_of(steps), lambda model, rows: model.column("attainment", states[rows]))
        ok = np.minimum(attainment, np.count_nonzero(points <= self.slo_ttft_s, axis=1) / quantiles)
        self.met_steps.append(steps)
        self.met_values.append(weights * ok)

    def periods_of(self, steps: np.ndarray) -> np.ndarray | None:
        if self.period_of_step is None:
            return None
        return self.period_of_step[np.minimum(steps, len(self.period_of_step) - 1)]

    def read(self, periods: np.ndarray | None, read) -> np.ndarray:
        """`read(model, rows)` for every row, each with its period's model."""
        if periods is None:
            return read(self.models[0], slice(None))
        out = None
        for period in np.unique(periods):
            rows = periods == period
            part = read(self.models[period], rows)
            if out is None:
                out = np.empty((len(periods), *np.shape(part)[1:]))
            out[rows] = part
        return out

    def met_per_step(self, steps: int) -> np.ndarray:
        self.flush()
        self._fold()
        if not self.met_steps:
            return np.zeros(steps)
        return np.bincount(np.concatenate(self.met_steps), weights=np.concatenate(self.met_values), minlength=steps)


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
        cfg, policy, dt = self.config, self.policy, self.step_s
        table = self._table()
        tables = self.tables or [table]
        models = [ReplicaDynamics(t, dt, cfg.seed, self.completion_lag_s) for t in tables]
        model, period, period_of_step = models[0], 0, self.period_of_step
        per_token = np.array([max(t.mean_output_tokens - 1, 0.0) for t in tables])
        prompt_means = np.array([t.mean_prompt_tokens for t in tables])
        output_means = np.array([t.mean_output_tokens for t in tables])
        completed_by_period = np.zeros(len(tables))  # the token counters count each period's requests at its mix
        prefill_per_step = table.prefill_rps * dt
        observer = Observer(cfg.scrape_interval_s, cfg.rate_window_s)
        fleet = Fleet(cfg.initial_replicas)
        desired = cfg.initial_replicas
        state = policy.initial_state()
        gateway: deque[list[float]] = deque()  # [arrival time, requests, work] held while no replica is ready
        held = held_work = 0.0
        inside_requests = inside_work = 0.0  # in the whole fleet: requests leave in proportion to the work done
        arrivals_total = completions_total = failed_total = 0.0
        next_control, next_scrape = cfg.clock_phase_s + policy.interval_s, cfg.clock_phase_s
        next_timeline = cfg.timeline_interval_s
        judge_step = int(math.ceil(cfg.judge_from_s / dt))
        served = _Served(models, cfg.slo_ttft_s, per_token, judge_step, period_of_step)
        paid_before_judging = 0.0
        busy_since = 0.0  # start of the first step whose busy time the next scrape reads
        timeline, steps_out, decisions = [], [], []
        samples: ReplicaColumns = ReplicaColumns((), (), (), ())
        arrivals_at_timeline, last_timeline = 0.0, 0.0
        serving, serving_key = np.zeros(0, dtype=np.int64), None
        n_steps = len(self.counts)
        step_index, t = 0, 0.0
        while step_index < n_steps or held > 0 or fleet.n.sum() > _EMPTY:
            t = step_index * dt
            if (
                period_of_step is not None
                and len(period_of_step)
                and period_of_step[min(step_index, n_steps - 1)] != period
            ):
                period = int(period_of_step[min(step_index, n_steps - 1)])  # the mix changes: read this period's table
                model, table = models[period], tables[period]
                prefill_per_step = table.prefill_rps * dt
            if step_index == judge_step:
                paid_before_judging = fleet.paid_seconds(t)
            arrivals = float(self.counts[step_index]) if step_index < n_steps else 0.0
            if arrivals:
                arriving_work = float(self.work[step_index])
                gateway.append([t, arrivals, arriving_work])
                held += arrivals
                held_work += arriving_work
            expired = 0.0
            while gateway and t - gateway[0][0] > cfg.queue_timeout_s:
                _, gone, gone_work = gateway.popleft()
                expired += gone
                held_work -= gone_work
            held -= expired
            failed_total += expired
            if serving_key != (fleet.version, t >= fleet.next_ready):  # the serving set changes only at these moments
                serving = np.flatnonzero(~fleet.retired & (fleet.ready_at <= t))
                fleet.next_ready = float(fleet.ready_at[fleet.ready_at > t].min(initial=math.inf))
                serving_key = (fleet.version, t >= fleet.next_ready)
                whole = len(serving) == len(fleet)
            incoming = incoming_requests = 0.0
            if len(serving) and held > 0:
                incoming, incoming_requests, held, held_work = held_work, held, 0.0, 0.0
                gateway.clear()
                inside_requests += incoming_requests
                inside_work += incoming
            levels = fleet.n if whole else fleet.n[serving]
            same = len(levels) > 0 and levels.max() - levels.min() <= 1e-9 * max(1.0, levels.max())
            uniform = whole and same
            if uniform:  # the steady state: every replica alike, all of them serving
                routed = incoming / len(serving)
                inside = fleet.n + routed
            else:  # least outstanding requests: new work fills the emptiest replicas first (water-filling)
                share = _water_fill(levels, incoming)
                routed = np.zeros(len(fleet))
                routed[serving] = share
                inside = fleet.n + routed
            # arrivals spread over the step; those beyond what the engine can prefill in it wait behind each other
            waits = np.maximum(0.0, fleet.burst + (routed - prefill_per_step) / 2) / table.prefill_rps
            joined_waits = waits if whole else waits[serving]  # in serving order, which survives compaction below
            fleet.n, fleet.lagged = model.step(inside, fleet.lagged)
            fleet.burst = np.minimum(np.maximum(0.0, fleet.burst + routed - prefill_per_step), fleet.n)
            step_done = float(inside.sum() - fleet.n.sum())
            if fleet.draining:
                drained = fleet.retired & (fleet.n < _EMPTY)
                if drained.any():  # retired replicas leave once their last requests are done
                    step_done += float(fleet.n[drained].sum())
                    fleet.remove(drained, t + dt)
                    serving = np.flatnonzero(~fleet.retired & (fleet.ready_at <= t))
                    serving_key = (fleet.version, t >= fleet.next_ready)
                    whole = len(serving) == len(fleet)
            now_n = fleet.n if whole else fleet.n[serving]
            if len(now_n):  # GPU-busy time accrues on serving replicas, as the engine's does while they hold requests
                busy = model.column("gpu_util", now_n[:1] if same else now_n) * dt
                if whole:
                    fleet.busy += busy
                else:
                    fleet.busy[serving] += busy
            if incoming > 0:
                per_work = incoming_requests / incoming  # requests per unit of work in this step's arrivals
                if same and not joined_waits.any():  # one row stands for all
                    served.add(step_index, now_n[:1], np.array([incoming_requests]), joined_waits[:1])
                else:
                    served.add(
                        step_index, now_n, (np.full(len(now_n), routed) if uniform else share) * per_work, joined_waits
                    )
            done_requests = step_done * inside_requests / inside_work if inside_work > 0 else 0.0
            inside_requests, inside_work = max(0.0, inside_requests - done_requests), max(0.0, inside_work - step_done)
            arrivals_total += arrivals
            completions_total += done_requests
            completed_by_period[period] += done_requests
            steps_out.append(
                (t, arrivals, incoming_requests, expired, len(serving), float(now_n.max()) if len(now_n) else 0.0)
            )
            step_end = t + dt
            if next_scrape < step_end:
                served.flush()
            if next_scrape < step_end or next_control < step_end or next_timeline <= step_end:
                gauges = model.gauges(now_n, uniform=same)
                if next_scrape < step_end:  # utilization as DCGM reads it: the busy share since the last scrape
                    # seconds served since then: from the first step a replica served in (ready_at <= its start)
                    first = np.ceil((fleet.ready_at if whole else fleet.ready_at[serving]) / dt) * dt
                    span = step_end - np.maximum(busy_since, first)
                    mean_busy = (fleet.busy if whole else fleet.busy[serving]) / np.maximum(span, 1e-9)
                    gauges = (*gauges[:3], np.where(span > 0, mean_busy, gauges[3]))
                    fleet.busy[:], busy_since = 0.0, step_end
                samples = ReplicaColumns(*gauges)  # hundreds of replicas every scrape, for days: rows only if read
                # requests inside, as the gateway counts them at this instant: sampled on serving replicas, the rest as held
                in_flight = float(gauges[0].sum() + gauges[1].sum() + fleet.n.sum() - now_n.sum())
            while next_scrape < step_end or next_control < step_end:  # in time order; at a tie the control reads
                if next_scrape < next_control:  # the scrape before, as in the request level
                    if period_of_step is None:
                        prompt_tokens, output_tokens = (
                            completions_total * table.mean_prompt_tokens,
                            completions_total * table.mean_output_tokens,
                        )
                    else:
                        prompt_tokens, output_tokens = (
                            float(completed_by_period @ prompt_means),
                            float(completed_by_period @ output_means),
                        )
                    observer.record(
                        Scrape(
                            next_scrape,
                            arrivals_total,
                            completions_total,
                            prompt_tokens,
                            output_tokens,
                            served.ttft_counts.copy(),
                            served.itl_sum,
                            served.itl_count,
                            samples,
                            held,
                        )
                    )
                    next_scrape += cfg.scrape_interval_s
                    continue
                desired, state = control(
                    cfg, policy, observer, fleet, next_control, desired, state, in_flight + held, decisions
                )
                next_control += policy.interval_s
            while next_timeline <= step_end:
                when = next_timeline
                ready, starting, draining = fleet.counts(when)
                running, waiting, kv, util = gauges
                came = arrivals_total - arrivals_at_timeline
                k = max(1, len(kv))
                timeline.append(
                    {
                        "time_s": when,
                        "desired": desired,
                        "ready": ready,
                        "starting": starting,
                        "draining": draining,
                        "arrivals": came,
                        "arrival_rate": came / max(1e-9, when - last_timeline),
                        "running": float(running.sum()),
                        "waiting": float(waiting.sum()),
                        "gateway_queue": held,
                        "kv_usage": float(kv.sum()) / k,
                        "gpu_util": float(util.sum()) / k,
                    }
                )
                arrivals_at_timeline, last_timeline = arrivals_total, when
                next_timeline += cfg.timeline_interval_s
            step_index += 1
        end = max(t + dt, n_steps * dt)
        return self._summary(served, fleet.paid_seconds(end) - paid_before_judging, end, timeline, steps_out, decisions)

    def _summary(self, served: _Served, paid_s, end, timeline, steps, decisions) -> SimResult:
        """Over [judge_from_s, end): arrivals, failures and attainment of the steps since, replicas paid since."""
        cfg = self.config
        met_per_step = served.met_per_step(len(steps))
        judged = slice(served.judge_step, None)
        arrived = float(sum(row[1] for row in steps[judged]))
        failed = float(sum(row[3] for row in steps[judged]))
        met = float(met_per_step[judged].sum())
        if served.period_of_step is None:
            out_tokens = (arrived - failed) * self._table().mean_output_tokens
        else:  # each period's requests at its mix
            periods = served.periods_of(np.arange(len(steps)))[judged]
            output_means = np.array([t.mean_output_tokens for t in self.tables])
            out_tokens = float(np.dot([row[1] - row[3] for row in steps[judged]], output_means[periods]))
        frame = pd.DataFrame(timeline)
        summary = fluid_summary(
            cfg,
            self.policy.name,
            arrived,
            failed,
            met,
            paid_s,
            end,
            served.ttft_fine,
            served.itl_fine,
            out_tokens,
            frame,
            decisions,
        )
        records = pd.DataFrame(steps, columns=["time_s", "arrivals", "routed", "failed", "ready", "queue_delay_s"])
        records.insert(3, "met", met_per_step)
        records.insert(6, "rate_per_replica", records["routed"] / self.step_s / records["ready"].clip(lower=1))
        fullest = records["queue_delay_s"].to_numpy()  # the fullest replica's state, read as its queue delay
        records["queue_delay_s"] = served.read(
            served.periods_of(np.arange(len(records))), lambda model, rows: model.queue_delay(fullest[rows])
        )
        return SimResult(summary, records, frame, decisions)


def control(
    cfg: SimConfig,
    policy: Policy,
    observer: Observer,
    fleet: Fleet,
    now: float,
    desired: int,
    state,
    in_flight: float,
    decisions: list,
) -> tuple[int, object]:
    """One control tick: the policy reads the snapshot Prometheus would give it now; the fleet is scaled to its
    answer (within max_replicas). Returns the replicas wanted and the policy's state."""
    snapshot = observer.snapshot(now, desired, *fleet.counts(now), extra={"in_flight_now": in_flight})
    decision, state = policy.decide(snapshot, state)
    decisions.append((now, decision))
    desired = max(0, min(decision.desired, cfg.max_replicas))
    fleet.scale_to(desired, now, cfg.cold_start_s)
    return desired, state


def fluid_summary(
    cfg: SimConfig,
    policy: str,
    arrived: float,
    failed: float,
    met: float,
    paid_s: float,
    end: float,
    ttft_hist: np.ndarray,
    itl_hist: np.ndarray,
    out_tokens: float,
    frame: pd.DataFrame,
    decisions,
) -> dict:
    """The summary of a fluid run over [judge_from_s, end): its counts, replica-seconds paid and fine histograms."""
    since = min(cfg.judge_from_s, end)
    span = max(end - since, 1e-9)
    gpu_hours = paid_s * cfg.profile.gpus / 3600.0
    cost = gpu_hours * cfg.price_per_gpu_hour
    window = frame[frame["time_s"] >= since] if len(frame) and since > 0 else frame
    return {
        "policy": policy,
        "requests": int(round(arrived)),
        "failed": int(round(failed)),
        "slo_attainment": met / arrived if arrived else float("nan"),
        "goodput_rps": met / span,
        "ttft_p50_s": _hist_quantile(ttft_hist, 0.50),
        "ttft_p95_s": _hist_quantile(ttft_hist, 0.95),
        "ttft_p99_s": _hist_quantile(ttft_hist, 0.99),
        "itl_p95_s": _hist_quantile(itl_hist, 0.95),
        "gpu_hours": gpu_hours,
        "cost_usd": cost,
        "cost_per_million_output_tokens": cost / (out_tokens / 1e6) if out_tokens else float("nan"),
        "scale_actions": count_scale_actions(cfg.initial_replicas, decisions, since),
        "max_replicas": int((window["ready"] + window["starting"] + window["draining"]).max())
        if len(window)
        else cfg.initial_replicas,
        "mean_replicas": gpu_hours * 3600.0 / span / cfg.profile.gpus,
        "duration_s": span,
        "output_tokens": out_tokens,
        "slo_ttft_s": cfg.slo_ttft_s,
        "slo_itl_s": cfg.slo_itl_s,
        "cold_start_s": cfg.cold_start_s,
        "profile": cfg.profile.name,
        "mode": "fluid",
        "judged_from_s": since,
    }


def _merge_alike(
    states: np.ndarray, requests: np.ndarray, waits: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One row per distinct (state, wait), holding the requests of all replicas in it."""
    order = np.lexsort((waits, states))
    states, waits = states[order], waits[order]
    first = np.empty(len(states), dtype=bool)
    first[0] = True
    first[1:] = (states[1:] != states[:-1]) | (waits[1:] != waits[:-1])
    if first.all():
        return states, requests[order], waits
    return states[first], np.bincount(np.cumsum(first) - 1, weights=requests[order]), waits[first]


def _water_fill(levels: np.ndarray, amount: float) -> np.ndarray:
    """Split `amount` over queues so the shortest are raised first to a common level (least outstanding requests)."""
    if amount <= 0 or len(levels) == 0:
        return np.zeros(len(levels))
    order = np.sort(levels)
    level = (amount + np.cumsum(order)) / np.arange(1, len(order) + 1)  # common level if the k lowest share it
    fits = np.flatnonzero(level[:-1] <= order[1:])  # ...and it stays at or below the next queue
    final = level[fits[0]] if len(fits) else level[-1]
    return np.maximum(0.0, final - levels)


_EMPTY = 0.5  # a replica holding fewer requests than this is empty
_FOLD_ROWS = 4096  # served rows kept before they are folded into the summary's histograms
_TTFT_BOUNDS = np.asarray(TTFT_BUCKETS)


_FINE = np.geomspace(1e-4, 1e4, 801)  # bucket upper bounds, about 2.3% apart


def _hist_quantile(hist: np.ndarray, q: float) -> float:
    """Quantile from a fine histogram over _FINE (the bucket's upper bound; within ~2.3%)."""
    total = hist.sum()
    if total <= 0:
        return float("nan")
    i = int(np.searchsorted(np.cumsum(hist), q * total))
    return float(_FINE[min(i, len(_FINE) - 1)])
