"""The vLLM manifests as kustomize renders them for each profile: valid against the Kubernetes schemas (and the
PodMonitor against prometheus-operator's), the arguments the engine model assumes, and the policies kube-linter and
conftest users check."""

import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

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
CRDS = {"PodMonitor", "ServiceMonitor", "PrometheusRule"}


def kustomize(folder: Path) -> list[dict]:
    out = subprocess.run(["kubectl", "kustomize", str(folder)], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def rendered(name: str, tmp_path: Path) -> dict[str, dict]:
    folder = tmp_path / name
    folder.mkdir()
    for file, text in overlay_files(load_profile(name), folder).items():
        (folder / file).write_text(text)
    return {d["kind"]: d for d in kustomize(folder)}


def container(docs: dict) -> dict:
    (c,) = docs["Deployment"]["spec"]["template"]["spec"]["containers"]
    return c


@pytest.mark.parametrize("name", sorted(p.name for p in OVERLAYS.iterdir()))
def test_shipped_overlays_are_what_render_writes_now(name):
    """The profile is the one source: an overlay edited by hand, or a profile changed without rendering again, fails."""
    folder = OVERLAYS / name
    assert {f.name: f.read_text() for f in folder.iterdir()} == overlay_files(load_profile(name), folder.resolve())


@pytest.mark.parametrize("name", list_profiles())
def test_every_profile_renders_to_valid_objects(name, tmp_path):
    docs = rendered(name, tmp_path)
    assert set(docs) >= {"Deployment", "Service", "PodDisruptionBudget", "PodMonitor", "NetworkPolicy",
                         "PersistentVolumeClaim"}
    for kind, doc in docs.items():
        if kind not in CRDS:
            for version in KUBERNETES:
                kubernetes_validate.validate(doc, version, strict=True)
    done = validate_crds([d for k, d in docs.items() if k in CRDS])
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("name", list_profiles())
def test_vllm_runs_the_limits_the_engine_model_assumes(name, tmp_path):
    profile, c = load_profile(name), container(rendered(name, tmp_path))
    args = dict(zip(c["args"][::2], c["args"][1::2]))
    s = profile.scheduler
    assert args == {"--model": profile.model.name, "--served-model-name": profile.model.name,
                    "--tensor-parallel-size": str(profile.tensor_parallel),
                    "--max-model-len": str(profile.model.max_model_len),
                    "--gpu-memory-utilization": f"{s.gpu_memory_utilization:g}", "--max-num-seqs": str(s.max_num_seqs),
                    "--max-num-batched-tokens": str(s.max_num_batched_tokens), "--port": "8000"}
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
    for kind, selector in (("PodDisruptionBudget", docs["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"]),
                           ("NetworkPolicy", docs["NetworkPolicy"]["spec"]["podSelector"]["matchLabels"]),
                           ("Service", docs["Service"]["spec"]["selector"]),
                           ("PodMonitor", docs["PodMonitor"]["spec"]["selector"]["matchLabels"])):
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
    broken = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor", "metadata": {"name": "x"},
              "spec": {"selector": {}, "podMetricsEndpoints": [{"port": 8000}]}}
    done = validate_crds([broken])
    assert done.returncode == 1 and "invalid PodMonitor x" in done.stdout
