"""Fluid-mode fleet simulation for days of traffic: per-step arrival counts, engine-derived per-replica behaviour
(a LoadTable measured on `serving/engine`), a FIFO backlog beyond saturation, and the same scrape-lagged
snapshots and policies as the request-level mode."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from autoscaler.capacity.load_table import LoadTable, build_load_table
from autoscaler.policy.base import Policy
from autoscaler.sim.observe import Observer, Scrape
from autoscaler.sim.results import SimResult, count_scale_actions
from autoscaler.sim.simulator import SimConfig
from autoscaler.snapshot import ReplicaSample
from loadgen.workloads.servegen import LengthSampler, RateWindows
from loadgen.workloads.workload import Workload
from serving.emulator.metrics import TTFT_BUCKETS


def counts_from_workload(workload: Workload, step_s: float) -> np.ndarray:
    bins = int(math.ceil(max(workload.duration_s, step_s) / step_s)) + 1
    return np.bincount((workload.arrival_s // step_s).astype(np.int64), minlength=bins).astype(np.float64)


def counts_from_windows(windows: RateWindows, step_s: float, seed: int, start_s: float = 0.0, end_s: float | None = None) -> np.ndarray:
    """Per-step arrival counts from per-client window rates: gamma-mixed Poisson counts whose variance matches each
    client's inter-arrival CV (the index of dispersion of a renewal process), summed over clients. By seed."""
    rng = np.random.default_rng(seed)
    per_window = int(round(windows.window_s / step_s))
    end_s = end_s if end_s is not None else float(windows.start_s[-1] + windows.window_s)
    first, last = int(start_s // windows.window_s), int(math.ceil(end_s / windows.window_s))
    total = np.zeros((last - first) * per_window)
    for client in windows.clients:
        mean = np.repeat(client.rate[first:last] * step_s, per_window)
        cv2 = np.repeat(client.cv[first:last] ** 2, per_window)
        bursty = cv2 > 1.0
        lam = mean.copy()
        if bursty.any():
            k = mean[bursty] / (cv2[bursty] - 1.0)
            with np.errstate(divide="ignore", invalid="ignore"):
                lam[bursty] = np.where(k > 0, rng.gamma(np.maximum(k, 1e-9), mean[bursty] / np.maximum(k, 1e-9)), 0.0)
        total += rng.poisson(lam)
    offset = int((start_s - first * windows.window_s) // step_s)
    steps = int(math.ceil((end_s - start_s) / step_s))
    return total[offset:offset + steps]


@dataclass
class _FluidReplica:
    index: int
    requested_at: float
    ready_at: float
    gone_at: float | None = None
    retired_at: float | None = None

    def serving(self, t: float) -> bool:
        return self.retired_at is None and self.ready_at <= t


class FluidSimulator:
    """Same inputs and outputs as the request-level Simulator; records are per step instead of per request."""

    def __init__(self, config: SimConfig, workload: Workload | None, policy: Policy, *, counts: np.ndarray | None = None,
                 lengths: LengthSampler | None = None, table: LoadTable | None = None, step_s: float = 5.0, name: str = ""):
        if workload is None and (counts is None or lengths is None):
            raise ValueError("fluid mode needs a workload, or per-step counts with a length sampler")
        self.config, self.policy, self.step_s = config, policy, step_s
        self.counts = counts if counts is not None else counts_from_workload(workload, step_s)
        if lengths is None:
            lengths = LengthSampler.from_workload(workload)
        self.lengths = lengths
        self.table = table
        self.name = name or (workload.name if workload is not None else "rates")

    def _table(self) -> LoadTable:
        if self.table is None:
            rng = np.random.default_rng(self.config.seed)
            prompts, outputs = self.lengths.sample(4000, rng)
            self.table = build_load_table(self.config.profile, prompts, outputs, self.config.slo_ttft_s, self.config.slo_itl_s,
                                          seed=self.config.seed)
        return self.table

    def run(self) -> SimResult:
        cfg, policy, dt = self.config, self.policy, self.step_s
        table = self._table()
        mu = table.max_throughput_rps * dt  # requests one replica completes per step when saturated
        top_rate = table.rates[-1]
        observer = Observer(cfg.scrape_interval_s, cfg.rate_window_s)
        replicas = [_FluidReplica(i, 0.0, 0.0) for i in range(cfg.initial_replicas)]
        departed: list[_FluidReplica] = []
        serving: list[_FluidReplica] | None = None
        backlogged = False  # does any serving replica hold a backlog?
        gauges = None
        serving_until = -math.inf
        created = len(replicas)
        backlog = {r.index: 0.0 for r in replicas}  # requests queued inside each replica's engine beyond steady state
        desired = cfg.initial_replicas
        state = policy.initial_state()
        gateway: deque[list[float]] = deque()  # [arrival time, count] held while no replica is ready
        cum = {"arrivals": 0.0, "completions": 0.0, "itl_sum": 0.0, "itl_count": 0.0}
        ttft_counts = np.zeros(len(TTFT_BUCKETS) + 1)
        bucket_bounds = np.asarray(TTFT_BUCKETS)
        next_control, next_scrape, next_timeline = policy.interval_s, 0.0, cfg.timeline_interval_s
        met_total = failed_total = arrived_total = 0.0
        ttft_hist = np.zeros(len(_FINE) + 1)  # fine log-spaced histograms for the summary's percentiles
        itl_hist = np.zeros(len(_FINE) + 1)
        timeline, steps_out, decisions = [], [], []
        samples: tuple[ReplicaSample, ...] = ()
        n_steps = len(self.counts)
        step_index, t = 0, 0.0
        mean_e2e = table.at("e2e_mean", 0.0)
        while step_index < n_steps or gateway or any(backlog.values()):
            t = step_index * dt
            if step_index % 12 == 0:  # replicas that are gone leave the live list (billing keeps them)
                live = [r for r in replicas if r.gone_at is None or r.gone_at > t]
                if len(live) != len(replicas):
                    serving = None
                    departed += [r for r in replicas if not (r.gone_at is None or r.gone_at > t)]
                    for r in departed:
                        backlog.pop(r.index, None)
                    replicas = live
            arrivals = self.counts[step_index] if step_index < n_steps else 0.0
            if serving is None or t >= serving_until:  # recomputed only when a replica's state can have changed
                serving = [r for r in replicas if r.serving(t)]
                serving_until = min((r.ready_at for r in replicas if r.retired_at is None and r.ready_at > t), default=math.inf)
            n = len(serving)
            if arrivals:
                gateway.append([t, arrivals])
            expired = 0.0
            while gateway and t - gateway[0][0] > cfg.queue_timeout_s:
                expired += gateway.popleft()[1]
            failed_total += expired
            incoming = sum(c for _, c in gateway) if n else 0.0
            if n:
                gateway.clear()
            # least outstanding requests: new work fills the shortest engine queues first (water-filling)
            queued = np.array([backlog[r.index] for r in serving]) if n and backlogged else np.zeros(n)
            uniform = n > 0 and not queued.any()  # the common steady state: every replica alike
            share = np.full(n, incoming / n) if uniform else (_water_fill(queued, incoming) if n else np.zeros(0))
            total = queued + share
            served = np.minimum(total, mu)
            left = total - served
            rates = np.minimum(total / dt, top_rate)
            step_served = float(served.sum())
            met_before = met_total
            if n and uniform and not left.any():
                rate = float(rates[0])
                points = table.ttft_points(rate)
                ok = min(table.at("attainment", rate), float(np.mean(points <= cfg.slo_ttft_s)))
                met_total += incoming * ok
                if incoming > 0:
                    weights = np.full(len(points), incoming / len(points))
                    ttft_counts += np.bincount(np.searchsorted(bucket_bounds, points), weights=weights, minlength=len(ttft_counts))[: len(ttft_counts)]
                    ttft_hist += np.bincount(np.searchsorted(_FINE, points), weights=weights, minlength=len(ttft_hist))
                    itl = table.at("itl_mean", rate)
                    itl_hist[np.searchsorted(_FINE, itl)] += incoming
                    per_token = max(table.mean_output_tokens - 1, 0)
                    cum["itl_sum"] += incoming * itl * per_token
                    cum["itl_count"] += incoming * per_token
                gauges = ReplicaSample(table.at("running", rate), table.at("waiting", rate), table.at("kv_usage", rate),
                                       table.at("gpu_util", rate))
                if backlogged:
                    for r in serving:
                        backlog[r.index] = 0.0
                backlogged = False
            elif n:
                delay = left / mu * dt
                points = table.ttft_points_many(rates) + delay[:, None]  # (replicas, quantiles)
                ok = np.minimum(np.interp(rates, table.rates, table.attainment), np.mean(points <= cfg.slo_ttft_s, axis=1))
                met_total += float(np.dot(share, ok))
                routed = share > 0
                if routed.any():
                    weights = np.repeat(share[routed] / points.shape[1], points.shape[1])
                    flat = points[routed].ravel()
                    ttft_counts += np.bincount(np.searchsorted(bucket_bounds, flat), weights=weights, minlength=len(ttft_counts))[: len(ttft_counts)]
                    ttft_hist += np.bincount(np.searchsorted(_FINE, flat), weights=weights, minlength=len(ttft_hist))
                    itl = np.interp(rates[routed], table.rates, table.itl_mean)
                    itl_hist += np.bincount(np.searchsorted(_FINE, itl), weights=share[routed], minlength=len(itl_hist))
                    per_token = max(table.mean_output_tokens - 1, 0)
                    cum["itl_sum"] += float(np.dot(share[routed], itl)) * per_token
                    cum["itl_count"] += float(share[routed].sum()) * per_token
                running = np.interp(rates, table.rates, table.running)
                waiting = np.interp(rates, table.rates, table.waiting) + left
                kv = np.interp(rates, table.rates, table.kv_usage)
                util = np.where(left > 0, 100.0, np.interp(rates, table.rates, table.gpu_util))
                gauges = (running, waiting, kv, util)
                for i, r in enumerate(serving):
                    backlog[r.index] = float(left[i])
                backlogged = bool(left.any())
            else:
                gauges = None
            for r in replicas:  # retired replicas work off what they still hold, then leave
                if r.retired_at is not None and backlog.get(r.index, 0.0) > 0:
                    take = min(mu, backlog[r.index])
                    backlog[r.index] -= take
                    step_served += take
                    if backlog[r.index] <= 1e-9:
                        backlog[r.index] = 0.0
                        r.gone_at = t + dt + mean_e2e
            cum["arrivals"] += arrivals
            cum["completions"] += step_served
            arrived_total += arrivals
            held = sum(c for _, c in gateway)
            steps_out.append((t, arrivals, float(share.sum()), met_total - met_before, expired, n,
                              float(rates.mean()) if n else 0.0, float(left.max()) / mu * dt if n else 0.0))
            step_end = t + dt
            if next_scrape < step_end or next_control < step_end or next_timeline <= step_end:
                if gauges is None:
                    samples = ()
                elif isinstance(gauges, ReplicaSample):
                    samples = (gauges,) * n  # every replica alike: one sample object shared
                else:
                    samples = tuple(map(ReplicaSample._make, zip(*(g.tolist() for g in gauges))))
            while next_scrape < step_end:
                observer.record(Scrape(next_scrape, cum["arrivals"], cum["completions"], cum["completions"] * table.mean_prompt_tokens,
                                       cum["completions"] * table.mean_output_tokens, ttft_counts.copy(), cum["itl_sum"],
                                       cum["itl_count"], samples, held))
                next_scrape += cfg.scrape_interval_s
            while next_control < step_end:
                now = next_control
                ready, starting, draining = _counts(replicas, serving, serving_until, now)
                snapshot = observer.snapshot(now, desired, ready, starting, draining)
                in_flight = sum(s.running + s.waiting for s in samples) + held
                snapshot = replace(snapshot, extra={**snapshot.extra, "in_flight_now": in_flight})
                decision, state = policy.decide(snapshot, state)
                decisions.append((now, decision))
                target = max(0, min(decision.desired, cfg.max_replicas))
                active = [r for r in replicas if r.retired_at is None]
                for _ in range(target - len(active)):
                    replica = _FluidReplica(created, now, now + cfg.cold_start_s)
                    created += 1
                    replicas.append(replica)
                    backlog[replica.index] = 0.0
                surplus = len(active) - target
                if surplus > 0:  # starting ones first (newest first), then the ready ones holding the least
                    order = sorted(active, key=lambda r: (r.ready_at <= now, backlog[r.index], -r.requested_at))
                    for r in order[:surplus]:
                        r.retired_at = now
                        if r.ready_at > now:
                            r.gone_at = now
                        elif backlog[r.index] == 0.0:
                            r.gone_at = now + mean_e2e  # in-flight requests finish first
                if target != len(active):
                    serving = None
                desired = target
                next_control += policy.interval_s
            while next_timeline <= step_end:
                when = next_timeline
                ready, starting, draining = _counts(replicas, serving, serving_until, when)
                timeline.append({"time_s": when, "desired": desired, "ready": ready, "starting": starting, "draining": draining,
                                 "arrivals": arrivals, "arrival_rate": arrivals / dt,
                                 "running": sum(s.running for s in samples), "waiting": sum(s.waiting for s in samples),
                                 "gateway_queue": held, "kv_usage": float(np.mean([s.kv_usage for s in samples])) if samples else 0.0,
                                 "gpu_util": float(np.mean([s.gpu_util for s in samples])) if samples else 0.0})
                next_timeline += cfg.timeline_interval_s
            step_index += 1
        end = max(t + dt, n_steps * dt)
        for r in replicas:
            if r.gone_at is None:
                r.gone_at = end
        return self._summary(departed + replicas, end, arrived_total, met_total, failed_total, ttft_hist, itl_hist,
                             timeline, steps_out, decisions)

    def _summary(self, replicas, end, arrived, met, failed, ttft_hist, itl_hist, timeline, steps, decisions) -> SimResult:
        cfg = self.config
        gpu_hours = sum(max(0.0, r.gone_at - r.requested_at) for r in replicas) * cfg.profile.gpus / 3600.0
        cost = gpu_hours * cfg.price_per_gpu_hour
        out_tokens = (arrived - failed) * self._table().mean_output_tokens
        frame = pd.DataFrame(timeline)
        summary = {
            "policy": self.policy.name, "requests": int(round(arrived)), "failed": int(round(failed)),
            "slo_attainment": met / arrived if arrived else float("nan"), "goodput_rps": met / end,
            "ttft_p50_s": _hist_quantile(ttft_hist, 0.50), "ttft_p95_s": _hist_quantile(ttft_hist, 0.95),
            "ttft_p99_s": _hist_quantile(ttft_hist, 0.99), "itl_p95_s": _hist_quantile(itl_hist, 0.95),
            "gpu_hours": gpu_hours, "cost_usd": cost,
            "cost_per_million_output_tokens": cost / (out_tokens / 1e6) if out_tokens else float("nan"),
            "scale_actions": count_scale_actions(cfg.initial_replicas, decisions),
            "max_replicas": int((frame["ready"] + frame["starting"]).max()) if len(frame) else cfg.initial_replicas,
            "mean_replicas": gpu_hours * 3600.0 / end / cfg.profile.gpus, "duration_s": end, "output_tokens": out_tokens,
            "slo_ttft_s": cfg.slo_ttft_s, "slo_itl_s": cfg.slo_itl_s, "cold_start_s": cfg.cold_start_s,
            "profile": cfg.profile.name, "mode": "fluid",
        }
        records = pd.DataFrame(steps, columns=["time_s", "arrivals", "routed", "met", "failed", "ready", "rate_per_replica", "queue_delay_s"])
        return SimResult(summary, records, frame, decisions)


def _counts(replicas: list[_FluidReplica], serving: list[_FluidReplica] | None, serving_until: float, when: float) -> tuple[int, int, int]:
    """(ready, starting, draining) at `when`, from the cached serving list while it is valid."""
    if serving is not None and when < serving_until:
        ready = len(serving)
    else:
        ready = sum(1 for r in replicas if r.serving(when))
    active = sum(1 for r in replicas if r.retired_at is None)
    draining = sum(1 for r in replicas if r.retired_at is not None and (r.gone_at is None or r.gone_at > when))
    return ready, active - ready, draining


def _water_fill(levels: np.ndarray, amount: float) -> np.ndarray:
    """Split `amount` over queues so the shortest are raised first to a common level (least outstanding requests)."""
    if amount <= 0 or len(levels) == 0:
        return np.zeros(len(levels))
    order = np.sort(levels)
    prefix = np.cumsum(order)
    for k in range(1, len(order) + 1):
        level = (amount + prefix[k - 1]) / k
        if k == len(order) or level <= order[k]:
            return np.maximum(0.0, level - levels)
    return np.maximum(0.0, (amount + prefix[-1]) / len(order) - levels)


_FINE = np.geomspace(1e-4, 1e4, 801)  # bucket upper bounds, about 2.3% apart


def _hist_quantile(hist: np.ndarray, q: float) -> float:
    """Quantile from a fine histogram over _FINE (the bucket's upper bound; within ~2.3%)."""
    total = hist.sum()
    if total <= 0:
        return float("nan")
    i = int(np.searchsorted(np.cumsum(hist), q * total))
    return float(_FINE[min(i, len(_FINE) - 1)])
