"""The Roles against the code: every Kubernetes API call the autoscaler's actuator and leader election make in a full
round (read, scale up and down, annotate, record an Event; take, renew and hand over the lease), the same in metric
mode (reads only), and the gateway's EndpointSlice discovery, recorded by API-shaped test servers, must be granted,
and nothing else may be."""

import asyncio
import datetime
import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from autoscaler.actuators.base import MetricOnly
from autoscaler.actuators.kubernetes import KubernetesActuator, WorkloadRef
from autoscaler.actuators.lease import LeaderElector, LeaseConfig
from tests.autoscaler.actuators.fake_kube import FakeKube

BASES = Path(__file__).resolve().parents[3] / "serving" / "k8s" / "base"
ROLE = BASES / "autoscaler" / "role.yaml"
METRIC_MODE_ROLE = BASES.parent / "components" / "metric-mode" / "role.yaml"
VERBS = {"GET": "get", "PATCH": "patch", "POST": "create", "PUT": "update"}
PATHS = (  # the REST paths the code calls, as (API group, resource, name or None)
    (r"/apis/(apps)/v1/namespaces/[^/]+/(deployments)/([^/]+)/(scale)", lambda m: (m[1], f"{m[2]}/{m[4]}", m[3])),
    (r"/apis/(apps)/v1/namespaces/[^/]+/(deployments)/([^/]+)", lambda m: (m[1], m[2], m[3])),
    (r"/api/v1/namespaces/[^/]+/(events)", lambda m: ("", m[1], None)),
    (r"/apis/(coordination\.k8s\.io)/v1/namespaces/[^/]+/(leases)(?:/([^/]+))?", lambda m: (m[1], m[2], m[3])),
    (r"/apis/(discovery\.k8s\.io)/v1/namespaces/[^/]+/(endpointslices)", lambda m: (m[1], m[2], None)),
)


def permission(method: str, path: str) -> tuple[str, str, str, str | None]:
    path = path.split("?")[0]
    for pattern, parts in PATHS:
        m = re.fullmatch(pattern, path)
        if m:
            group, resource, name = parts(m)
            verb = "list" if method == "GET" and name is None else VERBS[method]  # a GET of a collection lists
            return group, resource, verb, None if verb in ("create", "list") else name
    raise AssertionError(f"a call the Role test does not know: {method} {path}")


def granted(role: dict) -> set[tuple[str, str, str, str | None]]:
    return {
        (group, resource, verb, name)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
        for name in rule.get("resourceNames", [None])
    }


def calls_of_a_full_round(metric_mode: bool = False) -> list[tuple[str, str]]:
    """The calls of `headroom autoscale` with a kubernetes actuator, or in metric mode (MetricOnly reading the
    workload's counts, as headroom.autoscale builds it), plus the leader election."""
    with FakeKube(replicas=2, ready=2) as kube:
        actuator = KubernetesActuator(
            kube.api_client(), WorkloadRef("llm", "vllm"), instance="pod-a", sleep=lambda s: None
        )
        if metric_mode:
            exported = MetricOnly(read=actuator.counts)
            exported.counts()
            exported.scale(5, ("forecast peak 40 req/s",))
        else:
            actuator.counts()
            actuator.scale(5, ("forecast peak 40 req/s",))
            actuator.scale(3, ("the load came down",))
        config = LeaseConfig("llm", duration_s=10)
        a, b = LeaderElector(kube.api_client(), config, "pod-a"), LeaderElector(kube.api_client(), config, "pod-b")
        t0 = datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC)
        for second in (0, 5, 10):
            a.try_acquire_or_renew(t0 + datetime.timedelta(seconds=second))
            b.try_acquire_or_renew(t0 + datetime.timedelta(seconds=second))
        b.try_acquire_or_renew(t0 + datetime.timedelta(seconds=40))  # a went quiet: b takes the lease over
        return list(kube.calls)


@pytest.mark.parametrize("role_file, metric_mode", [(ROLE, False), (METRIC_MODE_ROLE, True)])
def test_the_role_grants_exactly_what_the_code_calls(role_file, metric_mode):
    needed = {permission(method, path) for method, path in calls_of_a_full_round(metric_mode)}
    role = granted(yaml.safe_load(role_file.read_text()))
    assert needed - role == set(), "calls the Role does not allow"
    assert role - needed == set(), "grants no call needs"


def test_the_check_fails_on_a_role_too_wide_or_too_narrow():
    needed = {permission(method, path) for method, path in calls_of_a_full_round()}
    role = yaml.safe_load(ROLE.read_text())
    wider = {
        **role,
        "rules": role["rules"] + [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["delete"]}],
    }
    assert granted(wider) - needed
    narrower = {**role, "rules": role["rules"][1:]}
    assert needed - granted(narrower)


def discovery_calls() -> list[tuple[str, str]]:
    from kubernetes import client

    from exporters.gateway.config import Backends
    from exporters.gateway.discovery import Discovery
    from tests.exporters.gateway.test_discovery import FakeKubernetes, endpoint_slice

    api = FakeKubernetes()
    api.slices = [endpoint_slice("vllm-a", ["10.1.0.1"])]
    configuration = client.Configuration()
    configuration.host = api.url
    discovery = Discovery(Backends(kubernetes_service="llm/vllm", kubernetes_port="http"), lambda backends: None)
    discovery._k8s_api = client.DiscoveryV1Api(client.ApiClient(configuration))
    asyncio.run(discovery.poll_once())
    api.http.close()
    return [("GET", path) for path in api.requests]


def test_the_gateways_role_grants_exactly_what_its_discovery_calls():
    needed = {permission(method, path) for method, path in discovery_calls()}
    assert needed == granted(yaml.safe_load((BASES / "gateway" / "role.yaml").read_text()))


@pytest.mark.parametrize("base", ["autoscaler", "gateway"])
def test_the_bases_render_to_valid_objects_bound_together(base):
    from tests.crd import validate_crds
    from tests.serving.k8s.test_render import CRDS, KUBERNETES, kustomize

    docs = {d["kind"]: d for d in kustomize(BASES / base)}
    for doc in docs.values():
        for version in KUBERNETES:
            if doc["kind"] not in CRDS:
                kubernetes_validate.validate(doc, version, strict=True)
    done = validate_crds([d for d in docs.values() if d["kind"] in CRDS])
    assert done.returncode == 0, done.stdout + done.stderr
    binding = docs["RoleBinding"]
    assert binding["roleRef"]["name"] == docs["Role"]["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": docs["ServiceAccount"]["metadata"]["name"]}]
