"""The vLLM manifests as kustomize renders them for each profile: valid against the Kubernetes schemas (and the
PodMonitor against prometheus-operator's), the arguments the engine model assumes, and the policies kube-linter and
conftest users check."""

import functools
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from headroom.k8s import slo_rule
from serving.k8s.render import (
    ServingSettings,
    grace_period_s,
    overlay_files,
    startup_failure_threshold,
)
from serving.profiles import list_profiles, load_profile
from tests.crd import validate_crds

ROOT = Path(__file__).resolve().parents[3]
OVERLAYS = ROOT / "serving" / "k8s" / "overlays"
KUBERNETES = ("1.36.0", "1.37.0")  # the two latest minor versions kubernetes-validate knows
CRDS = {"PodMonitor", "ServiceMonitor", "PrometheusRule", "ScaledObject"}


def kustomize(folder: Path) -> list[dict]:
    out = subprocess.run(["kubectl", "kustomize", str(folder)], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@functools.cache
def rule_of(model: str) -> str:
    """The mixin built for a model at the default SLO (a jsonnet compile: a second; once per model)."""
    return slo_rule(next(load_profile(n) for n in list_profiles() if load_profile(n).model.name == model), 1.0, 0.05)


def settings_of(overlay: str) -> tuple[str, ServingSettings]:
    """(profile, settings) of a shipped overlay's folder name: PROFILE, or PROFILE-keda where KEDA scales."""
    keda = overlay.endswith("-keda")
    return overlay.removesuffix("-keda"), ServingSettings(scaler="keda" if keda else "headroom")


def overlay_of(name: str, folder: Path) -> dict[str, str]:
    """What `headroom k8s render --profile PROFILE [--scaler keda] --out FOLDER` writes for overlay NAME."""
    profile_name, settings = settings_of(name)
    profile = load_profile(profile_name)
    return overlay_files(profile, folder.resolve(), settings, rule_of(profile.model.name))


def rendered_all(name: str, tmp_path: Path) -> list[dict]:
    folder = tmp_path / name
    folder.mkdir()
    for file, text in overlay_of(name, folder).items():
        (folder / file).write_text(text)
    return kustomize(folder)


SHIPPED = sorted(p.name for p in OVERLAYS.iterdir())


def rendered(name: str, tmp_path: Path) -> dict[str, dict]:
    """The rendered objects by kind (vLLM's where a kind has several)."""
    docs = {}
    for d in rendered_all(name, tmp_path):
        if d["kind"] not in docs or d["metadata"]["name"] == "vllm":
            docs[d["kind"]] = d
    return docs


def container(docs: dict) -> dict:
    (c,) = docs["Deployment"]["spec"]["template"]["spec"]["containers"]
    return c


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_overlays_are_what_render_writes_now(name):
    """The profile is the one source: an overlay edited by hand, or a profile changed without rendering again, fails."""
    folder = OVERLAYS / name
    assert {f.name: f.read_text() for f in folder.iterdir()} == overlay_of(name, folder)


@pytest.mark.parametrize("name", sorted({*list_profiles(), *SHIPPED}))
def test_every_profile_renders_to_valid_objects(name, tmp_path):
    docs = rendered_all(name, tmp_path)
    assert {d["kind"] for d in docs} >= {
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "PodMonitor",
        "NetworkPolicy",
        "PersistentVolumeClaim",
        "Role",
        "RoleBinding",
        "ServiceAccount",
        "DaemonSet",
        "ServiceMonitor",
        "PrometheusRule",
        "ConfigMap",
    }
    for doc in docs:
        if doc["kind"] not in CRDS:
            for version in KUBERNETES:
                kubernetes_validate.validate(doc, version, strict=True)
    done = validate_crds([d for d in docs if d["kind"] in CRDS])
    assert done.returncode == 0, done.stdout + done.stderr
    assert {d["metadata"].get("namespace") for d in docs if d["kind"] not in ("Namespace",)} == {"headroom"}


def test_monitoring_objects_carry_the_labels_kube_prometheus_stack_selects(tmp_path):
    docs = rendered_all("llama-3.1-8b-h100", tmp_path)
    for doc in docs:  # one setting (ServingSettings.release, `--release`) labels every object
        assert doc["metadata"]["labels"]["release"] == "kube-prometheus-stack", doc["kind"]
    dashboards = [d for d in docs if d["kind"] == "ConfigMap" and "grafana_dashboard" in d["metadata"]["labels"]]
    assert len(dashboards) == 5 and all(d["metadata"]["labels"]["grafana_dashboard"] == "1" for d in dashboards)


def test_the_alerts_burn_on_the_rendered_slo():
    """The model's TTFT threshold reaches its SLI: vLLM's bucket at that edge is the fallback beside the gateway's counts."""
    profile = load_profile("llama-3.1-8b-h100")
    at = lambda ttft: slo_rule(profile, ttft, 0.05)
    assert 'le="0.5"' in at(0.5) and 'le="0.5"' not in at(1.0)
    assert profile.model.name in at(0.5)


@pytest.mark.parametrize("name", list_profiles())
def test_vllm_runs_the_limits_the_engine_model_assumes(name, tmp_path):
    profile, c = load_profile(name), container(rendered(name, tmp_path))
    args = dict(zip(c["args"][::2], c["args"][1::2]))
    s = profile.scheduler
    assert args == {
        "--model": profile.model.name,
        "--served-model-name": profile.model.name,
        "--tensor-parallel-size": str(profile.tensor_parallel),
        "--max-model-len": str(profile.model.max_model_len),
        "--gpu-memory-utilization": f"{s.gpu_memory_utilization:g}",
        "--max-num-seqs": str(s.max_num_seqs),
        "--max-num-batched-tokens": str(s.max_num_batched_tokens),
        "--port": "8000",
    }
    assert c["resources"]["limits"]["nvidia.com/gpu"] == c["resources"]["requests"]["nvidia.com/gpu"] == profile.gpus


def test_budgets_grow_with_the_model():
    small, large = load_profile("llama-3.1-8b-h100"), load_profile("llama-3.1-70b-h200-tp4")
    # vLLM 0.20.2 took 97 s to ready for an 8B model with no download: the budget covers that with a download
    assert startup_failure_threshold(small) * 10 >= 1.5 * 97
    assert startup_failure_threshold(large) > startup_failure_threshold(small)
    settings = ServingSettings()
    assert grace_period_s(large, settings) > grace_period_s(small, settings) > 15


def test_policies_on_the_rendered_objects(tmp_path):
    docs = rendered("llama-3.1-8b-h100", tmp_path)
    pod = docs["Deployment"]["spec"]["template"]
    c = container(docs)
    assert not c["image"].endswith(":latest") and ":" in c["image"]
    assert {"cpu", "memory"} <= set(c["resources"]["requests"]) and "memory" in c["resources"]["limits"]
    assert all(c[p]["httpGet"]["path"] == "/health" for p in ("startupProbe", "readinessProbe", "livenessProbe"))
    assert pod["spec"]["securityContext"]["runAsNonRoot"] and c["securityContext"]["readOnlyRootFilesystem"]
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["spec"]["enableServiceLinks"] is False
    assert docs["Deployment"]["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}
    labels = pod["metadata"]["labels"]
    for kind, selector in (
        ("PodDisruptionBudget", docs["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"]),
        ("NetworkPolicy", docs["NetworkPolicy"]["spec"]["podSelector"]["matchLabels"]),
        ("Service", docs["Service"]["spec"]["selector"]),
        ("PodMonitor", docs["PodMonitor"]["spec"]["selector"]["matchLabels"]),
    ):
        assert selector.items() <= labels.items(), f"the {kind} selects no pod of the Deployment"
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["shm"]["emptyDir"]["medium"] == "Memory"
    assert volumes["models"]["persistentVolumeClaim"]["claimName"] == docs["PersistentVolumeClaim"]["metadata"]["name"]
    assert "python3" in c["lifecycle"]["preStop"]["exec"]["command"]


def test_the_drain_script_is_valid_python(tmp_path):
    script = container(rendered("llama-3.1-8b-h100", tmp_path))["lifecycle"]["preStop"]["exec"]["command"][-1]
    compile(script, "preStop", "exec")
    assert "vllm:num_requests_running" in script and "vllm:num_requests_waiting" in script


def test_the_crd_check_can_fail():
    broken = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": {"name": "x"},
        "spec": {"selector": {}, "podMetricsEndpoints": [{"port": 8000}]},
    }
    done = validate_crds([broken])
    assert done.returncode == 1 and "invalid PodMonitor x" in done.stdout
