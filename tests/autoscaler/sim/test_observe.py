"""The simulator's histogram_quantile follows Prometheus' (promql/quantile.go): linear within the bucket that holds
the rank, 0 as the lower bound of the first, the highest finite bound for a rank in +Inf, NaN with no observations."""

import math

import numpy as np
import pytest

from autoscaler.sim.observe import histogram_quantile

BOUNDS = (0.1, 0.5, 1.0)


@pytest.mark.parametrize(
    "counts, q, expected",
    [
        ([10, 0, 0, 0], 0.5, 0.05),  # first bucket: from 0 to its bound
        ([0, 10, 10, 0], 0.5, 0.5),  # rank 10 ends the second bucket exactly
        ([0, 10, 10, 0], 0.75, 0.75),  # halfway through the third
        ([5, 5, 0, 10], 0.9, 1.0),  # in +Inf: the highest finite bound
        ([0.5, 1.5, 2.0, 0.0], 0.95, 0.5 + 0.5 * (3.8 - 2.0) / 2.0),  # counts from rates are fractional
    ],
)
def test_prometheus_semantics(counts, q, expected):
    assert histogram_quantile(q, BOUNDS, np.array(counts, dtype=float)) == pytest.approx(expected)


def test_no_observations_is_nan():
    assert math.isnan(histogram_quantile(0.95, BOUNDS, np.zeros(4)))
