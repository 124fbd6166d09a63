"""Open-loop arrivals: the count the shape asks for, the process's burstiness, any rate shape, by seed."""

import numpy as np
import pytest

from loadgen.arrivals import arrival_times
from loadgen.shapes import Diurnal, Spike, Step


def constant(rate):
    return lambda t: np.full(np.shape(t), rate)


@pytest.mark.parametrize("process", ["constant", "poisson", "gamma"])
def test_count_matches_the_integral_of_the_rate(process):
    times = arrival_times(constant(12.5), 60.0, process, cv=3.0, seed=1)
    assert len(times) == 750  # exactly, not just on average: a minute sends what the shape asks for
    assert np.all(np.diff(times) >= 0) and times[0] >= 0 and times[-1] < 60.0


def test_burstiness_follows_the_process():
    cv = lambda times: np.diff(times).std() / np.diff(times).mean()
    assert cv(arrival_times(constant(50), 200.0, "constant")) < 0.01
    assert cv(arrival_times(constant(50), 200.0, "poisson", seed=2)) == pytest.approx(1.0, abs=0.05)
    assert cv(arrival_times(constant(50), 200.0, "gamma", cv=4.0, seed=2)) == pytest.approx(4.0, rel=0.15)


def test_time_varying_shapes():
    step = Step(kind="step", stages=[{"duration_s": 30, "rate": 2}, {"duration_s": 30, "rate": 20}])
    times = arrival_times(step.rate_at, 60.0, "poisson", seed=3)
    assert len(times) == 660
    assert np.count_nonzero(times < 30) == pytest.approx(60, abs=25)
    spike = Spike(kind="spike", base_rate=1, peak_rate=50, at_s=20, width_s=5)
    times = arrival_times(spike.rate_at, 60.0, "constant")
    assert np.count_nonzero((times >= 20) & (times < 25)) == pytest.approx(250, abs=2)
    diurnal = Diurnal(kind="diurnal", mean_rate=10, amplitude=0.8, period_s=100)
    times = arrival_times(diurnal.rate_at, 100.0, "poisson", seed=4)
    assert len(times) == 1000
    assert np.count_nonzero((times > 40) & (times < 60)) > 3 * np.count_nonzero(times < 20)  # busy midday, quiet night


def test_reproducible_by_seed_and_rejects_bad_input():
    assert np.array_equal(
        arrival_times(constant(5), 30, "gamma", 2.0, seed=7), arrival_times(constant(5), 30, "gamma", 2.0, seed=7)
    )
    assert not np.array_equal(
        arrival_times(constant(5), 30, "poisson", seed=7), arrival_times(constant(5), 30, "poisson", seed=8)
    )
    with pytest.raises(ValueError, match="arrival process must be one of"):
        arrival_times(constant(5), 30, "weibull")
    assert len(arrival_times(constant(0), 30)) == 0
