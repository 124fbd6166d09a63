"""file_sd groups: one per live replica, labelled; exited replicas drop out."""

from types import SimpleNamespace

from serving.fleet.fleet import ReplicaState, file_sd_groups


def test_groups_per_live_replica():
    replicas = [
        SimpleNamespace(name="replica-1", port=1, gpu_port=2, state=ReplicaState.READY),
        SimpleNamespace(name="replica-2", port=3, gpu_port=4, state=ReplicaState.STARTING),
        SimpleNamespace(name="replica-3", port=5, gpu_port=6, state=ReplicaState.EXITED),
    ]
    groups = file_sd_groups(replicas, "127.0.0.1", gpu=False)
    assert groups == [
        {"targets": ["127.0.0.1:1"], "labels": {"replica": "replica-1", "replica_state": "ready"}},
        {"targets": ["127.0.0.1:3"], "labels": {"replica": "replica-2", "replica_state": "starting"}},
    ]
    assert [g["targets"] for g in file_sd_groups(replicas, "127.0.0.1", gpu=True)] == [["127.0.0.1:2"], ["127.0.0.1:4"]]
