"""Length-mix periods of a request trace: windows grouped by their mean lengths."""

import numpy as np
import pytest

from autoscaler.sim.mix_periods import mix_periods


def _trace(phases, window_s=300.0, per_window=200, seed=0):
    """Windows of `per_window` requests each, with (prompt mean, output mean) per window and some spread."""
    rng = np.random.default_rng(seed)
    arrival, prompt, output = [], [], []
    for k, (p, o) in enumerate(phases):
        if p is None:  # an idle window
            continue
        arrival.append(np.sort(rng.uniform(k * window_s, (k + 1) * window_s, per_window)))
        prompt.append(np.maximum(1, rng.normal(p, 0.1 * p, per_window)).astype(np.int64))
        output.append(np.maximum(1, rng.normal(o, 0.1 * o, per_window)).astype(np.int64))
    return np.concatenate(arrival), np.concatenate(prompt), np.concatenate(output)


def test_a_steady_mix_is_one_period():
    periods = mix_periods(*_trace([(1000, 200)] * 6))
    assert periods.count == 1 and not periods.period_of_request.any()


def test_windows_of_another_mix_form_a_period_and_a_return_rejoins_the_first():
    arrival, prompt, output = _trace([(1000, 250), (1050, 240), (1000, 120), (980, 115), (1000, 245)])
    periods = mix_periods(arrival, prompt, output)
    assert periods.period_of_window.tolist() == [0, 0, 1, 1, 0]
    assert periods.count == 2
    window = np.minimum(arrival // 300, 4).astype(int)
    np.testing.assert_array_equal(periods.period_of_request, periods.period_of_window[window])
    # steps of 1 s: each takes the period of the window it starts in; steps past the trace keep the last window's
    steps = periods.period_of_steps(1600, 1.0)
    assert steps[0] == 0 and steps[650] == 1 and steps[1250] == 0 and steps[-1] == 0


def test_tolerance_decides_what_counts_as_another_mix():
    trace = _trace([(1000, 250), (1000, 200), (1000, 160)])  # each window's answers 20% shorter than the one before
    assert mix_periods(*trace, tolerance=0.5).count == 1
    assert mix_periods(*trace, tolerance=0.1).count == 3


def test_an_idle_window_keeps_the_period_before_it_and_the_tail_joins_the_last_window():
    arrival, prompt, output = _trace([(1000, 250), (None, None), (1000, 100)])
    periods = mix_periods(np.append(arrival, 905.0), np.append(prompt, 5000), np.append(output, 5))
    # 905 s rounds to 3 windows; the request at 905 s is the last window's, not a window of its own
    assert periods.period_of_window.tolist() == [0, 0, 1]
    assert periods.period_of_request[-1] == 1


def test_leading_idle_windows_belong_to_the_first_mix():
    arrival, prompt, output = _trace([(None, None), (None, None), (1000, 250), (1000, 100)])
    assert mix_periods(arrival, prompt, output).period_of_window.tolist() == [0, 0, 0, 1]


def test_an_empty_trace_is_one_period():
    periods = mix_periods(np.zeros(0), np.zeros(0), np.zeros(0))
    assert periods.count == 1 and len(periods.period_of_request) == 0


@pytest.mark.parametrize(
    "window_s, tolerance, message",
    [
        (0.0, 0.2, "mix window must be a positive number of seconds, got 0.0"),
        (300.0, -1.0, "mix tolerance must be a non-negative number, got -1.0"),
        (float("nan"), 0.2, "mix window must be a positive number"),
    ],
)
def test_bad_settings_are_named(window_s, tolerance, message):
    with pytest.raises(ValueError, match=message):
        mix_periods(*_trace([(1000, 250)]), window_s=window_s, tolerance=tolerance)
