"""Request-rate forecast over a horizon: the last level, shaped by the daily and weekly profile where history has
one, with an upper bound from the forecaster's own recent errors (an empirical quantile, so its coverage holds by
construction once enough errors are in). Pure: time comes with each observation; state is the history itself."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

DAY_S = 86400.0
WEEK_S = 7 * DAY_S


@dataclass(frozen=True)
class ForecastConfig:
    bin_s: float = 300.0  # history is kept as the mean rate per bin of this length
    seasons_s: tuple[float, ...] = (DAY_S, WEEK_S)  # used once history covers them
    history_s: float = 15 * DAY_S  # bins older than this are dropped
    quantile: float = 0.97  # the upper bound's target coverage
    errors_kept: int = 4000  # recent forecast errors behind the quantile
    errors_needed: int = 20  # fewer than this: the default margin below...
    errors_trusted: int = 100  # ...and with n errors, their quantile weighs n / (n + this) against it
    max_margin: float = 3.0  # upper / point at most on smooth traffic...
    bursty_margin: float = 1.25  # ...and on bursty traffic, where the recent high carries the rest
    default_margin: float = 1.25  # upper bound / point while errors are few
    trend_window_s: float = 600.0  # the recent slope, used where no season is known yet
    burst_margin: float = 2.0  # an upper margin above this marks unpredictable (bursty) traffic...
    burst_memory_s: float = 1800.0  # ...whose upper bound is then at least the highest rate seen this long back
    trend_damping: float = 0.5  # share of the recent slope carried into the horizon
    lull_share: float = 0.05  # a forecast is scored against at least this share of the recent high: a lull forecast
    # as zero, then traffic again, is the largest error of all, not one to skip...
    max_error: float = 100.0  # ...and each error is capped here (so a lull weighs as "very bursty", not infinity)


@dataclass(frozen=True)
class Forecast:
    point: float  # expected peak request rate over the horizon (req/s)
    upper: float  # the `quantile` upper bound of it
    recent_high: float  # the highest rate observed within burst_memory_s
    level: float  # the rate now
    seasonal_ratio: float  # profile(horizon) / profile(now); 1 without a season
    errors: int  # forecast errors behind the upper bound


@dataclass
class RateForecaster:
    """Feed `observe(time, rate)` once per control interval; `forecast(time, horizon)` gives the peak rate expected
    in (time, time + horizon]. Each forecast is scored when its horizon has passed: actual peak / point forecast."""

    config: ForecastConfig = field(default_factory=ForecastConfig)
    _bins: dict[int, list[float]] = field(default_factory=dict)  # bin index -> [sum, count]
    _recent: list[tuple[float, float]] = field(default_factory=list)  # (time, rate) within the trend window
    _highs: list[tuple[float, float]] = field(default_factory=list)  # (time, rate), decreasing, within burst memory
    _pending: list[tuple[float, float, float]] = field(default_factory=list)  # (made at, horizon end, scored point)
    _peaks: list[tuple[float, float]] = field(default_factory=list)  # observations not yet past every pending horizon
    _errors: list[float] = field(default_factory=list)
    _first_s: float | None = None

    def observe(self, time_s: float, rate: float) -> None:
        if not math.isfinite(rate) or rate < 0:
            return  # a stale or broken reading teaches nothing
        cfg = self.config
        if self._first_s is None:
            self._first_s = time_s
        index = int(time_s // cfg.bin_s)
        cell = self._bins.setdefault(index, [0.0, 0.0])
        cell[0] += rate
        cell[1] += 1.0
        if len(self._bins) > cfg.history_s / cfg.bin_s + 2:
            for old in [k for k in self._bins if k < index - cfg.history_s / cfg.bin_s]:
                del self._bins[old]
        self._recent.append((time_s, rate))
        while self._recent and self._recent[0][0] < time_s - cfg.trend_window_s:
            self._recent.pop(0)
        while self._highs and self._highs[-1][1] <= rate:  # a monotone queue: the window's maximum is at the front
            self._highs.pop()
        self._highs.append((time_s, rate))
        while self._highs[0][0] < time_s - cfg.burst_memory_s:
            self._highs.pop(0)
        self._score(time_s, rate)

    def _score(self, time_s: float, rate: float) -> None:
        """Close the forecasts whose horizon has passed with the highest rate seen inside it."""
        self._peaks.append((time_s, rate))
        still = []
        for made, end, point in self._pending:
            if end <= time_s:
                peak = max((r for t, r in self._peaks if made < t <= end), default=rate)
                if point > 0:
                    self._errors.append(min(peak / point, self.config.max_error))
            else:
                still.append((made, end, point))
        self._pending = still
        oldest = min((made for made, _, _ in self._pending), default=time_s)
        self._peaks = [(t, r) for t, r in self._peaks if t > oldest]
        if len(self._errors) > self.config.errors_kept:
            del self._errors[: len(self._errors) - self.config.errors_kept]

    @property
    def proven(self) -> bool:
        """Whether enough forecasts are scored for their errors to say how far the traffic can be trusted."""
        return len(self._errors) >= self.config.errors_needed

    @property
    def history_s(self) -> float:
        if self._first_s is None or not self._recent:
            return 0.0
        return self._recent[-1][0] - self._first_s

    def _profile(self, time_s: float, season_s: float) -> float | None:
        """The mean binned rate at the same phase of earlier seasons (up to two back), interpolated between bins."""
        cfg = self.config
        values = []
        for back in (1, 2):
            at = time_s - back * season_s
            position = at / cfg.bin_s - 0.5  # bin centres
            lo = math.floor(position)
            w = position - lo
            a, b = self._bins.get(lo), self._bins.get(lo + 1)
            if a is None or b is None:
                continue
            values.append((1 - w) * a[0] / a[1] + w * b[0] / b[1])
        return sum(values) / len(values) if values else None

    def _seasonal_ratio(self, time_s: float, horizon_s: float) -> float | None:
        """How much the busiest part of the coming horizon exceeds now, as earlier seasons saw it (the longest season
        with history wins: a weekly profile knows weekends)."""
        for season in sorted(self.config.seasons_s, reverse=True):
            now = self._profile(time_s, season)
            if now is None or now <= 0:
                continue
            ahead = [self._profile(time_s + step, season) for step in np.linspace(0.0, horizon_s, 4)[1:]]
            ahead = [a for a in ahead if a is not None]
            if ahead:
                return float(np.clip(max(ahead) / now, 0.25, 4.0))
        return None

    def _trend(self, horizon_s: float) -> float:
        """Recent slope (req/s per s) x horizon, damped; only upward (a falling rate must not scale down early)."""
        if len(self._recent) < 4:
            return 0.0
        t = np.array([p[0] for p in self._recent])
        r = np.array([p[1] for p in self._recent])
        slope = float(np.polyfit(t - t[-1], r, 1)[0])
        return max(0.0, slope * horizon_s * self.config.trend_damping)

    def forecast(self, time_s: float, horizon_s: float) -> Forecast:
        cfg = self.config
        level = self._recent[-1][1] if self._recent else 0.0
        ratio = self._seasonal_ratio(time_s, horizon_s)
        if ratio is None:
            point, ratio = level + self._trend(horizon_s), 1.0
        else:
            point = level * max(1.0, ratio)  # the horizon's peak is at least the rate now
        margin = cfg.default_margin
        n = len(self._errors)
        if self.proven:
            empirical = max(1.0, float(np.quantile(self._errors, cfg.quantile)))
            margin = (cfg.errors_trusted * margin + n * empirical) / (cfg.errors_trusted + n)
        high = self._highs[0][1] if self._highs else level
        # scored against the point, or a share of the recent high in a lull (none before any traffic: nothing to err)
        self._pending.append((time_s, time_s + horizon_s, max(point, cfg.lull_share * high)))
        if margin > cfg.burst_margin:
            # bursty: the errors say the next minutes cannot be told from now, and what came lately may come again at
            # any moment: hold the recent high, and multiply the point only by what a smooth forecast would
            upper = max(point * cfg.bursty_margin, high)
        else:
            upper = point * min(margin, cfg.max_margin)
        return Forecast(point, upper, high, level, ratio, len(self._errors))

    def replay(self, times, rates, horizon_s: float) -> int:
        """Warm start from history (a Prometheus range query, or a trace's rates): observe each sample and forecast
        from it as the loop would, so the profile and the error quantile are learned before the first decision.
        Returns how many samples were taken."""
        taken = 0
        for t, rate in zip(times, rates):
            if math.isfinite(rate) and rate >= 0:
                self.observe(float(t), float(rate))
                self.forecast(float(t), horizon_s)
                taken += 1
        return taken
