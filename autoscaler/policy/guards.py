"""Guard-rails around a replica recommendation, each a small pure function (tested alone): bounds, step caps,
scale-down stabilization, the N-1 check, hold on stale data, cooldown. Each returns the count and, when it
changed it, why."""

from __future__ import annotations

import math


def bounded(desired: int, low: int, high: int) -> tuple[int, str | None]:
    """Never below min or above max."""
    if desired < low:
        return low, f"raised to min {low}"
    if desired > high:
        return high, f"capped at max {high}"
    return desired, None


def step_capped(desired: int, current: int, up_max: int, down_max: int) -> tuple[int, str | None]:
    """At most `up_max` replicas added and `down_max` removed per decision."""
    if desired > current + up_max:
        return current + up_max, f"step capped at +{up_max}"
    if desired < current - down_max:
        return current - down_max, f"step capped at -{down_max}"
    return desired, None


def stabilized(history: tuple[tuple[float, int], ...], now: float, window_s: float) -> int:
    """The highest recommendation within the last `window_s` (the HPA's scale-down stabilization): a count goes
    down only after the load has stayed low for the whole window."""
    return max(count for t, count in history if t > now - window_s)


def absorbs_without_one(count: int, peak_rate: float, capacity_rps: float, headroom: float) -> bool:
    """Whether `count` replicas carry `peak_rate` with every replica at most `headroom` of its capacity."""
    return count >= 1 and peak_rate <= count * capacity_rps * headroom


def fewest_absorbing(
    current: int, target: int, peak_rate: float, capacity_rps: float, headroom: float
) -> tuple[int, str | None]:
    """Scale down from `current` toward `target` only as far as the remaining replicas absorb the load with headroom."""
    if target >= current:
        return target, None
    floor = max(target, math.ceil(peak_rate / (capacity_rps * headroom)) if capacity_rps > 0 else current)
    if floor >= current:
        return current, f"held at {current}: {current - 1} would run above {headroom:.0%} of capacity"
    return floor, None if floor == target else f"down only to {floor}: fewer would run above {headroom:.0%} of capacity"


def headroom_after_rise(
    headroom: float, after_rise: float, last_rise_s: float | None, now: float, memory_s: float
) -> float:
    """The scale-down headroom: `after_rise` within `memory_s` of a scale-up, else `headroom` (a replica asked for
    minutes ago goes again only when the load has clearly fallen)."""
    recently = last_rise_s is not None and now - last_rise_s < memory_s
    return after_rise if recently else headroom


def held_if_stale(desired: int, current: int, stale: bool) -> tuple[int, str | None]:
    """On stale or missing metrics: scale up if asked (from what is known), never down."""
    if stale and desired < current:
        return current, "held: metrics stale or missing (never scale down on missing data)"
    return desired, None


def cooled_down(
    desired: int, current: int, last_change_s: float | None, now: float, cooldown_s: float
) -> tuple[int, str | None]:
    """No scale-down within `cooldown_s` of the last change (scale-up is never delayed)."""
    if desired < current and last_change_s is not None and now - last_change_s < cooldown_s:
        return current, f"held: {now - last_change_s:.0f} s since the last change (cooldown {cooldown_s:g} s)"
    return desired, None
