"""Per-replica capacity at the SLO over length mixes: measured once on the engine model on a grid of mean prompt and
output lengths (log-normal lengths around each mean), then looked up for the mix the traffic shows now (prompt and
output token rates over the request rate), interpolated in log space. Pure: cells come from a `measure` callable
(autoscaler.capacity.mix_cells.engine_cell runs the engine)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

PROMPT_GRID = (128.0, 512.0, 2048.0, 8192.0)
OUTPUT_GRID = (32.0, 128.0, 512.0, 1024.0)


def log_bilinear_corners(
    prompt_means, output_means, prompt_mean: float, output_mean: float
) -> tuple[list[tuple[int, int]], list[float]]:
    """The four grid cells around a mix and their weights, bilinear in log(length), clamped to the grid's edges."""
    lp, lo = np.log(prompt_means), np.log(output_means)
    x = float(np.clip(math.log(max(prompt_mean, 1.0)), lp[0], lp[-1]))
    y = float(np.clip(math.log(max(output_mean, 1.0)), lo[0], lo[-1]))
    i = int(np.clip(np.searchsorted(lp, x) - 1, 0, len(lp) - 2))
    j = int(np.clip(np.searchsorted(lo, y) - 1, 0, len(lo) - 2))
    u = (x - lp[i]) / (lp[i + 1] - lp[i])
    v = (y - lo[j]) / (lo[j + 1] - lo[j])
    return [(i, j), (i + 1, j), (i, j + 1), (i + 1, j + 1)], [(1 - u) * (1 - v), u * (1 - v), (1 - u) * v, u * v]


@dataclass(frozen=True)
class CapacityTable:
    """Cells [prompt][output] of requests/s at the SLO. A cell not yet known is measured by `measure` the first time
    a lookup needs it (seconds each on the engine; the builder keeps them on disk), so only the region the traffic
    visits is ever measured."""

    prompt_means: tuple[float, ...]
    output_means: tuple[float, ...]
    cells: dict = field(default_factory=dict)  # (i, j) -> requests/s
    measure: Callable[[float, float], float] | None = field(default=None, compare=False, repr=False)

    def cell(self, i: int, j: int) -> float:
        if (i, j) not in self.cells:
            if self.measure is None:
                raise KeyError(
                    f"capacity for prompt {self.prompt_means[i]:g}, output {self.output_means[j]:g} tokens is not in the table"
                )
            self.cells[(i, j)] = max(1e-3, float(self.measure(self.prompt_means[i], self.output_means[j])))
        return self.cells[(i, j)]

    def at(self, prompt_mean: float, output_mean: float) -> float:
        """Bilinear in log(length) and log(capacity), clamped to the grid's edges."""
        corners, weights = log_bilinear_corners(self.prompt_means, self.output_means, prompt_mean, output_mean)
        # capacities fall roughly geometrically with length
        return float(math.exp(sum(w * math.log(self.cell(i, j)) for w, (i, j) in zip(weights, corners))))

    def for_rates(
        self, request_rate: float, prompt_tokens_rate: float, output_tokens_rate: float, fallback: tuple[float, float]
    ) -> float:
        """Capacity for the mix the traffic shows now, or for `fallback` (prompt, output means) without traffic."""
        if (
            request_rate > 0
            and math.isfinite(prompt_tokens_rate)
            and math.isfinite(output_tokens_rate)
            and output_tokens_rate > 0
        ):
            return self.at(prompt_tokens_rate / request_rate, output_tokens_rate / request_rate)
        return self.at(*fallback)
