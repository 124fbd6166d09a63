"""How one replica behaves at each offered rate, measured once on the engine model for a length mix:
attainment, running and waiting requests, GPU utilization, KV use, TTFT quantiles, ITL and e2e latency."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from autoscaler.capacity.engine_capacity import poisson_workload, slo_capacity
from serving.engine.profile import Profile

TTFT_QUANTILES = np.linspace(0.025, 0.975, 20)


@dataclass(frozen=True)
class LoadTable:
    """Rows by offered rate (req/s per replica); interpolate between them."""

    rates: np.ndarray
    attainment: np.ndarray
    running: np.ndarray
    waiting: np.ndarray
    gpu_util: np.ndarray  # percent
    kv_usage: np.ndarray
    ttft_quantiles: np.ndarray  # (rates, TTFT_QUANTILES)
    itl_mean: np.ndarray
    e2e_mean: np.ndarray
    slo_capacity_rps: float  # highest rate at the attainment goal
    max_throughput_rps: float  # completions/s of an overloaded replica under online arrivals (queue growing)
    mean_output_tokens: float
    mean_prompt_tokens: float

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


def _interp_rows(table: "LoadTable", rates: np.ndarray) -> np.ndarray:
    i = np.clip(np.searchsorted(table.rates, rates), 1, len(table.rates) - 1)
    lo, hi = table.rates[i - 1], table.rates[i]
    w = np.clip(np.where(hi > lo, (rates - lo) / np.where(hi > lo, hi - lo, 1.0), 0.0), 0.0, 1.0)[:, None]
    return (1 - w) * table.ttft_quantiles[i - 1] + w * table.ttft_quantiles[i]


def _measure_row(profile: Profile, prompts: np.ndarray, outputs: np.ndarray, rate: float, duration_s: float, seed: int,
                 slo_ttft_s: float, slo_itl_s: float) -> tuple[tuple, float]:
    """One table row at `rate` (steady part only, after a quarter of the run), and the completions per second."""
    from autoscaler.sim.baselines.static import Static
    from autoscaler.sim.results import attainment_mask
    from autoscaler.sim.simulator import SimConfig, Simulator

    workload = poisson_workload(rate, prompts, outputs, max(400, int(rate * duration_s)), seed)
    config = SimConfig(profile=profile, slo_ttft_s=slo_ttft_s, slo_itl_s=slo_itl_s, cold_start_s=0.0,
                       scrape_interval_s=5.0, timeline_interval_s=5.0)
    result = Simulator(config, workload, Static(1, interval_s=3600.0)).run()
    frame, timeline = result.records, result.timeline
    warm, last = workload.duration_s * 0.25, workload.duration_s
    steady = timeline[timeline["time_s"] > warm]
    settled = frame[frame["arrival_s"] > warm]
    met = attainment_mask(settled, slo_ttft_s, slo_itl_s).mean()
    finish = (frame["arrival_s"] + frame["e2e_s"]).to_numpy()
    throughput = np.count_nonzero((finish > warm) & (finish <= last)) / (last - warm)
    row = (rate, met, steady["running"].mean(), steady["waiting"].mean(), steady["gpu_util"].mean(), steady["kv_usage"].mean(),
           np.quantile(frame["ttft_s"], TTFT_QUANTILES), frame["mean_itl_s"].mean(), frame["e2e_s"].mean())
    return row, throughput


def build_load_table(profile: Profile, prompts: np.ndarray, outputs: np.ndarray, slo_ttft_s: float, slo_itl_s: float,
                     seed: int = 0, points: tuple[float, ...] = (0.05, 0.15, 0.3, 0.45, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0, 1.05, 1.1, 1.2),
                     attainment_goal: float = 0.99) -> LoadTable:
    prompts, outputs = np.asarray(prompts), np.asarray(outputs)
    capacity = slo_capacity(profile, prompts, outputs, slo_ttft_s, slo_itl_s, attainment_goal, seed=seed)
    rows, throughputs = [], []
    for factor in points:
        duration = 120.0 if factor < 0.9 else 600.0  # near and past capacity the queue takes long to settle
        row, throughput = _measure_row(profile, prompts, outputs, max(1e-3, factor * capacity), duration, seed, slo_ttft_s, slo_itl_s)
        rows.append(row)
        throughputs.append(throughput)
    # far past capacity: the saturated engine (full batch) and the rate a backlog drains at; its queue is the backlog
    row, throughput = _measure_row(profile, prompts, outputs, max(1e-3, 4.0 * capacity), 300.0, seed, slo_ttft_s, slo_itl_s)
    rows.append(row[:3] + (rows[-1][3],) + row[4:])
    throughputs.append(throughput)
    rows.insert(0, (0.0, 1.0, 0.0, 0.0, 0.0, 0.0, rows[0][6], rows[0][7], rows[0][8]))
    cols = list(zip(*rows))
    return LoadTable(np.array(cols[0]), np.array(cols[1]), np.array(cols[2]), np.array(cols[3]), np.array(cols[4]),
                     np.array(cols[5]), np.vstack(cols[6]), np.array(cols[7]), np.array(cols[8]), capacity, max(throughputs),
                     float(outputs.mean()), float(prompts.mean()))
