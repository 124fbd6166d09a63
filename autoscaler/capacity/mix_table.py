"""Per-replica capacity at the SLO over length mixes: measured once on the engine model on a grid of mean prompt and
output lengths (log-normal lengths around each mean), then looked up for the mix the traffic shows now (prompt and
output token rates over the request rate), interpolated in log space. Lookup is pure; building runs the engine."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

PROMPT_GRID = (128.0, 512.0, 2048.0, 8192.0)
OUTPUT_GRID = (32.0, 128.0, 512.0, 1024.0)


@dataclass(frozen=True)
class CapacityTable:
    prompt_means: tuple[float, ...]
    output_means: tuple[float, ...]
    capacity_rps: tuple[tuple[float, ...], ...]  # [prompt][output]

    def at(self, prompt_mean: float, output_mean: float) -> float:
        """Bilinear in log(length), clamped to the grid's edges."""
        lp, lo = np.log(self.prompt_means), np.log(self.output_means)
        x = float(np.clip(math.log(max(prompt_mean, 1.0)), lp[0], lp[-1]))
        y = float(np.clip(math.log(max(output_mean, 1.0)), lo[0], lo[-1]))
        i = int(np.clip(np.searchsorted(lp, x) - 1, 0, len(lp) - 2))
        j = int(np.clip(np.searchsorted(lo, y) - 1, 0, len(lo) - 2))
        u = (x - lp[i]) / (lp[i + 1] - lp[i])
        v = (y - lo[j]) / (lo[j + 1] - lo[j])
        c = np.log(np.asarray(self.capacity_rps))  # capacities fall roughly geometrically with length
        value = (1 - u) * (1 - v) * c[i, j] + u * (1 - v) * c[i + 1, j] + (1 - u) * v * c[i, j + 1] + u * v * c[i + 1, j + 1]
        return float(math.exp(value))

    def for_rates(self, request_rate: float, prompt_tokens_rate: float, output_tokens_rate: float,
                  fallback: tuple[float, float]) -> float:
        """Capacity for the mix the traffic shows now, or for `fallback` (prompt, output means) without traffic."""
        if request_rate > 0 and math.isfinite(prompt_tokens_rate) and math.isfinite(output_tokens_rate) and output_tokens_rate > 0:
            return self.at(prompt_tokens_rate / request_rate, output_tokens_rate / request_rate)
        return self.at(*fallback)


def build_capacity_table(profile, slo_ttft_s: float, slo_itl_s: float, prompt_grid=PROMPT_GRID, output_grid=OUTPUT_GRID,
                         sigma: float = 0.8, samples: int = 2000, seed: int = 0) -> CapacityTable:
    from autoscaler.capacity.engine_capacity import slo_capacity
    from loadgen.workloads.servegen import LengthSampler

    rows = []
    for prompt in prompt_grid:
        row = []
        for output in output_grid:
            lengths = LengthSampler.lognormal(prompt, output, sigma=sigma, seed=seed, n=samples)
            row.append(max(1e-3, slo_capacity(profile, lengths.prompts, lengths.outputs, slo_ttft_s, slo_itl_s, seed=seed)))
        rows.append(tuple(row))
    return CapacityTable(tuple(prompt_grid), tuple(output_grid), tuple(rows))
