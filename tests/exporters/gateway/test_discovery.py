"""Backend discovery (file_sd, Kubernetes EndpointSlices over a real HTTP API) and health checks that eject."""

import asyncio
import json

import pytest

from exporters.gateway.backends import BackendPool
from exporters.gateway.config import Backends
from exporters.gateway.discovery import Discovery, DiscoveryError, HealthChecker, parse_file_sd
from tests.helpers import EmulatorServer, LoopbackHttpServer, QuietHandler


def test_file_sd_targets_and_errors():
    text = json.dumps(
        [{"targets": ["10.0.0.1:8000", "10.0.0.2:8000"], "labels": {"replica": "a"}}, {"targets": ["h:1"]}]
    )
    assert parse_file_sd(text, "t.json") == ["10.0.0.1:8000", "10.0.0.2:8000", "h:1"]
    assert parse_file_sd("- targets: [a:1]\n", "t.yaml") == ["a:1"]
    with pytest.raises(DiscoveryError, match="t.json: group 0: backend 'nope' is not host:port"):
        parse_file_sd('[{"targets": ["nope"]}]', "t.json")
    with pytest.raises(DiscoveryError, match="group 0: backend 'h:0': port '0'"):
        parse_file_sd('[{"targets": ["h:0"]}]', "t.json")
    with pytest.raises(DiscoveryError, match="list of target groups"):
        parse_file_sd('{"targets": []}', "t.json")


def test_file_sd_is_reread_when_it_changes_and_a_bad_rewrite_keeps_the_last_targets(tmp_path):
    path = tmp_path / "targets.json"
    path.write_text(json.dumps([{"targets": ["a:1"]}]))
    seen = []
    discovery = Discovery(Backends(static=["s:9"], file_sd=path), seen.append)
    asyncio.run(discovery.poll_once())
    path.write_text(json.dumps([{"targets": ["a:1", "b:2"]}]))
    __import__("os").utime(path, (1, 1))  # a new mtime even within the clock's resolution
    asyncio.run(discovery.poll_once())
    path.write_text("[{")
    __import__("os").utime(path, (2, 2))
    asyncio.run(discovery.poll_once())
    assert seen == [["a:1", "s:9"], ["a:1", "b:2", "s:9"]]  # the broken file changed nothing


class FakeKubernetes:
    """The subset of the Kubernetes API that EndpointSlice discovery reads, with bodies shaped like the real API's."""

    def __init__(self):
        self.slices = []
        self.requests = []
        outer = self

        class Handler(QuietHandler):
            def do_GET(self):
                outer.requests.append(self.path)
                self.reply(
                    200,
                    json.dumps(
                        {
                            "apiVersion": "discovery.k8s.io/v1",
                            "kind": "EndpointSliceList",
                            "metadata": {},
                            "items": outer.slices,
                        }
                    ).encode(),
                )

        self.http = LoopbackHttpServer(Handler).start()
        self.url = self.http.url


def endpoint_slice(name, ready_ips, unready_ips=(), port=8000):
    endpoints = [{"addresses": [ip], "conditions": {"ready": True}} for ip in ready_ips]
    endpoints += [{"addresses": [ip], "conditions": {"ready": False}} for ip in unready_ips]
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "addressType": "IPv4",
        "metadata": {"name": name, "namespace": "llm", "labels": {"kubernetes.io/service-name": "vllm"}},
        "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
        "endpoints": endpoints,
    }


def test_endpoint_slices_give_the_ready_endpoints(monkeypatch):
    from kubernetes import client

    api = FakeKubernetes()
    api.slices = [
        endpoint_slice("vllm-a", ["10.1.0.1", "10.1.0.2"], ["10.1.0.3"]),
        endpoint_slice("vllm-b", ["10.1.0.4"]),
    ]
    configuration = client.Configuration()
    configuration.host = api.url
    seen = []
    discovery = Discovery(Backends(kubernetes_service="llm/vllm", kubernetes_port="http"), seen.append)
    discovery._k8s_api = client.DiscoveryV1Api(client.ApiClient(configuration))
    asyncio.run(discovery.poll_once())
    assert seen == [["10.1.0.1:8000", "10.1.0.2:8000", "10.1.0.4:8000"]]
    assert "/apis/discovery.k8s.io/v1/namespaces/llm/endpointslices" in api.requests[0]
    assert "labelSelector=kubernetes.io%2Fservice-name%3Dvllm" in api.requests[0]
    api.http.close()


def test_health_checks_eject_a_dead_backend_and_learn_models():
    with EmulatorServer() as live:
        dead = "127.0.0.1:9"  # discard port: nothing listens
        pool = BackendPool(max_in_flight=8)
        pool.set_discovered([f"127.0.0.1:{live.port}", dead])
        checker = HealthChecker(pool, Backends(unhealthy_after=2, healthy_after=1), timeout_s=1.0)

        async def scenario():
            await checker.check_all()
            assert pool.backends[dead].healthy  # one failure is not enough
            await checker.check_all()
            assert not pool.backends[dead].healthy
            await checker.close()

        asyncio.run(scenario())
        assert [b.address for b in pool.routable(live.model)] == [f"127.0.0.1:{live.port}"]
        assert pool.backends[f"127.0.0.1:{live.port}"].models == frozenset({live.model})
        assert pool.routable("another-model") == []  # the live backend serves only its own model
