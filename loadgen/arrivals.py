"""Open-loop arrival times for a rate that follows a shape: constant spacing, Poisson or gamma (bursty).

Arrivals are drawn in operational time (the integral of the rate), then mapped back to wall time, so any
rate shape works with any process. The count is fixed first, at the integral of the rate rounded, so a run
sends what the shape asks for; the times never depend on how fast the server answers.
"""

from __future__ import annotations

import numpy as np

PROCESSES = ("constant", "poisson", "gamma")


def cumulative_rate(rate_at, duration_s: float, resolution_s: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """(times, expected arrivals by then) on a fine grid, by the trapezoid rule."""
    steps = max(2, int(np.ceil(duration_s / resolution_s)) + 1)
    times = np.linspace(0.0, duration_s, steps)
    rates = np.maximum(np.asarray(rate_at(times), dtype=np.float64), 0.0)
    cumulative = np.concatenate([[0.0], np.cumsum((rates[1:] + rates[:-1]) * np.diff(times) / 2)])
    return times, cumulative


def arrival_times(rate_at, duration_s: float, process: str = "poisson", cv: float = 1.0, seed: int = 0) -> np.ndarray:
    """Sorted arrival times in [0, duration_s) for the rate function `rate_at(times) -> req/s`.

    `cv` is the coefficient of variation of inter-arrival gaps for `gamma` (1 is Poisson, above 1 bursty)."""
    if process not in PROCESSES:
        raise ValueError(f"arrival process must be one of {', '.join(PROCESSES)}, got {process!r}")
    if process == "gamma" and cv <= 0:
        raise ValueError(f"gamma arrivals need cv > 0, got {cv}")
    times, cumulative = cumulative_rate(rate_at, duration_s)
    total = cumulative[-1]
    count = int(round(total))
    if count == 0:
        return np.zeros(0)
    rng = np.random.default_rng(seed)
    if process == "constant":
        operational = (np.arange(count) + 0.5) * (total / count)
    elif process == "poisson":  # given the count, Poisson arrivals are uniform order statistics
        operational = np.sort(rng.uniform(0.0, total, count))
    else:
        shape = 1.0 / cv**2
        gaps = rng.gamma(shape, 1.0 / shape, count + 1)  # mean 1, CV as asked; the first gap is the phase
        edges = np.cumsum(gaps)
        operational = edges[:-1] / edges[-1] * total
    # back to wall time: the inverse of the cumulative rate (flat stretches, where the rate is 0, are skipped)
    keep = np.concatenate([[True], np.diff(cumulative) > 0])
    return np.minimum(np.interp(operational, cumulative[keep], times[keep]), np.nextafter(duration_s, 0.0))
