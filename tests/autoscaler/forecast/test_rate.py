"""Rate forecast: the last value on short history, the daily profile ahead of a ramp, an upper bound whose
coverage comes from its own errors, and broken readings ignored."""

import math

import numpy as np
import pytest

from autoscaler.forecast.rate import DAY_S, ForecastConfig, RateForecaster


def feed(forecaster, times, rates, horizon):
    out = []
    for t, r in zip(times, rates):
        forecaster.observe(t, r)
        out.append(forecaster.forecast(t, horizon))
    return out


def test_short_history_gives_the_last_value_with_the_default_margin():
    f = RateForecaster()
    f.observe(0.0, 10.0)
    fc = f.forecast(0.0, 150.0)
    assert fc.point == 10.0 and fc.level == 10.0 and fc.seasonal_ratio == 1.0
    assert fc.upper == fc.point * ForecastConfig().default_margin


def test_a_rising_trend_is_carried_into_the_horizon_and_a_falling_one_is_not():
    up, down = RateForecaster(), RateForecaster()
    times = np.arange(0, 600, 15.0)
    assert feed(up, times, 10 + times / 60, 150.0)[-1].point > 10 + times[-1] / 60
    assert feed(down, times, 30 - times / 60, 150.0)[-1].point == 30 - times[-1] / 60


def test_the_daily_profile_anticipates_a_ramp_the_last_value_would_miss():
    """A step from 10 to 40 req/s at 09:00 every day: on day 3, ten minutes before the step, the forecast over a
    20-minute horizon already expects the step."""
    f = RateForecaster()
    times = np.arange(0, 2 * DAY_S + 8.8 * 3600, 15.0)
    rates = np.where((times % DAY_S) >= 9 * 3600, 40.0, 10.0)
    rates = np.where((times % DAY_S) >= 18 * 3600, 10.0, rates)
    fc = feed(f, times, rates, 1200.0)[-1]
    assert fc.level == 10.0
    assert fc.point >= 35.0 and fc.seasonal_ratio >= 3.5


def test_upper_bound_coverage_on_noisy_traffic_meets_its_quantile():
    """Gamma-noisy traffic around a daily sine: once errors accumulate, the actual horizon peak stays under the
    upper bound about as often as the quantile says (judged on the last two days of five)."""
    rng = np.random.default_rng(1)
    f = RateForecaster(ForecastConfig(quantile=0.95))
    times = np.arange(0, 5 * DAY_S, 60.0)
    mean = 50 + 30 * np.sin(2 * np.pi * times / DAY_S)
    rates = rng.gamma(25.0, mean / 25.0)
    horizon = 180.0
    forecasts = feed(f, times, rates, horizon)
    covered = total = 0
    for i, t in enumerate(times):
        if t < 3 * DAY_S or t + horizon > times[-1]:
            continue
        peak = rates[(times > t) & (times <= t + horizon)].max()
        covered += peak <= forecasts[i].upper
        total += 1
    assert 0.93 <= covered / total <= 0.99


def test_nan_and_negative_readings_are_ignored():
    f = RateForecaster()
    f.observe(0.0, 5.0)
    f.observe(15.0, math.nan)
    f.observe(30.0, -1.0)
    assert f.forecast(30.0, 150.0).level == 5.0


def test_on_bursty_traffic_the_upper_bound_remembers_recent_bursts():
    """Quiet minutes broken by one-minute bursts: the forecaster's own errors mark the traffic unpredictable, and in
    a quiet minute its upper bound still holds the last burst's rate (it may come again at any moment)."""
    f = RateForecaster()
    times = np.arange(0, 3600, 15.0)
    rates = np.where((times % 600) < 60, 40.0, 0.5)
    forecasts = feed(f, times, rates, 150.0)
    quiet_late = [fc for t, fc in zip(times, forecasts) if t > 1800 and (t % 600) > 300]
    assert all(fc.upper >= 40.0 for fc in quiet_late)
    assert all(fc.point < 5.0 for fc in quiet_late)  # the point forecast itself does not pretend to know


def test_smooth_traffic_keeps_a_tight_bound():
    rng = np.random.default_rng(2)
    f = RateForecaster()
    times = np.arange(0, 4 * 3600, 15.0)
    forecasts = feed(f, times, rng.normal(100.0, 2.0, len(times)), 150.0)
    assert forecasts[-1].upper < 115.0


def test_replay_warm_starts_the_profile_and_the_errors():
    """A week of history replayed at start-up: the first live forecast already knows tomorrow's ramp and has its
    errors (the upper bound is no longer the default margin)."""
    times = np.arange(0, 7 * DAY_S, 60.0)
    rates = np.where((times % DAY_S) >= 9 * 3600, 40.0, 10.0) + np.sin(times) * 0.5
    f = RateForecaster()
    assert f.replay(times, rates, 1200.0) == len(times)
    now = 7 * DAY_S + 8.8 * 3600
    f.observe(now, 10.0)
    fc = f.forecast(now, 1200.0)
    assert fc.point >= 35.0 and fc.errors > 1000


def test_a_lull_forecast_as_zero_then_traffic_again_counts_as_a_large_error():
    """Five minutes of traffic, three of silence, then a burst: the forecasts made in the silence (point 0) are
    scored against a share of the recent high, so the burst after them weighs as a large error instead of none; the
    silence before any traffic has no level to err from and is not scored."""
    times = np.arange(0, 900, 15.0)
    rates = np.select([times < 60, times < 360, times < 540], [0.0, 10.0, 0.0], 40.0)
    f = RateForecaster()
    feed(f, times, rates, 150.0)
    scored = f._errors
    assert max(scored) == pytest.approx(40.0 / (ForecastConfig().lull_share * 10.0))  # 0 forecast, recent high 10
    assert sum(e >= 10.0 for e in scored) >= 5  # every silent forecast whose horizon met the burst
    quiet_start = RateForecaster()
    feed(quiet_start, times[times < 360], rates[times < 360], 150.0)
    assert max(quiet_start._errors) < 10.0  # the quiet opening: nothing seen yet, nothing to err from
