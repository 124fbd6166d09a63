"""The capacity atlas of one profile: SLO attainment of one replica measured on the engine model over a grid of
length mixes x offered rates x TTFT and ITL thresholds, so that the capacity at any SLO on the grid is a lookup, not
a simulation. Pure: cells come in as arrays (autoscaler.capacity.atlas_build measures them, atlas_store keeps them).

Terms: a *cell* is one length mix (log-normal lengths around a mean prompt and a mean output); its *rates* are
offered Poisson rates per replica, as fractions of the replica's saturated throughput; its *attainment* cube holds,
per rate, the share of requests with TTFT <= each threshold and mean ITL <= each threshold (failed ones miss). Each
cell is measured for a lone replica and for a *pooled* fleet (FLEET_SIZES: the gateway routes each request to the
least busy replica, so a fleet smooths the bursts of Poisson arrivals and each replica carries more within the SLO);
between the sizes, capacity per replica is interpolated in log(replicas)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from autoscaler.capacity.mix_table import OUTPUT_GRID, PROMPT_GRID, log_bilinear_corners

PROMPT_MEANS, OUTPUT_MEANS = PROMPT_GRID, OUTPUT_GRID  # the autoscaler's capacity table's mixes
FLEET_SIZES = (1, 8)
RATE_FRACTIONS = (0.05, 0.15, 0.3, 0.45, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95)
TTFT_THRESHOLDS_S = (0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)
ITL_THRESHOLDS_S = (0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.5)
# quantile levels of each rate's TTFT and ITL, dense in the tail where attainment goals sit
LEVELS = (
    0.0,
    0.1,
    0.2,
    0.3,
    0.4,
    0.5,
    0.6,
    0.7,
    0.8,
    0.85,
    0.9,
    0.92,
    0.94,
    0.95,
    0.96,
    0.97,
    0.975,
    0.98,
    0.985,
    0.99,
    0.9925,
    0.995,
    0.9975,
    0.999,
    1.0,
)
FAILED_S = 1e9  # a failed request's latency in the quantiles: it misses every threshold
SUBSTEPS = 32  # between two measured rates, attainment is evaluated at this many points


class OffGrid(ValueError):
    """An SLO tighter than the atlas's tightest threshold: it can only be answered on the engine directly."""


