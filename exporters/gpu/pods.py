"""Which pod holds which GPU, from the kubelet's pod-resources API (gRPC on a unix socket), as dcgm-exporter does.

The messages are the subset of k8s.io/kubelet/pkg/apis/podresources/v1/api.proto that the mapping reads, built
at run time (field numbers as upstream; the fields not declared are skipped when parsing).
"""

from __future__ import annotations

import logging
import threading
import time
from functools import lru_cache

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

log = logging.getLogger(__name__)

DEFAULT_SOCKET = "/var/lib/kubelet/pod-resources/kubelet.sock"
LIST_METHOD = "/v1.PodResourcesLister/List"
GPU_RESOURCES = ("nvidia.com/gpu",)

_STRING, _MESSAGE = descriptor_pb2.FieldDescriptorProto.TYPE_STRING, descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE
_OPTIONAL, _REPEATED = (
    descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
    descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED,
)
_MESSAGES = {  # message -> [(field, number, type, label, message type)]
    "ListPodResourcesRequest": [],
    "ListPodResourcesResponse": [("pod_resources", 1, _MESSAGE, _REPEATED, ".v1.PodResources")],
    "PodResources": [
        ("name", 1, _STRING, _OPTIONAL, None),
        ("namespace", 2, _STRING, _OPTIONAL, None),
        ("containers", 3, _MESSAGE, _REPEATED, ".v1.ContainerResources"),
    ],
    "ContainerResources": [
        ("name", 1, _STRING, _OPTIONAL, None),
        ("devices", 2, _MESSAGE, _REPEATED, ".v1.ContainerDevices"),
    ],
    "ContainerDevices": [("resource_name", 1, _STRING, _OPTIONAL, None), ("device_ids", 2, _STRING, _REPEATED, None)],
}


@lru_cache(maxsize=1)
def podresources_messages() -> dict[str, type]:
    """Message classes for the pod-resources List call, in a pool of their own."""
    proto = descriptor_pb2.FileDescriptorProto(name="headroom/podresources_v1.proto", package="v1", syntax="proto3")
    for name, fields in _MESSAGES.items():
        message = proto.message_type.add(name=name)
        for field, number, kind, label, type_name in fields:
            entry = message.field.add(name=field, number=number, type=kind, label=label)
            if type_name:
                entry.type_name = type_name
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"v1.{name}")) for name in _MESSAGES}


def gpu_owners(response, resources: tuple[str, ...] = GPU_RESOURCES) -> dict[str, tuple[str, str, str]]:
    """GPU device id (a UUID, as NVIDIA's device plugin reports them) -> (pod, namespace, container)."""
    owners = {}
    for pod in response.pod_resources:
        for container in pod.containers:
            for devices in container.devices:
                if devices.resource_name in resources:
                    for device_id in devices.device_ids:
                        owners[device_id] = (pod.name, pod.namespace, container.name)
    return owners


class KubeletPodResources:
    """The GPU-to-pod map, refreshed at most every `refresh_s`; on a failed call the last map stays (and is logged)."""

    def __init__(
        self,
        socket_path: str = DEFAULT_SOCKET,
        refresh_s: float = 10.0,
        timeout_s: float = 2.0,
        resources: tuple[str, ...] = GPU_RESOURCES,
    ):
        self.refresh_s, self.timeout_s, self.resources = refresh_s, timeout_s, resources
        messages = podresources_messages()
        self._request = messages["ListPodResourcesRequest"]()
        self._channel = grpc.insecure_channel(f"unix://{socket_path}")
        self._list = self._channel.unary_unary(
            LIST_METHOD,
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=messages["ListPodResourcesResponse"].FromString,
        )
        self._owners: dict[str, tuple[str, str, str]] = {}
        self._fetched_at = -float("inf")
        self._lock = threading.Lock()
        self.errors = 0

    def __call__(self) -> dict[str, tuple[str, str, str]]:
        with self._lock:
            if time.monotonic() - self._fetched_at >= self.refresh_s:
                self._fetched_at = time.monotonic()
                try:
                    self._owners = gpu_owners(self._list(self._request, timeout=self.timeout_s), self.resources)
                except grpc.RpcError as err:
                    self.errors += 1
                    log.warning(
                        "kubelet pod-resources: %s (%s); GPUs keep their last pod labels",
                        err.code().name,
                        err.details(),
                    )
            return dict(self._owners)

    def close(self) -> None:
        self._channel.close()
