"""The capacity table over length mixes: log-space interpolation, clamping, lazy cells measured once."""

import pytest

from autoscaler.capacity.mix_table import CapacityTable


def test_lookup_is_geometric_between_cells_and_clamped_at_the_edges():
    table = CapacityTable((100.0, 1000.0), (100.0, 1000.0), {(0, 0): 40.0, (0, 1): 10.0, (1, 0): 20.0, (1, 1): 5.0})
    assert table.at(100, 100) == pytest.approx(40.0) and table.at(1000, 1000) == pytest.approx(5.0)
    assert table.at(5000, 5000) == pytest.approx(5.0)  # clamped to the grid
    assert table.at(316.2278, 1000) == pytest.approx((10.0 * 5.0) ** 0.5, rel=1e-5)  # geometric between the neighbours


def test_missing_cells_are_measured_once_when_first_needed():
    measured = []
    table = CapacityTable(
        (100.0, 1000.0, 10000.0), (100.0, 1000.0), measure=lambda p, o: measured.append((p, o)) or 1e4 / (p + o)
    )
    table.at(200.0, 300.0)
    table.at(150.0, 500.0)
    assert sorted(measured) == [
        (100.0, 100.0),
        (100.0, 1000.0),
        (1000.0, 100.0),
        (1000.0, 1000.0),
    ]  # one cell's corners
    with pytest.raises(KeyError, match="not in the table"):
        CapacityTable((1.0, 2.0), (1.0, 2.0)).at(1.5, 1.5)


def test_rates_give_the_mix_and_no_traffic_the_fallback():
    table = CapacityTable((100.0, 1000.0), (100.0, 1000.0), {(0, 0): 40.0, (0, 1): 10.0, (1, 0): 20.0, (1, 1): 5.0})
    assert table.for_rates(2.0, 2000.0, 200.0, fallback=(100.0, 100.0)) == pytest.approx(20.0)  # 1000 in, 100 out
    assert table.for_rates(0.0, 0.0, 0.0, fallback=(100.0, 1000.0)) == pytest.approx(10.0)
    assert table.for_rates(1.0, float("nan"), 5.0, fallback=(1000.0, 1000.0)) == pytest.approx(5.0)


def test_a_pass_goes_on_with_the_cells_it_has_while_others_are_measured():
    measuring = {(100.0, 1000.0): None, (1000.0, 1000.0): None}  # still being measured elsewhere

    def pending(prompt, output):
        return measuring.get((prompt, output), 1e4 / (prompt + output))

    table = CapacityTable((100.0, 1000.0), (100.0, 1000.0), {(0, 0): 50.0}, pending=pending)
    # the upper corners are left out: geometric between the lower two, which it now knows
    assert table.at_now(316.2278, 316.2278) == pytest.approx((50.0 * 1e4 / 1100) ** 0.5, rel=1e-5)
    assert table.cells == {(0, 0): 50.0, (1, 0): pytest.approx(1e4 / 1100)}
    # none of the four known: the measured cell nearest in log(length)
    assert table.at_now(900.0, 1000.0) == pytest.approx(1e4 / 1100)
    measuring[(1000.0, 1000.0)] = 5.0  # measured: used from the next lookup on
    assert table.at_now(1000.0, 1000.0) == pytest.approx(5.0) and table.cells[(1, 1)] == 5.0


def test_without_a_background_measure_a_lookup_now_waits_as_at_does():
    table = CapacityTable((100.0, 1000.0), (100.0, 1000.0), measure=lambda p, o: 1e4 / (p + o))
    assert table.at_now(300.0, 200.0) == pytest.approx(table.at(300.0, 200.0), rel=1e-12)
    assert table.for_rates(1.0, 300.0, 200.0, fallback=(1.0, 1.0)) == pytest.approx(table.at(300.0, 200.0), rel=1e-12)
