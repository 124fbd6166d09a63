"""Holt-Winters (statsmodels) as the forecaster the predictive policy could have used: fitted on the learning days
and run forward with those parameters, its upper bound from its own in-sample errors; judged like ours."""

from __future__ import annotations

import warnings

import numpy as np

BIN_S = 300.0  # statsmodels runs on 5-minute means, as our forecaster keeps its history
DAY_BINS = int(86400 / BIN_S)


def horizon_peaks(rates: np.ndarray, ahead: int) -> np.ndarray:
    """peaks[i] = the highest rate in (i, i + ahead], NaN where the horizon runs past the end."""
    out = np.full(len(rates), np.nan)
    if len(rates) > ahead:
        out[: len(rates) - ahead] = np.lib.stride_tricks.sliding_window_view(rates[1:], ahead).max(axis=1)
    return out


def _bin_means(rates: np.ndarray, step_s: float) -> np.ndarray:
    per_bin = int(round(BIN_S / step_s))
    whole = len(rates) // per_bin * per_bin
    return rates[:whole].reshape(-1, per_bin).mean(axis=1)


def _model(series: np.ndarray):
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    seasonal = "mul" if series.min() > 0 else "add"
    return ExponentialSmoothing(
        series,
        trend="add",
        damped_trend=True,
        seasonal=seasonal,
        seasonal_periods=DAY_BINS,
        initialization_method="heuristic",
    ), seasonal


def holt_winters_points(rates: np.ndarray, step_s: float, horizon_s: float, learn_s: float) -> np.ndarray:
    """For every control step, Holt-Winters' forecast of the horizon: the larger of its forecasts for the 5-minute
    bins the horizon touches, made from the bins completed by then (never a bin still in progress)."""
    bins = _bin_means(rates, step_s)
    learn = int(learn_s / BIN_S)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels' convergence chatter
        model, _ = _model(bins[:learn])
        fitted = model.fit()
        params = fitted.params
        # the same parameters and initial state over the whole series: each state uses only bins before it
        full = type(model)(
            bins,
            trend="add",
            damped_trend=True,
            seasonal=model.seasonal,
            seasonal_periods=DAY_BINS,
            initialization_method="known",
            initial_level=params["initial_level"],
            initial_trend=params["initial_trend"],
            initial_seasonal=params["initial_seasons"],
        ).fit(
            smoothing_level=params["smoothing_level"],
            smoothing_trend=params["smoothing_trend"],
            smoothing_seasonal=params["smoothing_seasonal"],
            damping_trend=params["damping_trend"],
            optimized=False,
        )
    level, trend, season = (np.asarray(x) for x in (full.level, full.trend, full.season))
    phi, multiplicative = params["damping_trend"], model.seasonal == "mul"

    def ahead(done: int, steps: int) -> float:
        """Forecast for bin done + steps - 1 from the state after bin done - 1 (statsmodels' forecast equation)."""
        if done <= 0:
            return float("nan")
        damped = sum(phi**k for k in range(1, steps + 1))
        base = level[done - 1] + damped * trend[done - 1]
        s = season[done - 1 + steps - DAY_BINS] if done - 1 + steps - DAY_BINS >= 0 else np.nan
        return float(base * s if multiplicative else base + s)

    points = np.full(len(rates), np.nan)
    for i in range(len(rates)):
        t = i * step_s
        done = int(t // BIN_S)  # bins complete at t
        last = int((t + horizon_s) // BIN_S)
        points[i] = max(ahead(done, steps) for steps in range(1, last - done + 2))
    return points


def quality(points: np.ndarray, uppers: np.ndarray, peaks: np.ndarray) -> dict:
    """Median absolute percentage error of the point, the upper bound's coverage, and its mean excess over the peak
    (what planning to it costs)."""
    keep = np.isfinite(points) & np.isfinite(peaks) & np.isfinite(uppers) & (peaks > 0)
    p, u, a = points[keep], uppers[keep], peaks[keep]
    return {
        "mape": float(np.median(np.abs(p - a) / a)),
        "coverage": float(np.mean(a <= u + 1e-9)),
        "excess": float(np.mean(u / a) - 1.0),
        "forecasts": int(keep.sum()),
    }


def holt_winters_quality(
    rates: np.ndarray, step_s: float, horizon_s: float, learn_s: float, coverage: float = 0.97
) -> dict:
    """Judged after `learn_s`; the upper bound is the point times the `coverage` quantile of peak / point over the
    learning days (the same kind of margin ours learns online)."""
    ahead = int(round(horizon_s / step_s))
    peaks = horizon_peaks(rates, ahead)
    points = holt_winters_points(rates, step_s, horizon_s, learn_s)
    learning = np.arange(len(rates)) * step_s < learn_s
    ok = learning & np.isfinite(points) & np.isfinite(peaks) & (points > 0)
    margin = float(np.quantile(peaks[ok] / points[ok], coverage))
    judged = ~learning
    return quality(points[judged], points[judged] * margin, peaks[judged]) | {"margin": margin}
