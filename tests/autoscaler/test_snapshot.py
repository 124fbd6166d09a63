"""Replica gauges as columns read the same as rows: policies see one snapshot type either way."""

import numpy as np
import pytest

from autoscaler.sim.baselines.hpa import Hpa, HpaConfig
from autoscaler.sim.baselines.keda import Keda
from autoscaler.snapshot import ReplicaColumns, ReplicaSample, Snapshot

ROWS = (ReplicaSample(3.0, 1.5, 0.25, 71.0), ReplicaSample(5.0, 0.0, 0.5, 88.5), ReplicaSample(0.1, 7.25, 0.75, 12.0))


def columns() -> ReplicaColumns:
    return ReplicaColumns(*(np.array(values) for values in zip(*ROWS)))


def test_columns_read_as_the_rows():
    replicas = columns()
    assert len(replicas) == 3
    assert list(replicas) == list(ROWS)
    assert replicas[1] == ROWS[1] and replicas[-1] == ROWS[-1]
    assert replicas[1:] == list(ROWS[1:])
    assert replicas == ROWS
    assert replicas.column("gpu_util") == [71.0, 88.5, 12.0]
    assert all(isinstance(v, float) for v in replicas.column("waiting"))


def test_snapshot_totals_are_the_same_from_rows_and_columns():
    from_rows = Snapshot(0.0, 3, 3, 0, 0, replicas=ROWS, gateway_queue=2.0)
    from_columns = Snapshot(0.0, 3, 3, 0, 0, replicas=columns(), gateway_queue=2.0)
    for name in ("running", "waiting", "in_flight"):
        assert getattr(from_columns, name) == getattr(from_rows, name)
    assert from_columns.waiting == 1.5 + 0.0 + 7.25


@pytest.mark.parametrize(
    "policy",
    [Hpa(HpaConfig(metric="gpu_util", target=40)), Hpa(HpaConfig(metric="running", target=2)), Keda(threshold=2)],
)
def test_policies_decide_alike_on_rows_and_columns(policy):
    from_rows = Snapshot(60.0, 3, 3, 0, 0, replicas=ROWS)
    from_columns = Snapshot(60.0, 3, 3, 0, 0, replicas=columns())
    a, _ = policy.decide(from_rows, policy.initial_state())
    b, _ = policy.decide(from_columns, policy.initial_state())
    assert a == b and a.desired > 3


def test_unequal_columns_are_refused():
    with pytest.raises(ValueError, match="unequal lengths"):
        ReplicaColumns([1.0], [1.0, 2.0], [0.1], [50.0])
