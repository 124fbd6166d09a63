"""How one replica behaves at each offered rate, measured once on the engine model for a length mix:
attainment, running and waiting requests, GPU utilization, KV use, TTFT quantiles, ITL and e2e latency;
up to the highest stable rate, then the saturated engine (full batch, queue growing) as the last row."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from autoscaler.capacity.engine_capacity import poisson_workload, slo_capacity
from serving.engine.profile import Profile

TTFT_QUANTILES = np.linspace(0.025, 0.975, 20)


@dataclass(frozen=True)
class LoadTable:
    """Rows by offered rate (req/s per replica); interpolate between them. The last row, at `max_throughput_rps`,
    is the saturated replica: its batch is full and its TTFT counts from scheduling, so a fluid model adds the
    time spent in its own backlog on top."""

    rates: np.ndarray
    attainment: np.ndarray
    running: np.ndarray
    waiting: np.ndarray
    gpu_util: np.ndarray  # percent
    kv_usage: np.ndarray
    ttft_quantiles: np.ndarray  # (rates, TTFT_QUANTILES)
    running_ratio: np.ndarray  # (rates, TTFT_QUANTILES): scraped running requests over their mean, by quantile
    waiting_quantiles: np.ndarray  # (rates, TTFT_QUANTILES): scraped waiting requests, by quantile
    itl_mean: np.ndarray
    e2e_mean: np.ndarray
    slo_capacity_rps: float  # highest rate at the attainment goal
    max_throughput_rps: float  # completions/s of an overloaded replica under online arrivals (queue growing)
    mean_output_tokens: float
    mean_prompt_tokens: float
    prefill_rps: float = np.inf  # requests/s whose first token a replica produces while a burst waits for prefill
    prompt_token_weight: float = 0.0  # requests held per prompt token, over requests held per output token (see below)

    def at(self, column: str, rate: float) -> float:
        return float(np.interp(rate, self.rates, getattr(self, column)))

    def ttft_points_many(self, rates: np.ndarray) -> np.ndarray:
        """TTFT quantile points for many rates at once: shape (len(rates), len(TTFT_QUANTILES))."""
        return _interp_rows(self, np.asarray(rates, dtype=np.float64))

    def ttft_points(self, rate: float) -> np.ndarray:
        i = int(np.clip(np.searchsorted(self.rates, rate), 1, len(self.rates) - 1))
        lo, hi = self.rates[i - 1], self.rates[i]
        w = 0.0 if hi == lo else float(np.clip((rate - lo) / (hi - lo), 0.0, 1.0))
        return (1 - w) * self.ttft_quantiles[i - 1] + w * self.ttft_quantiles[i]


def _interp_rows(table: LoadTable, rates: np.ndarray) -> np.ndarray:
    return interp_rows(rates, table.rates, table.ttft_quantiles)


def bracket(x: np.ndarray, knots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each x: the index of the knot above it (1..len-1) and its weight toward that knot, clipped at the ends.
    `knots` must be strictly increasing."""
    position = np.interp(x, knots, np.arange(len(knots), dtype=np.float64))
    below = np.minimum(position.astype(np.intp), len(knots) - 2)
    return below + 1, position - below