@dataclass(frozen=True)
class Atlas:
    """Cells [prompt][output]: saturated throughput of one replica (req/s); per fleet size and rate, attainment over
    the threshold pairs and the TTFT and ITL quantiles at LEVELS."""

    profile: str
    digest: str  # of what the cells depend on (profile, grids, builder version); a mismatch means stale
    saturated_rps: np.ndarray  # (prompts, outputs)
    attainment: np.ndarray  # (prompts, outputs, fleet sizes, rates, ttft thresholds, itl thresholds)
    ttft_quantiles: np.ndarray  # (prompts, outputs, fleet sizes, rates, levels)
    itl_quantiles: np.ndarray  # (prompts, outputs, fleet sizes, rates, levels)

    def cell_capacity(self, i: int, j: int, slo_ttft_s: float, slo_itl_s: float, goal: float, k: int = 0) -> float:
        """Requests/s per replica at the goal in cell (i, j) for fleet size FLEET_SIZES[k]; the SLO rounds down to
        the grid (never optimistic)."""
        ti, ii = floor_index(TTFT_THRESHOLDS_S, slo_ttft_s, "TTFT"), floor_index(ITL_THRESHOLDS_S, slo_itl_s, "ITL")
        rates = np.asarray(RATE_FRACTIONS) * self.saturated_rps[i, j]
        measured = self.attainment[i, j, k, :, ti, ii]
        below = np.flatnonzero(measured < goal)
        if len(below) == 0:
            return float(rates[-1])
        if below[0] == 0:
            return 0.0
        ttft_q, itl_q = self.ttft_quantiles[i, j, k], self.itl_quantiles[i, j, k]
        r = int(below[0])
        between = between_rates(
            ttft_q[r - 1 : r + 1],
            itl_q[r - 1 : r + 1],
            measured[r - 1 : r + 1],
            TTFT_THRESHOLDS_S[ti],
            ITL_THRESHOLDS_S[ii],
        )
        return first_crossing(np.linspace(rates[r - 1], rates[r], SUBSTEPS + 1), between, goal)

    def capacity_by_size(
        self, prompt_mean: float, output_mean: float, slo_ttft_s: float, slo_itl_s: float, goal: float
    ) -> np.ndarray:
        """Requests/s per replica for each of FLEET_SIZES: bilinear in log(length) and log(capacity), clamped to the
        grid's edges (as the autoscaler's table); zeros when a corner cannot meet the SLO at any rate (the mix is
        then not servable at this SLO)."""
        corners, weights = bilinear_corners(prompt_mean, output_mean)
        per_size = []
        for k in range(len(FLEET_SIZES)):
            values = [self.cell_capacity(i, j, slo_ttft_s, slo_itl_s, goal, k) for i, j in corners]
            if min(values) <= 0:
                return np.zeros(len(FLEET_SIZES))
            per_size.append(math.exp(sum(w * math.log(v) for w, v in zip(weights, values))))
        return np.asarray(per_size)

    def capacity(
        self,
        prompt_mean: float,
        output_mean: float,
        slo_ttft_s: float,
        slo_itl_s: float,
        goal: float,
        replicas: int = 1,
    ) -> float:
        """Requests/s per replica in a fleet of `replicas` (see capacity_by_size and at_size)."""
        return at_size(self.capacity_by_size(prompt_mean, output_mean, slo_ttft_s, slo_itl_s, goal), replicas)

    def saturated(self, prompt_mean: float, output_mean: float) -> float:
        corners, weights = bilinear_corners(prompt_mean, output_mean)
        return float(math.exp(sum(w * math.log(self.saturated_rps[i, j]) for w, (i, j) in zip(weights, corners))))

    def latency(
        self,
        prompt_mean: float,
        output_mean: float,
        rate_rps: float,
        slo_ttft_s: float,
        slo_itl_s: float,
        goal: float,
        replicas: int = 1,
    ) -> tuple[float, float]:
        """(p95 TTFT, median ITL) of one replica offered `rate_rps`: each corner cell read at the same share of its
        own capacity at the SLO (of its saturated throughput where it has none), so that a replica planned at its
        capacity reads as at its capacity in every corner; combined in log space; inf past the measured rates."""
        corners, weights = bilinear_corners(prompt_mean, output_mean)
        k = nearest_size(replicas)
        caps = [self.cell_capacity(i, j, slo_ttft_s, slo_itl_s, goal, k) for i, j in corners]
        if min(caps) > 0:
            share = rate_rps / math.exp(sum(w * math.log(c) for w, c in zip(weights, caps)))
            loads = [share * cap / self.saturated_rps[i, j] for cap, (i, j) in zip(caps, corners)]
        else:
            loads = [rate_rps / self.saturated(prompt_mean, output_mean)] * len(corners)
        if max(loads) > RATE_FRACTIONS[-1]:
            return math.inf, math.inf
        p95, p50 = LEVELS.index(0.95), LEVELS.index(0.5)
        at = lambda q, c, level: max(float(np.interp(loads[c], RATE_FRACTIONS, q[corners[c]][k, :, level])), 1e-6)
        mix = lambda q, level: math.exp(sum(w * math.log(at(q, c, level)) for c, w in enumerate(weights)))
        ttft = mix(self.ttft_quantiles, p95)
        return (ttft if ttft < FAILED_S / 10 else math.inf), mix(self.itl_quantiles, p50)

    def mix_source(self, prompt_mean: float, output_mean: float) -> str:
        """Where a mix's capacity comes from: a measured mix, or an interpolation between the measured ones."""
        corners, weights = bilinear_corners(prompt_mean, output_mean)
        span = lambda grid, a, b: f"{grid[a]:g}" if a == b else f"{grid[a]:g}-{grid[b]:g}"
        used = [c for c, w in zip(corners, weights) if w > 1e-9]
        prompts = span(PROMPT_MEANS, min(i for i, _ in used), max(i for i, _ in used))
        outputs = span(OUTPUT_MEANS, min(j for _, j in used), max(j for _, j in used))
        what = "measured at" if len(used) == 1 else "interpolated between measured mixes of"
        return f"{what} prompts {prompts} x outputs {outputs} tokens"

    def light_load_attainment(
        self, prompt_mean: float, output_mean: float, slo_ttft_s: float, slo_itl_s: float
    ) -> float:
        """Share of requests within the SLO at the lowest measured rate, worst corner: what no replica count improves."""
        ti, ii = floor_index(TTFT_THRESHOLDS_S, slo_ttft_s, "TTFT"), floor_index(ITL_THRESHOLDS_S, slo_itl_s, "ITL")
        corners, _ = bilinear_corners(prompt_mean, output_mean)
        return float(min(self.attainment[i, j, -1, 0, ti, ii] for i, j in corners))


