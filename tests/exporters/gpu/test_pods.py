from concurrent import futures

import grpc
import pytest

from exporters.gpu.pods import LIST_METHOD, KubeletPodResources, podresources_messages


class FakeKubelet:
    """A gRPC server on a unix socket answering the pod-resources List call, as the kubelet does."""

    def __init__(self, path: str):
        self.pods = []
        self.calls = 0
        self.down = False
        messages = podresources_messages()
        self.response = messages["ListPodResourcesResponse"]

        def list_pods(request, context):
            self.calls += 1
            if self.down:
                context.abort(grpc.StatusCode.UNAVAILABLE, "kubelet restarting")
            out = self.response()
            for name, namespace, containers in self.pods:
                pod = out.pod_resources.add(name=name, namespace=namespace)
                for container, resource, ids in containers:
                    c = pod.containers.add(name=container)
                    c.devices.add(resource_name=resource, device_ids=ids)
            return out

        handler = grpc.method_handlers_generic_handler(
            "v1.PodResourcesLister",
            {
                "List": grpc.unary_unary_rpc_method_handler(
                    list_pods,
                    request_deserializer=messages["ListPodResourcesRequest"].FromString,
                    response_serializer=lambda m: m.SerializeToString(),
                )
            },
        )
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), handlers=[handler])
        self.server.add_insecure_port(f"unix://{path}")
        self.server.start()


@pytest.fixture
def kubelet(tmp_path):
    path = str(tmp_path / "kubelet.sock")
    fake = FakeKubelet(path)
    yield fake, path
    fake.server.stop(0)


def test_maps_gpus_to_the_pods_holding_them(kubelet):
    fake, path = kubelet
    fake.pods = [
        ("vllm-0", "llm", [("vllm", "nvidia.com/gpu", ["GPU-aaaa", "GPU-bbbb"]), ("sidecar", "cpu", ["0"])]),
        ("trainer", "ml", [("main", "nvidia.com/gpu", ["GPU-cccc"])]),
    ]
    owners = KubeletPodResources(path, refresh_s=0)()
    assert owners == {
        "GPU-aaaa": ("vllm-0", "llm", "vllm"),
        "GPU-bbbb": ("vllm-0", "llm", "vllm"),
        "GPU-cccc": ("trainer", "ml", "main"),
    }
    assert LIST_METHOD == "/v1.PodResourcesLister/List"


def test_refreshes_at_most_every_interval_and_keeps_the_last_map_when_the_kubelet_fails(kubelet):
    fake, path = kubelet
    fake.pods = [("vllm-0", "llm", [("vllm", "nvidia.com/gpu", ["GPU-aaaa"])])]
    lookup = KubeletPodResources(path, refresh_s=3600)
    assert lookup() == lookup() == {"GPU-aaaa": ("vllm-0", "llm", "vllm")}
    assert fake.calls == 1  # scrapes in between are served from the map
    lookup.refresh_s = 0
    fake.down = True
    assert lookup() == {"GPU-aaaa": ("vllm-0", "llm", "vllm")}
    assert lookup.errors == 1


def test_no_kubelet_means_no_pod_labels_not_a_failed_scrape(tmp_path):
    lookup = KubeletPodResources(str(tmp_path / "absent.sock"), refresh_s=0, timeout_s=0.5)
    assert lookup() == {} and lookup.errors == 1
