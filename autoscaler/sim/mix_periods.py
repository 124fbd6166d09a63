"""Periods of a request trace with one length mix: fixed windows grouped by their mean prompt and output lengths, so
the fluid mode measures one load table per distinct mix (the engine decodes a batch of short prompts and long
answers at a different pace than the trace's mean mix) and not one per window."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

WINDOW_S = 300.0  # the mix is read over windows this long
TOLERANCE = 0.2  # a window joins a period whose mean lengths are within this (natural log, about 22%) of its own


@dataclass(frozen=True)
class MixPeriods:
    """Which period (0..count-1) each window and each request belongs to; period 0 holds the trace's first window."""

    window_s: float
    period_of_window: np.ndarray  # int, one per window
    period_of_request: np.ndarray  # int, one per request

    @property
    def count(self) -> int:
        return int(self.period_of_window.max(initial=0)) + 1

    def period_of_steps(self, steps: int, step_s: float) -> np.ndarray:
        """The period of each simulation step (by its start); steps past the last window keep the last one."""
        window = np.minimum(
            (np.arange(steps) * step_s // self.window_s).astype(np.int64), len(self.period_of_window) - 1
        )
        return self.period_of_window[window]


def mix_periods(
    arrival_s: np.ndarray,
    prompt_tokens: np.ndarray,
    output_tokens: np.ndarray,
    window_s: float = WINDOW_S,
    tolerance: float = TOLERANCE,
) -> MixPeriods:
    """Windows in time order, each joined to the period whose pooled mean prompt and output lengths are nearest its own
    (largest of the two log ratios) if within `tolerance`, else the start of a new period. A window without requests
    keeps the period before it. A trace whose mix holds steady is one period: the whole trace."""
    if not (window_s > 0 and math.isfinite(window_s)):
        raise ValueError(f"mix window must be a positive number of seconds, got {window_s!r}")
    if not (tolerance >= 0 and math.isfinite(tolerance)):
        raise ValueError(f"mix tolerance must be a non-negative number, got {tolerance!r}")
    arrival_s = np.asarray(arrival_s, dtype=np.float64)
    if len(arrival_s) == 0:
        return MixPeriods(window_s, np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int64))
    # the last window takes the trace's tail: a window of a few requests would measure a table on a handful of lengths
    windows = max(1, int(round(float(arrival_s.max()) / window_s)))
    window = np.minimum((arrival_s // window_s).astype(np.int64), windows - 1)
    per_window = lambda values: np.bincount(window, weights=np.asarray(values, dtype=np.float64), minlength=windows)
    requests, prompts, outputs = (
        per_window(np.ones(len(arrival_s))),
        per_window(prompt_tokens),
        per_window(output_tokens),
    )
    sums: list[list[float]] = []  # per period: requests, prompt tokens, output tokens
    period_of_window = np.zeros(windows, dtype=np.int64)
    for k in range(windows):
        if requests[k] == 0:  # idle: the period before it (leading idle windows: the first one)
            period_of_window[k] = period_of_window[k - 1] if k else 0
            continue
        here = (_log_mean(prompts[k], requests[k]), _log_mean(outputs[k], requests[k]))
        nearest, distance = -1, math.inf
        for p, (n, prompt, output) in enumerate(sums):
            d = max(abs(here[0] - _log_mean(prompt, n)), abs(here[1] - _log_mean(output, n)))
            if d < distance:
                nearest, distance = p, d
        if distance > tolerance:
            sums.append([0.0, 0.0, 0.0])
            nearest = len(sums) - 1
        totals = sums[nearest]
        totals[0] += requests[k]
        totals[1] += prompts[k]
        totals[2] += outputs[k]
        period_of_window[k] = nearest
    return MixPeriods(window_s, period_of_window, period_of_window[window])


def _log_mean(tokens: float, requests: float) -> float:
    return math.log(max(tokens / requests, 1.0))  # a mean under one token (empty answers) reads as one
