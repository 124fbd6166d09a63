"""Each guard-rail alone."""

from autoscaler.policy import guards


def test_bounds():
    assert guards.bounded(0, 1, 10) == (1, "raised to min 1")
    assert guards.bounded(12, 1, 10) == (10, "capped at max 10")
    assert guards.bounded(5, 1, 10) == (5, None)


def test_step_caps():
    assert guards.step_capped(20, 4, 4, 2)[0] == 8
    assert guards.step_capped(1, 8, 4, 2)[0] == 6
    assert guards.step_capped(7, 8, 4, 2) == (7, None)


def test_stabilization_takes_the_highest_recent_recommendation():
    history = ((0.0, 9), (60.0, 5), (100.0, 4))
    assert guards.stabilized(history, 110.0, 120.0) == 9
    assert guards.stabilized(history, 130.0, 120.0) == 5


def test_scale_down_only_as_far_as_the_rest_absorb_the_load():
    # 10 req/s at 2 req/s per replica and 80% headroom needs 7
    assert guards.fewest_absorbing(10, 4, 10.0, 2.0, 0.8) == (
        7,
        "down only to 7: fewer would run above 80% of capacity",
    )
    assert guards.fewest_absorbing(7, 4, 10.0, 2.0, 0.8)[0] == 7
    assert guards.fewest_absorbing(10, 8, 10.0, 2.0, 0.8) == (8, None)
    assert guards.fewest_absorbing(5, 9, 10.0, 2.0, 0.8) == (9, None)  # scale-up untouched
    assert guards.absorbs_without_one(7, 10.0, 2.0, 0.8) and not guards.absorbs_without_one(6, 10.0, 2.0, 0.8)


def test_stale_data_never_scales_down_but_may_scale_up():
    assert guards.held_if_stale(3, 6, True)[0] == 6
    assert guards.held_if_stale(8, 6, True) == (8, None)
    assert guards.held_if_stale(3, 6, False) == (3, None)


def test_cooldown_delays_only_scale_down():
    assert guards.cooled_down(3, 6, 100.0, 130.0, 60.0)[0] == 6
    assert guards.cooled_down(3, 6, 100.0, 170.0, 60.0) == (3, None)
    assert guards.cooled_down(9, 6, 100.0, 110.0, 60.0) == (9, None)
    assert guards.cooled_down(3, 6, None, 10.0, 60.0) == (3, None)


def test_headroom_is_deeper_for_a_while_after_a_rise():
    assert guards.headroom_after_rise(0.85, 0.75, None, 100.0, 600.0) == 0.85
    assert guards.headroom_after_rise(0.85, 0.75, 0.0, 599.0, 600.0) == 0.75
    assert guards.headroom_after_rise(0.85, 0.75, 0.0, 600.0, 600.0) == 0.85
