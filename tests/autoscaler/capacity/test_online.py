"""The online capacity correction: bounded, down on misses below capacity, up only when comfortable near it."""

from autoscaler.capacity.online import corrected


def test_capacity_correction_is_bounded_and_moves_the_right_way():
    assert corrected(1.0, 5.0, 10.0, 2.0, 0.02, 1.0, 0.05) < 1.0  # a miss below capacity: it overestimates
    assert corrected(1.0, 9.0, 10.0, 0.1, 0.01, 1.0, 0.05) > 1.0  # comfortable near capacity
    assert corrected(1.0, 2.0, 10.0, 0.1, 0.01, 1.0, 0.05) == 1.0  # little load tells nothing
    factor = 1.0
    for _ in range(100):
        factor = corrected(factor, 1.0, 10.0, 5.0, 0.02, 1.0, 0.05)
    assert factor == 0.7


def test_no_traffic_leaves_the_factor_alone():
    assert corrected(0.9, 0.0, 10.0, float("nan"), float("nan"), 1.0, 0.05) == 0.9
    assert corrected(1.2, 12.0, 10.0, 0.1, 0.01, 1.0, 0.05) == 1.2  # at the ceiling already
