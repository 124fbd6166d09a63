"""Per-replica capacity at the SLO over length mixes: measured once on the engine model on a grid of mean prompt and
output lengths (log-normal lengths around each mean), then looked up for the mix the traffic shows now (prompt and
output token rates over the request rate), interpolated in log space. Pure: cells come from a `measure` callable
(autoscaler.capacity.mix_cells.engine_cell runs the engine), or from a `pending` one that answers at once and measures
elsewhere (headroom.capacity_cells), so that no autoscaler pass waits on the engine."""

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
    # without waiting: the cell's value once measured, else None while it is being measured (the first call starts it)
    pending: Callable[[float, float], float | None] | None = field(default=None, compare=False, repr=False)

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

    def known(self, i: int, j: int) -> float | None:
        """The cell if it is known or can be had without waiting; None while it is being measured."""
        if (i, j) not in self.cells and self.pending is not None:
            value = self.pending(self.prompt_means[i], self.output_means[j])
            if value is None:
                return None
            self.cells[(i, j)] = max(1e-3, float(value))
        return self.cell(i, j)

    def at_now(self, prompt_mean: float, output_mean: float) -> float:
        """As `at`, but what is known now: corners still being measured are left out and the others' weights scaled
        back to one; with none of them known, the measured cell nearest in log(length) (an estimate, briefly)."""
        corners, weights = log_bilinear_corners(self.prompt_means, self.output_means, prompt_mean, output_mean)
        known = [(w, self.known(i, j)) for w, (i, j) in zip(weights, corners) if w > 0]
        known = [(w, c) for w, c in known if c is not None]
        total = sum(w for w, _ in known)
        if total > 0:
            return float(math.exp(sum(w * math.log(c) for w, c in known) / total))
        if not self.cells:  # nothing measured at all: wait for the corners after all
            return self.at(prompt_mean, output_mean)
        return self.cells[self._nearest_known(prompt_mean, output_mean)]

    def _nearest_known(self, prompt_mean: float, output_mean: float) -> tuple[int, int]:
        x, y = math.log(max(prompt_mean, 1.0)), math.log(max(output_mean, 1.0))

        def distance(cell: tuple[int, int]) -> float:
            i, j = cell
            return math.hypot(math.log(self.prompt_means[i]) - x, math.log(self.output_means[j]) - y)

        return min(self.cells, key=distance)

    def for_rates(
        self, request_rate: float, prompt_tokens_rate: float, output_tokens_rate: float, fallback: tuple[float, float]
    ) -> float:
        """Capacity for the mix the traffic shows now, or for `fallback` (prompt, output means) without traffic; as
        known now (`at_now`)."""
        if (
            request_rate > 0
            and math.isfinite(prompt_tokens_rate)
            and math.isfinite(output_tokens_rate)
            and output_tokens_rate > 0
        ):
            return self.at_now(prompt_tokens_rate / request_rate, output_tokens_rate / request_rate)
        return self.at_now(*fallback)
