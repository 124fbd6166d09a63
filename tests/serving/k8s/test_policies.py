"""Policies on every shipped overlay as rendered, as kube-linter or conftest users check them: resources, probes,
non-root and read-only root filesystems (where the image allows), pinned images, and every selector, port and
reference pointing at something real; the configs rendered into ConfigMaps accepted by the code that reads them."""

import functools
import tempfile
import tomllib
from pathlib import Path

import pytest
import yaml

from autoscaler.config import parse_config
from exporters.gateway.config import parse_gateway_config
from serving.k8s.render import cold_start_s
from serving.profiles import load_profile
from tests.serving.k8s.test_render import ROOT, SHIPPED, rendered_all, settings_of

WORKLOADS = ("Deployment", "DaemonSet")
# where the image does not allow it, and why
ROOT_ALLOWED = {"dcgm-exporter": "DCGM's profiling fields need root and SYS_ADMIN"}
WRITABLE_ROOT_ALLOWED = {"dcgm-exporter": "the exporter writes its own state under /etc and /var"}
USER_SECRETS = {"hf-token": "the Hugging Face token (optional)", "headroom-gateway-keys": "API key -> tenant"}


@functools.cache
def overlay(name: str) -> tuple[dict, ...]:
    """An overlay as `kubectl kustomize` renders it (once per module: each render is a kubectl process)."""
    with tempfile.TemporaryDirectory() as folder:
        return tuple(rendered_all(name, Path(folder)))


@pytest.fixture(params=SHIPPED)
def docs(request):
    return overlay(request.param)


def of_kind(docs, *kinds) -> list[dict]:
    return [d for d in docs if d["kind"] in kinds]


def pods(docs) -> list[tuple[str, dict]]:
    return [(w["metadata"]["name"], w["spec"]["template"]) for w in of_kind(docs, *WORKLOADS)]


def selects(selector: dict, labels: dict) -> bool:
    return bool(selector) and selector.items() <= labels.items()


def test_every_container_has_resources_probes_and_a_pinned_image(docs):
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    for name, pod in pods(docs):
        for c in pod["spec"]["containers"]:
            assert {"cpu", "memory"} <= set(c["resources"]["requests"]) and "memory" in c["resources"]["limits"], name
            assert "readinessProbe" in c and "livenessProbe" in c, name
            image = c["image"]
            assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"), f"{name}: {image} is not pinned"
            if "headroom" in image:
                assert image.endswith(f":{version}"), f"{name} runs {image}, the package is {version}"


def test_non_root_and_read_only_where_the_image_allows(docs):
    for name, pod in pods(docs):
        for c in pod["spec"]["containers"]:
            context = {**pod["spec"].get("securityContext", {}), **c.get("securityContext", {})}
            if name not in ROOT_ALLOWED:
                assert context.get("runAsNonRoot") is True and context.get("allowPrivilegeEscalation") is False, name
                assert context["capabilities"]["drop"] == ["ALL"], name
            if name not in WRITABLE_ROOT_ALLOWED:
                assert context.get("readOnlyRootFilesystem") is True, name


