import csv
import json
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from serving.contracts.dcgm_fields import ENERGY, HELP
from tests.crd import validate_crds

ROOT = Path(__file__).resolve().parents[3]
DCGM = ROOT / "exporters" / "dcgm"
KUBERNETES = "1.33.0"


def manifests() -> dict[str, dict]:
    docs = {}
    for name in yaml.safe_load((DCGM / "kustomization.yaml").read_text())["resources"]:
        for doc in yaml.safe_load_all((DCGM / name).read_text()):
            docs[doc["kind"]] = doc
    return docs


def generated_configmap() -> dict:
    """The ConfigMap kustomize's configMapGenerator makes from counters.csv."""
    kustomization = yaml.safe_load((DCGM / "kustomization.yaml").read_text())
    (generator,) = kustomization["configMapGenerator"]
    data = {Path(f).name: (DCGM / f).read_text() for f in generator["files"]}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": generator["name"], "namespace": kustomization["namespace"]},
        "data": data,
    }


@pytest.mark.parametrize("kind", ["DaemonSet", "Service"])
def test_manifests_match_the_kubernetes_schemas(kind):
    kubernetes_validate.validate(manifests()[kind], KUBERNETES, strict=True)


def test_generated_configmap_matches_the_schema_and_is_what_the_daemonset_mounts():
    configmap = generated_configmap()
    kubernetes_validate.validate(configmap, KUBERNETES, strict=True)
    pod = manifests()["DaemonSet"]["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if "configMap" in v)
    assert volume["configMap"]["name"] == configmap["metadata"]["name"]
    (container,) = pod["containers"]
    mount = next(m for m in container["volumeMounts"] if m["name"] == volume["name"])
    collectors = next(a.split("=", 1)[1] for a in container["args"] if a.startswith("--collectors="))
    assert Path(collectors).parent == Path(mount["mountPath"]) and Path(collectors).name in configmap["data"]


def test_counters_cover_every_field_headroom_reads():
    rows = [
        r
        for r in csv.reader(
            line
            for line in (DCGM / "counters.csv").read_text().splitlines()
            if line.strip() and not line.startswith("#")
        )
    ]
    counters = {name.strip(): kind.strip() for name, kind, *_ in rows}
    assert set(counters) == set(HELP), "counters.csv and the DCGM field contract name the same fields"
    assert all(kind == ("counter" if name == ENERGY else "gauge") for name, kind in counters.items())
    assert {"DCGM_FI_PROF_GR_ENGINE_ACTIVE", "DCGM_FI_DEV_GPU_UTIL"} <= set(counters)  # the autoscaler's GPU terms


def test_service_selects_the_daemonset_pods_and_port():
    docs = manifests()
    pod_labels = docs["DaemonSet"]["spec"]["template"]["metadata"]["labels"]
    service = docs["Service"]["spec"]
    assert service["selector"].items() <= pod_labels.items()
    (container,) = docs["DaemonSet"]["spec"]["template"]["spec"]["containers"]
    assert service["ports"][0]["targetPort"] in {p["name"] for p in container["ports"]}
    monitor = docs["ServiceMonitor"]["spec"]
    assert monitor["selector"]["matchLabels"].items() <= docs["Service"]["metadata"]["labels"].items()
    assert monitor["endpoints"][0]["port"] == service["ports"][0]["name"]


def test_servicemonitor_honors_the_exporters_pod_labels_and_says_why():
    text = (DCGM / "servicemonitor.yaml").read_text()
    (endpoint,) = manifests()["ServiceMonitor"]["spec"]["endpoints"]
    assert endpoint["honorLabels"] is True
    assert "exported_pod" in text  # the comment says what goes wrong without it


def test_servicemonitor_matches_prometheus_operators_schema():
    monitor = manifests()["ServiceMonitor"]
    done = validate_crds([monitor])
    assert done.returncode == 0, done.stdout + done.stderr
    broken = json.loads(json.dumps(monitor))
    broken["spec"]["endpoints"][0]["honorLabels"] = "yes"
    done = validate_crds([broken])
    assert done.returncode == 1 and "honorLabels must be boolean" in done.stdout  # the check can fail
