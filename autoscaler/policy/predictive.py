"""Headroom's predictive SLO policy: replicas for the forecast peak one cold start ahead at the SLO capacity of a
replica, a reactive path for bursts the forecast missed, a GPU-utilization term, then the guard-rails. Pure:
`decide(snapshot, state)` reads only its arguments (time comes in the snapshot); the state is the policy's own
history, updated and returned (days of it: kept as a mutable record, not copied every interval)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from autoscaler import defaults
from autoscaler.capacity.mix_table import CapacityTable
from autoscaler.capacity.online import CapacityCorrection, corrected
from autoscaler.forecast.rate import Forecast, ForecastConfig, RateForecaster
from autoscaler.policy import guards
from autoscaler.policy.base import Decision
from autoscaler.snapshot import Snapshot, replica_column


@dataclass(frozen=True)
class PredictiveConfig:
    capacity_rps: float  # requests/s one replica carries within the SLO for the traffic's length mix
    slo_ttft_s: float = defaults.SLO_TTFT_S
    slo_itl_s: float = defaults.SLO_ITL_S
    cold_start_s: float = defaults.COLD_START_S
    interval_s: float = defaults.SCRAPE_INTERVAL_S
    observation_lag_s: float = 45.0  # scrape interval plus half the rate window: how old "now" is
    fill: float = defaults.FILL  # plan each replica for this share of its SLO capacity
    min_replicas: int = defaults.MIN_REPLICAS
    max_replicas: int = defaults.MAX_REPLICAS
    scale_down_window_s: float = (
        defaults.SCALE_DOWN_WINDOW_S
    )  # a lower count must be recommended this long before it is applied...
    # ...and this long while the forecaster has too few errors to know how far a lull can be trusted (the HPA's
    # default window: a policy that knows nothing yet of its traffic is no bolder than the HPA)
    scale_down_window_unproven_s: float = defaults.SCALE_DOWN_WINDOW_UNPROVEN_S
    down_headroom: float = 0.85  # scale down only while the rest stay at most this share of capacity
    cooldown_s: float = defaults.COOLDOWN_S  # no scale-down this soon after a change
    # within rise_memory_s of a scale-up, scale down only while the rest stay at most this share of capacity: the
    # load that asked for a replica minutes ago may well ask again (no up-down-up on a noisy plateau)
    down_headroom_after_rise: float = 0.75
    rise_memory_s: float = defaults.RISE_MEMORY_S
    step_up_max: int = 1000
    step_down_max: int = 1000
    backlog_per_replica: float = 4.0  # queued requests per ready replica that trigger the burst path...
    burst_drain_s: float = (
        15.0  # ...which asks for enough replicas to clear the backlog in this time on top of the load
    )
    gpu_util_high: float = 95.0  # percent: above this mean utilization, add replicas toward gpu_util_target
    gpu_util_target: float = 85.0
    stale_after_s: float = 60.0
    forecast: ForecastConfig = field(default_factory=ForecastConfig)
    correction: CapacityCorrection = field(default_factory=CapacityCorrection)
    # with a table, capacity follows the length mix the traffic shows (token rates over the request rate); capacity_rps
    # is then only the figure for `fallback_mix` (mean prompt, output tokens), used while there is no traffic
    capacity_table: CapacityTable | None = None
    fallback_mix: tuple[float, float] = (1000.0, 200.0)


@dataclass
class PredictiveState:
    forecaster: RateForecaster
    recommendations: tuple[tuple[float, int], ...] = ()
    capacity_factor: float = 1.0
    last_change_s: float | None = None
    last_rise_s: float | None = None
    last_desired: int | None = None
    last_forecast: Forecast | None = None  # for the loop's metrics
    last_capacity_rps: float | None = None


@dataclass(frozen=True)
class Predictive:
    config: PredictiveConfig
    name: str = "predictive"

    @property
    def interval_s(self) -> float:
        return self.config.interval_s

    def initial_state(self) -> PredictiveState:
        return PredictiveState(RateForecaster(self.config.forecast))

    def horizon_s(self) -> float:
        cfg = self.config
        return cfg.cold_start_s + cfg.interval_s + cfg.observation_lag_s

    def decide(self, snapshot: Snapshot, state: PredictiveState) -> tuple[Decision, PredictiveState]:
        cfg, now = self.config, snapshot.time_s
        current = snapshot.desired
        stale = snapshot.stale or snapshot.sample_age_s > cfg.stale_after_s or not math.isfinite(snapshot.arrival_rate)
        reasons: list[str] = []
        if stale:  # nothing new to act on: the last recommendation, but never below the count now
            desired, why = guards.held_if_stale(state.last_desired or current, current, True)
            state.recommendations += ((now, desired),)
            return Decision(desired, (why or "metrics stale or missing: keeping the last recommendation",)), state
        state.forecaster.observe(now, snapshot.arrival_rate)
        base = cfg.capacity_rps
        if cfg.capacity_table is not None:
            base = cfg.capacity_table.for_rates(
                snapshot.arrival_rate, snapshot.prompt_tokens_rate, snapshot.output_tokens_rate, cfg.fallback_mix
            )
        per_replica = snapshot.arrival_rate / max(1, snapshot.ready)
        state.capacity_factor = corrected(
            state.capacity_factor,
            per_replica,
            base,
            snapshot.ttft_p95_s,
            snapshot.itl_mean_s,
            cfg.slo_ttft_s,
            cfg.slo_itl_s,
            cfg.correction,
        )
        capacity = base * state.capacity_factor
        forecast = state.forecaster.forecast(now, self.horizon_s())
        state.last_forecast, state.last_capacity_rps = forecast, capacity
        predictive = math.ceil(forecast.upper / (capacity * cfg.fill)) if capacity > 0 else current
        reasons.append(
            f"forecast peak {forecast.point:.1f} req/s (upper {forecast.upper:.1f}) over {self.horizon_s():.0f} s "
            f"at {capacity:.2f} req/s per replica -> {predictive}"
        )
        desired = predictive
        backlog = snapshot.gateway_queue + snapshot.waiting
        if backlog > cfg.backlog_per_replica * max(1, snapshot.ready):
            # a burst the forecast missed: enough replicas to clear the backlog quickly on top of the load
            burst = math.ceil((forecast.level + backlog / cfg.burst_drain_s) / (capacity * cfg.fill))
            if burst > desired:
                desired = burst
                reasons.append(f"burst: {backlog:.0f} queued -> {burst}")
        if snapshot.replicas:
            util = sum(replica_column(snapshot.replicas, "gpu_util")) / len(snapshot.replicas)
            if util > cfg.gpu_util_high:
                by_util = math.ceil(snapshot.ready * util / cfg.gpu_util_target)
                if by_util > desired:
                    desired = by_util
                    reasons.append(f"GPU utilization {util:.0f}% over {cfg.gpu_util_high:g}% -> {by_util}")
        desired, why = guards.bounded(desired, cfg.min_replicas, cfg.max_replicas)
        reasons += [why] if why else []
        headroom = guards.headroom_after_rise(
            cfg.down_headroom, cfg.down_headroom_after_rise, state.last_rise_s, now, cfg.rise_memory_s
        )
        window = (
            cfg.scale_down_window_s
            if state.forecaster.proven
            else max(cfg.scale_down_window_s, cfg.scale_down_window_unproven_s)
        )
        kept = max(cfg.scale_down_window_s, cfg.scale_down_window_unproven_s)
        state.recommendations = tuple((t, c) for t, c in state.recommendations if t > now - kept) + ((now, desired),)
        if desired < current:
            stable = guards.stabilized(state.recommendations, now, window)
            if stable > desired:
                reasons.append(f"scale-down stabilization: highest of the last {window:g} s is {stable}")
                desired = min(stable, current)
        for rail in (
            lambda d: guards.fewest_absorbing(current, d, forecast.upper, capacity, headroom),
            lambda d: guards.cooled_down(d, current, state.last_change_s, now, cfg.cooldown_s),
            lambda d: guards.step_capped(d, current, cfg.step_up_max, cfg.step_down_max),
            lambda d: guards.bounded(d, cfg.min_replicas, cfg.max_replicas),
        ):
            desired, why = rail(desired)
            if why:
                reasons.append(why)
        if desired != current:
            state.last_change_s = now
        if desired > current:
            state.last_rise_s = now
        state.last_desired = desired
        return Decision(desired, tuple(reasons)), state