def interp_rows(x: np.ndarray, knots: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Row-wise linear interpolation: for each x, the rows of `rows` around it by `knots`, clipped at the ends."""
    i, w = bracket(x, knots)
    w = w[:, None]
    return (1 - w) * rows[i - 1] + w * rows[i]


@dataclass(frozen=True)
class _Row:
    rate: float
    attainment: float
    running: float
    waiting: float
    gpu_util: float
    kv_usage: float
    ttft: np.ndarray
    running_ratio: np.ndarray
    waiting_quantiles: np.ndarray
    itl: float
    e2e: float
    throughput: float  # completions/s in the steady part


def _measure_row(
    profile: Profile,
    prompts: np.ndarray,
    outputs: np.ndarray,
    rate: float,
    duration_s: float,
    seed: int,
    slo_ttft_s: float,
    slo_itl_s: float,
    saturated: bool = False,
) -> _Row:
    """One row at `rate` from the steady part of a run (after a quarter of it). For a saturated replica the
    latencies count from scheduling: the time in its own queue is the fluid model's backlog, not the row's."""
    from autoscaler.sim.baselines.static import Static
    from autoscaler.sim.config import SimConfig
    from autoscaler.sim.request.simulator import Simulator
    from autoscaler.sim.results import attainment_mask

    workload = poisson_workload(rate, prompts, outputs, max(400, int(rate * duration_s)), seed)
    config = SimConfig(
        profile=profile,
        slo_ttft_s=slo_ttft_s,
        slo_itl_s=slo_itl_s,
        cold_start_s=0.0,
        scrape_interval_s=5.0,
        timeline_interval_s=1.0,
    )
    result = Simulator(config, workload, Static(1, interval_s=3600.0)).run()
    frame, timeline = result.records, result.timeline
    warm, last = workload.duration_s * 0.25, workload.duration_s
    steady = timeline[(timeline["time_s"] > warm) & (timeline["time_s"] <= last)]
    finish = (frame["arrival_s"] + frame["e2e_s"]).to_numpy()
    if saturated:  # the requests served while the batch was full, timed from their scheduling
        start = (frame["arrival_s"] + frame["queue_s"]).to_numpy()
        settled = frame[(start > warm) & (finish <= last)].copy()
        settled["ttft_s"] -= settled["queue_s"]
        settled["e2e_s"] -= settled["queue_s"]
    else:
        settled = frame[frame["arrival_s"] > warm]
    throughput = np.count_nonzero((finish > warm) & (finish <= last)) / (last - warm)
    running = steady["running"].to_numpy(dtype=np.float64)
    ratio = (
        np.quantile(running, TTFT_QUANTILES) / running.mean() if running.mean() > 0 else np.ones(len(TTFT_QUANTILES))
    )
    waiting = np.zeros(len(TTFT_QUANTILES)) if saturated else np.quantile(steady["waiting"], TTFT_QUANTILES)
    return _Row(
        rate,
        float(attainment_mask(settled, slo_ttft_s, slo_itl_s).mean()),
        float(running.mean()),
        0.0 if saturated else float(steady["waiting"].mean()),
        float(steady["gpu_util"].mean()),
        float(steady["kv_usage"].mean()),
        np.quantile(settled["ttft_s"], TTFT_QUANTILES),
        ratio,
        waiting,
        float(settled["mean_itl_s"].mean()),
        float(settled["e2e_s"].mean()),
        throughput,
    )


def burst_prefill_rate(
    profile: Profile, prompts: np.ndarray, outputs: np.ndarray, seed: int, requests: int = 400
) -> float:
    """Requests/s that get their first token while a burst of `requests` arriving at once waits on one replica:
    the slope of their TTFTs over the first quarter of them, before a full batch makes the rest wait for
    completions (the fluid model's backlog term covers those): how fast a replica works through a burst's prefills."""
    from autoscaler.sim.baselines.static import Static
    from autoscaler.sim.config import SimConfig
    from autoscaler.sim.request.simulator import Simulator
    from loadgen.workloads.workload import Workload

    pick = np.random.default_rng(seed).integers(0, len(prompts), requests)
    burst = Workload("burst", np.zeros(requests), prompts[pick], outputs[pick])
    config = SimConfig(profile=profile, cold_start_s=0.0, scrape_interval_s=3600.0, timeline_interval_s=3600.0)
    ttft = Simulator(config, burst, Static(1, interval_s=3600.0)).run().records["ttft_s"].to_numpy()
    early, late = np.quantile(ttft, [0.05, 0.25])
    return 0.2 * requests / max(late - early, 1e-9)


def prompt_token_weight(
    profile: Profile,
    prompts: np.ndarray,
    outputs: np.ndarray,
    rate: float,
    seed: int,
    stretch: float = 1.3,
    duration_s: float = 240.0,
) -> float:
    """How much a prompt token adds to a replica's load against an output token, measured on the engine at `rate`:
    the requests it holds (running and waiting) with every prompt `stretch` times longer, and with every output
    `stretch` times longer, over the same arrivals. A fluid model counts a request as (output + weight x prompt)
    tokens over the mix's mean, so a stretch of a trace with long prompts or short answers loads it as the engine
    would be loaded, not by its request count alone."""

    def held(p, o):
        row = _measure_row(profile, p, o, rate, duration_s, seed, 1.0, 1.0)
        return row.running + row.waiting

    base = held(prompts, outputs)
    longer = lambda tokens: np.maximum(1, np.round(tokens * stretch)).astype(tokens.dtype)
    per_prompt_token = (held(longer(prompts), outputs) - base) / ((stretch - 1) * prompts.mean())
    per_output_token = (held(prompts, longer(outputs)) - base) / ((stretch - 1) * outputs.mean())
    return float(max(0.0, per_prompt_token) / per_output_token) if per_output_token > 0 else 0.0


def build_load_table(
    profile: Profile,
    prompts: np.ndarray,
    outputs: np.ndarray,
    slo_ttft_s: float,
    slo_itl_s: float,
    seed: int = 0,
    points: tuple[float, ...] = (0.05, 0.15, 0.3, 0.45, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0, 1.05, 1.1, 1.2),
    attainment_goal: float = 0.99,
) -> LoadTable:
    prompts, outputs = np.asarray(prompts), np.asarray(outputs)
    capacity = slo_capacity(profile, prompts, outputs, slo_ttft_s, slo_itl_s, attainment_goal, seed=seed)
    # far past capacity: the saturated engine (full batch), and the rate at which it works off a backlog
    saturated = _measure_row(
        profile, prompts, outputs, max(1e-3, 4.0 * capacity), 300.0, seed, slo_ttft_s, slo_itl_s, True
    )
    mu = saturated.throughput
    rows = []
    for factor in points:
        rate = max(1e-3, factor * capacity)
        if rate >= 0.995 * mu:
            break  # not a steady state: the queue grows for as long as the run lasts
        duration = 120.0 if factor < 0.9 else 600.0  # near capacity the batch takes long to settle
        rows.append(_measure_row(profile, prompts, outputs, rate, duration, seed, slo_ttft_s, slo_itl_s))
    idle = _Row(
        0.0,
        1.0,
        0.0,
        0.0,
        0.0,
        0.0,
        rows[0].ttft,
        np.ones(len(TTFT_QUANTILES)),
        np.zeros(len(TTFT_QUANTILES)),
        rows[0].itl,
        rows[0].e2e,
        0.0,
    )
    top = _Row(
        mu,
        saturated.attainment,
        max(saturated.running, rows[-1].running),
        0.0,
        saturated.gpu_util,
        max(saturated.kv_usage, rows[-1].kv_usage),
        np.maximum(saturated.ttft, rows[-1].ttft),
        saturated.running_ratio,
        saturated.waiting_quantiles,
        saturated.itl,
        saturated.e2e,
        mu,
    )
    rows = [idle, *rows, top]
    column = lambda name: np.array([getattr(r, name) for r in rows])
    return LoadTable(
        column("rate"),
        column("attainment"),
        column("running"),
        column("waiting"),
        column("gpu_util"),
        column("kv_usage"),
        np.vstack([r.ttft for r in rows]),
        np.vstack([r.running_ratio for r in rows]),
        np.vstack([r.waiting_quantiles for r in rows]),
        column("itl"),
        column("e2e"),
        capacity,
        mu,
        float(outputs.mean()),
        float(prompts.mean()),
        burst_prefill_rate(profile, prompts, outputs, seed),
        prompt_token_weight(profile, prompts, outputs, 0.5 * capacity, seed),
    )
