"""The planner's arithmetic on synthetic atlases: replicas, GPUs, cost per token, ordering and the reasons for a no."""

import math

import pytest

from autoscaler.planner.core import (
    Candidate,
    Slo,
    Traffic,
    cost_latency_curve,
    plan,
    plan_one,
    replicas_needed,
)
from tests.autoscaler.capacity.test_atlas import cliff_atlas


def candidate(name: str, gpus: int, price: float, saturated: float = 100.0, cliff: float = 0.62) -> Candidate:
    return Candidate(name, "H100", gpus, price, cliff_atlas(cliff, saturated))


def test_replicas_cover_the_rate_at_the_capacity():
    assert replicas_needed(100.0, 25.0) == 4
    assert replicas_needed(100.0, 24.9) == 5
    assert replicas_needed(0.1, 25.0) == 1


def test_a_row_prices_the_gpus_and_the_tokens():
    traffic = Traffic(rate_rps=130.0, prompt_tokens=512, output_tokens=128)
    row = plan_one(traffic, Slo(), candidate("a", gpus=2, price=3.0))
    capacity = row.replica_capacity_rps
    assert row.meets_slo and row.replicas == math.ceil(130.0 / capacity)
    assert row.gpus == 2 * row.replicas and row.cost_per_hour == pytest.approx(3.0 * row.gpus)
    output_millions_per_hour = 130.0 * 128 * 3600 / 1e6
    assert row.cost_per_million_output_tokens == pytest.approx(row.cost_per_hour / output_millions_per_hour)
    assert row.cost_per_million_tokens == pytest.approx(row.cost_per_hour / (130.0 * 640 * 3600 / 1e6))
    assert row.load_per_replica == pytest.approx(130.0 / (row.replicas * capacity))


def test_cheapest_first_then_the_ones_that_cannot():
    traffic = Traffic(100.0, 512, 128)
    rows = plan(
        traffic, Slo(), [candidate("dear", 1, 9.0), candidate("never", 1, 0.1, cliff=0.0), candidate("cheap", 1, 2.0)]
    )
    assert [r.profile for r in rows] == ["cheap", "dear", "never"]
    assert not rows[-1].meets_slo and "no rate of this length mix meets the SLO" in rows[-1].note
    assert math.isnan(rows[-1].cost_per_million_output_tokens)


def test_the_fleet_is_searched_up_from_the_pooled_capacity():
    pooled = Candidate("p", "H100", 1, 1.0, cliff_atlas(0.42, pooled_cliff=0.62))
    row = plan_one(Traffic(200.0, 512, 128), Slo(), pooled)
    assert row.replicas * row.replica_capacity_rps >= 200.0
    assert (row.replicas - 1) * pooled.atlas.capacity(512, 128, *Slo(), replicas=row.replicas - 1) < 200.0
    lone_only = plan_one(Traffic(200.0, 512, 128), Slo(), Candidate("l", "H100", 1, 1.0, cliff_atlas(0.42)))
    assert lone_only.replicas > row.replicas


def test_too_many_replicas_and_an_off_grid_slo_are_a_no_with_the_reason():
    traffic = Traffic(10_000.0, 512, 128)
    row = plan_one(traffic, Slo(), candidate("a", 1, 1.0), max_replicas=8)
    assert not row.meets_slo and "above the 8 allowed" in row.note
    row = plan_one(Traffic(1.0, 512, 128), Slo(ttft_s=0.01), candidate("a", 1, 1.0))
    assert not row.meets_slo and "tighter than the atlas's tightest" in row.note


@pytest.mark.parametrize(
    "kwargs, word", [({"rate_rps": 0}, "rate_rps"), ({"prompt_tokens": math.nan}, "prompt_tokens")]
)
def test_bad_traffic_names_the_field(kwargs, word):
    with pytest.raises(ValueError, match=word):
        Traffic(**{"rate_rps": 1.0, "prompt_tokens": 10.0, "output_tokens": 10.0, **kwargs})


def test_bad_slo_is_refused():
    with pytest.raises(ValueError, match="goal"):
        Slo(goal=1.0)


def test_each_replica_more_costs_more_and_lowers_latency():
    points = cost_latency_curve(Traffic(100.0, 512, 128), Slo(), candidate("a", 1, 2.0), first=2, extra=3)
    assert [p["replicas"] for p in points] == [2, 3, 4, 5]
    assert [p["cost_per_hour"] for p in points] == [4.0, 6.0, 8.0, 10.0]
    itl = [p["itl_p50_s"] for p in points]
    assert itl == sorted(itl, reverse=True)


def test_one_fewer_replica_is_explained_by_its_load_and_where_the_capacity_comes_from():
    measured = plan_one(Traffic(130.0, 512, 128), Slo(), candidate("a", 1, 1.0))
    fewer, capacity = (
        measured.replicas - 1,
        candidate("a", 1, 1.0).atlas.capacity(512, 128, *Slo(), replicas=measured.replicas - 1),
    )
    assert f"{fewer} replica(s) would each carry {130.0 / fewer:.3g} req/s" in measured.why_not_fewer
    assert f"{130.0 / fewer / capacity - 1:.1%} above the {capacity:.3g} req/s" in measured.why_not_fewer
    assert measured.why_not_fewer.endswith("measured at prompts 512 x outputs 128 tokens")
    between = plan_one(Traffic(130.0, 2000, 150), Slo(), candidate("a", 1, 1.0))
    assert between.why_not_fewer.endswith(
        "interpolated between measured mixes of prompts 512-2048 x outputs 128-512 tokens"
    )
    assert plan_one(Traffic(1.0, 512, 128), Slo(), candidate("a", 1, 1.0)).why_not_fewer == ""