def test_selectors_select_real_pods_and_ports(docs):
    labelled = [(name, pod["metadata"]["labels"], pod) for name, pod in pods(docs)]
    container_ports = lambda pod: {p["name"] for c in pod["spec"]["containers"] for p in c.get("ports", [])}
    for pdb in of_kind(docs, "PodDisruptionBudget"):
        assert any(selects(pdb["spec"]["selector"]["matchLabels"], labels) for _, labels, _ in labelled)
    for service in of_kind(docs, "Service"):
        (pod,) = [pod for _, labels, pod in labelled if selects(service["spec"]["selector"], labels)]
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= container_ports(pod), service["metadata"]["name"]
    for monitor in of_kind(docs, "ServiceMonitor"):
        (service,) = [
            s
            for s in of_kind(docs, "Service")
            if selects(monitor["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])
        ]
        assert {e["port"] for e in monitor["spec"]["endpoints"]} <= {p["name"] for p in service["spec"]["ports"]}
    for monitor in of_kind(docs, "PodMonitor"):
        (pod,) = [pod for _, labels, pod in labelled if selects(monitor["spec"]["selector"]["matchLabels"], labels)]
        assert {e["port"] for e in monitor["spec"]["podMetricsEndpoints"]} <= container_ports(pod)


def test_network_policies_select_real_pods_and_admit_only_their_peers(docs):
    labelled = {name: pod for name, pod in pods(docs)}
    for policy in of_kind(docs, "NetworkPolicy"):
        (name,) = [
            n
            for n, pod in labelled.items()
            if selects(policy["spec"]["podSelector"]["matchLabels"], pod["metadata"]["labels"])
        ]
        ports = {p["name"] for c in labelled[name]["spec"]["containers"] for p in c.get("ports", [])}
        for rule in policy["spec"]["ingress"]:
            assert {p["port"] for p in rule["ports"]} <= ports, name
            for peer in rule.get("from", []):
                if "namespaceSelector" in peer:  # Prometheus, in its own namespace
                    assert peer["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "prometheus"}
                else:  # a peer of this namespace: it must exist
                    assert any(
                        selects(peer["podSelector"]["matchLabels"], pod["metadata"]["labels"])
                        for pod in labelled.values()
                    ), name
    metrics_open = [
        (p["metadata"]["name"], r)
        for p in of_kind(docs, "NetworkPolicy")
        for r in p["spec"]["ingress"]
        if "from" not in r
    ]
    assert metrics_open == [("headroom-gateway", {"ports": [{"port": "http"}]})]  # only the API is open to clients


def test_references_resolve_to_rendered_objects_or_documented_secrets(docs):
    names = lambda kind: {d["metadata"]["name"] for d in of_kind(docs, kind)}
    for name, pod in pods(docs):
        account = pod["spec"].get("serviceAccountName")
        assert account is None or account in names("ServiceAccount"), name
        for volume in pod["spec"].get("volumes", []):
            if "configMap" in volume:
                assert volume["configMap"]["name"] in names("ConfigMap"), name
            if "secret" in volume:
                assert volume["secret"]["secretName"] in USER_SECRETS, name
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in names("PersistentVolumeClaim"), name


def config_in(docs, config_map: str, key: str) -> dict:
    (found,) = [d for d in of_kind(docs, "ConfigMap") if d["metadata"]["name"] == config_map]
    return yaml.safe_load(found["data"][key])


@pytest.mark.parametrize("name", SHIPPED)
def test_the_rendered_configs_hold_the_profile_and_the_code_accepts_them(name):
    docs = overlay(name)
    profile_name, settings = settings_of(name)
    profile = load_profile(profile_name)
    gateway = parse_gateway_config(config_in(docs, "headroom-gateway", "gateway.yaml"))
    autoscaler = parse_config(config_in(docs, "headroom-autoscaler", "autoscaler.yaml"))
    (target,) = autoscaler.targets
    assert target.name == profile.model.name and target.capacity.profile == profile.name
    assert (target.slo.ttft_s, target.slo.itl_s) == (
        gateway.models[profile.model.name].slo.ttft_s,
        gateway.models[profile.model.name].slo.tpot_s,
    )
    assert target.cold_start_s == round(cold_start_s(profile)) and target.gpu == profile.gpu.name
    assert gateway.max_in_flight_per_backend == profile.scheduler.max_num_seqs
    assert gateway.backends.kubernetes_service == f"{settings.namespace}/vllm"
    assert autoscaler.leader_election.namespace == target.actuator.namespace == settings.namespace
    (rule,) = of_kind(docs, "PrometheusRule")  # base/monitoring's, patched with this model's SLO thresholds
    assert profile.model.name in yaml.safe_dump(rule["spec"]["groups"])
    role = next(d for d in of_kind(docs, "Role") if d["metadata"]["name"] == "headroom-autoscaler")
    writes = any("patch" in r["verbs"] for r in role["rules"])
    scaled = of_kind(docs, "ScaledObject")
    if settings.scaler == "keda":
        assert target.actuator.kind == "metric" and not writes  # KEDA writes the count; the Role only reads
        (keda,) = scaled
        assert (keda["spec"]["minReplicaCount"], keda["spec"]["maxReplicaCount"]) == (
            target.min_replicas,
            target.max_replicas,
        )
        assert f'target="{profile.model.name}"' in keda["spec"]["triggers"][0]["metadata"]["query"]
    else:
        assert target.actuator.kind == "kubernetes" and writes and not scaled
