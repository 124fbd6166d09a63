"""The atlas lookup on synthetic cells whose answers are known: crossings, rounding down, interpolation, off-grid."""

import math

import numpy as np
import pytest

from autoscaler.capacity import atlas as grid
from autoscaler.capacity.atlas import (
    Atlas,
    OffGrid,
    between_rates,
    first_crossing,
    floor_index,
)

RATES = np.asarray(grid.RATE_FRACTIONS)
SHAPE = (len(grid.PROMPT_MEANS), len(grid.OUTPUT_MEANS))


def cliff_atlas(
    cliff_share: float, saturated: float = 100.0, itl_at_full: float = 0.1, pooled_cliff: float | None = None
) -> Atlas:
    """Every cell: all requests meet every threshold below `cliff_share` of saturation (`pooled_cliff` in the
    largest fleet, the same by default) and none above; ITL grows linearly with the load up to `itl_at_full`, TTFT
    is 0.1 s throughout."""
    n_t, n_i, n_l = len(grid.TTFT_THRESHOLDS_S), len(grid.ITL_THRESHOLDS_S), len(grid.LEVELS)
    cliffs = [cliff_share] * (len(grid.FLEET_SIZES) - 1) + [cliff_share if pooled_cliff is None else pooled_cliff]
    meets = np.stack([(RATES < c).astype(float)[:, None, None] * np.ones((len(RATES), n_t, n_i)) for c in cliffs])
    itl = np.broadcast_to(np.repeat((itl_at_full * RATES)[:, None], n_l, axis=1), (len(cliffs), len(RATES), n_l))
    ttft = np.full((len(cliffs), len(RATES), n_l), 0.1)
    tile = lambda a: np.broadcast_to(a, (*SHAPE, *a.shape)).copy()
    return Atlas("test", "d", np.full(SHAPE, saturated), tile(meets), tile(ttft), tile(itl))


def test_first_crossing_interpolates_and_ignores_a_late_recovery():
    rates = np.array([1.0, 2.0, 3.0, 4.0])
    assert first_crossing(rates, np.array([1.0, 1.0, 0.98, 1.0]), 0.99) == pytest.approx(2.0 + 1.0 * (0.01 / 0.02))
    assert first_crossing(rates, np.ones(4), 0.99) == 4.0
    assert first_crossing(rates, np.array([0.5, 1.0, 1.0, 1.0]), 0.99) == 0.0


def test_slo_rounds_down_to_the_grid_and_refuses_tighter_than_it():
    assert floor_index(grid.TTFT_THRESHOLDS_S, 1.0, "TTFT") == grid.TTFT_THRESHOLDS_S.index(1.0)
    assert floor_index(grid.TTFT_THRESHOLDS_S, 1.2, "TTFT") == grid.TTFT_THRESHOLDS_S.index(1.0)
    with pytest.raises(OffGrid, match="ITL SLO 0.001 s is tighter"):
        floor_index(grid.ITL_THRESHOLDS_S, 0.001, "ITL")


def test_between_rates_lands_where_the_itl_quantiles_cross_the_threshold():
    levels = len(grid.LEVELS)
    itl = np.stack([np.full(levels, 0.04), np.full(levels, 0.06)])  # every request's ITL moves from 40 to 60 ms
    ttft = np.full((2, levels), 0.1)
    curve = between_rates(ttft, itl, np.array([1.0, 0.0]), 1.0, 0.05)
    crossing = first_crossing(np.linspace(0.0, 1.0, grid.SUBSTEPS + 1), curve, 0.99)
    assert crossing == pytest.approx(0.5, abs=1.0 / grid.SUBSTEPS)


def test_capacity_of_a_cliff_atlas_at_its_itl_crossing():
    atlas = cliff_atlas(cliff_share=0.62, itl_at_full=0.1)
    # measured: meets at 0.6, misses at 0.7; the ITL quantiles cross 0.05 s at half load, before 0.6: the measured
    # attainment rules at the ends, so the crossing lies within (0.6, 0.7) of the 100 req/s saturation
    capacity = atlas.capacity(512, 128, 1.0, 0.05, 0.99)
    assert 60.0 <= capacity <= 70.0
    assert atlas.cell_capacity(0, 0, 1.0, 0.05, 0.99) == pytest.approx(capacity)


def test_a_mix_no_rate_serves_has_zero_capacity_and_says_how_far_off():
    atlas = cliff_atlas(cliff_share=0.0)
    assert atlas.capacity(512, 128, 1.0, 0.05, 0.99) == 0.0
    assert atlas.light_load_attainment(512, 128, 1.0, 0.05) == 0.0


def test_latency_grows_with_load_and_is_infinite_past_the_measured_rates():
    atlas = cliff_atlas(cliff_share=0.0)  # no capacity at the SLO: read at shares of the saturated throughput
    _, itl_light = atlas.latency(512, 128, 10.0, 1.0, 0.05, 0.99)
    _, itl_heavy = atlas.latency(512, 128, 80.0, 1.0, 0.05, 0.99)
    assert itl_light == pytest.approx(0.01) and itl_heavy == pytest.approx(0.08)
    assert atlas.latency(512, 128, 99.0, 1.0, 0.05, 0.99) == (math.inf, math.inf)
    capped = cliff_atlas(cliff_share=0.62)
    capacity = capped.capacity(512, 128, 1.0, 0.05, 0.99)
    _, at_capacity = capped.latency(512, 128, capacity, 1.0, 0.05, 0.99)
    assert at_capacity == pytest.approx(0.1 * capacity / 100.0)


def test_lengths_between_cells_interpolate_in_log_space():
    atlas = cliff_atlas(cliff_share=0.62)
    saturated = atlas.saturated_rps.copy()
    saturated[1, :] = 400.0  # the 512-token prompt row
    atlas = Atlas("test", "d", saturated, atlas.attainment, atlas.ttft_quantiles, atlas.itl_quantiles)
    between = math.sqrt(128.0 * 512.0)
    assert atlas.saturated(between, 128) == pytest.approx(200.0)
    assert atlas.saturated(10.0, 128) == pytest.approx(100.0)  # clamped to the grid's edge


def test_a_pooled_fleet_carries_more_per_replica_between_the_sizes():
    atlas = cliff_atlas(cliff_share=0.42, pooled_cliff=0.62)
    lone, pooled = atlas.capacity(512, 128, 1.0, 0.05, 0.99), atlas.capacity(512, 128, 1.0, 0.05, 0.99, replicas=8)
    assert 30.0 <= lone <= 45.0 and 60.0 <= pooled <= 70.0
    middle = atlas.capacity(512, 128, 1.0, 0.05, 0.99, replicas=3)
    assert middle == pytest.approx(math.exp(math.log(lone) + math.log(3) / math.log(8) * math.log(pooled / lone)))
    assert atlas.capacity(512, 128, 1.0, 0.05, 0.99, replicas=100) == pytest.approx(pooled)
