"""A replica's lifecycle, shared by the local fleet and the simulator: starting, ready, stopping (draining), exited."""

from enum import Enum


class ReplicaState(str, Enum):
    STARTING = "starting"
    READY = "ready"
    STOPPING = "stopping"
    EXITED = "exited"
