"""What load-table replicas served, step by step: the rows a scrape folds into vLLM's TTFT buckets and ITL sums,
and the summary's fine histograms and per-step SLO attainment."""

from __future__ import annotations

import numpy as np

from autoscaler.sim.fluid.dynamics import ReplicaDynamics
from autoscaler.sim.fluid.summary import FINE, fine_histogram, ttft_histogram
from serving.contracts.vllm_metrics import TTFT_BUCKETS

FOLD_ROWS = 4096  # served rows kept before they are folded into the summary's histograms


class Served:
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
        self.ttft_fine = np.zeros(len(FINE) + 1)
        self.itl_fine = np.zeros(len(FINE) + 1)
        self.itl_sum = self.itl_count = 0.0
        self.met_steps: list[np.ndarray] = []
        self.met_values: list[np.ndarray] = []

    def add(self, step: int, states: np.ndarray, requests: np.ndarray, waits: np.ndarray) -> None:
        """`requests` joined replicas in `states` during `step`, waiting `waits` seconds behind a burst's prefills."""
        if len(states) > 4:  # a fleet of hundreds sits in a few states (least outstanding requests levels them)
            states, requests, waits = merge_alike(states, requests, waits)
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
        self.ttft_counts += ttft_histogram(points.ravel(), per_point)
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
        if self.unfolded_rows >= FOLD_ROWS:
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
        self.ttft_fine += fine_histogram(points_judged.ravel(), np.repeat(weights_judged / quantiles, quantiles))
        self.itl_fine += fine_histogram(itl_judged, weights_judged)
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


def merge_alike(
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