def at_size(per_size: np.ndarray, replicas: int) -> float:
    """Capacity per replica for a fleet of `replicas`: between the measured sizes in log(replicas) and
    log(capacity), flat beyond the largest (a bigger fleet pools at least as well)."""
    if per_size.min() <= 0:
        return 0.0
    position = math.log(min(max(replicas, FLEET_SIZES[0]), FLEET_SIZES[-1]))
    return float(math.exp(np.interp(position, np.log(FLEET_SIZES), np.log(per_size))))


def nearest_size(replicas: int) -> int:
    """The index of the measured fleet size nearest to `replicas` in log space."""
    return int(np.argmin(np.abs(np.log(FLEET_SIZES) - math.log(max(replicas, 1)))))


def between_rates(
    ttft_q: np.ndarray, itl_q: np.ndarray, measured: np.ndarray, ttft_s: float, itl_s: float
) -> np.ndarray:
    """Attainment at SUBSTEPS+1 rates from one measured rate to the next: each latency's quantiles move linearly
    (a batch's ITL grows smoothly with the rate, so a cliff in attainment lands where it crosses the threshold),
    joined by the Frechet lower bound and corrected to equal the measured joint attainment at both ends."""
    w = np.linspace(0.0, 1.0, SUBSTEPS + 1)[:, None]
    share = lambda q, threshold: np.array([np.interp(threshold, row, LEVELS) for row in (1 - w) * q[0] + w * q[1]])
    lower = np.clip(share(ttft_q, ttft_s) + share(itl_q, itl_s) - 1.0, 0.0, 1.0)
    w = w[:, 0]
    return lower + (1 - w) * (measured[0] - lower[0]) + w * (measured[1] - lower[-1])


def floor_index(grid: tuple[float, ...], value: float, what: str) -> int:
    index = int(np.searchsorted(grid, value * (1 + 1e-9), side="right")) - 1
    if index < 0:
        raise OffGrid(f"{what} SLO {value:g} s is tighter than the atlas's tightest threshold {grid[0]:g} s")
    return index


def first_crossing(rates: np.ndarray, attainment: np.ndarray, goal: float) -> float:
    """The highest rate before attainment first falls below `goal`, linear between measured rates; 0 when even the
    lowest rate misses (a tail of rates that meet it again past a miss is noise, not capacity)."""
    below = np.flatnonzero(attainment < goal)
    if len(below) == 0:
        return float(rates[-1])
    k = int(below[0])
    if k == 0:
        return 0.0
    a0, a1 = attainment[k - 1], attainment[k]
    return float(rates[k - 1] + (rates[k] - rates[k - 1]) * (a0 - goal) / (a0 - a1))


def bilinear_corners(prompt_mean: float, output_mean: float) -> tuple[list[tuple[int, int]], list[float]]:
    return log_bilinear_corners(PROMPT_MEANS, OUTPUT_MEANS, prompt_mean, output_mean)
