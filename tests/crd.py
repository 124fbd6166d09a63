"""Custom resources (PodMonitor, ServiceMonitor, PrometheusRule; KEDA's ScaledObject) against their published CRD
schemas, from @kubernetes-models/prometheus-operator and @kubernetes-models/keda, which `make install` puts under
.venv/node (kubernetes-validate has no CRDs)."""

import json
import shutil
import subprocess
from pathlib import Path

NODE_MODULES = Path(__file__).resolve().parents[1] / ".venv" / "node"


def validate_crds(docs: list[dict]) -> subprocess.CompletedProcess:
    """Node checks each object; one line per object on stdout, exit code 1 if any is invalid."""
    node = shutil.which("node")
    packages = [NODE_MODULES / "node_modules" / "@kubernetes-models" / name for name in ("prometheus-operator", "keda")]
    assert node and all(p.is_dir() for p in packages), (
        "node, @kubernetes-models/prometheus-operator and @kubernetes-models/keda are installed by `make install`"
    )
    script = NODE_MODULES / "crd_check.mjs"  # beside node_modules, so that the import resolves
    shutil.copy(Path(__file__).with_name("crd_check.mjs"), script)
    return subprocess.run(
        [node, str(script)], input=json.dumps(docs), capture_output=True, text=True, timeout=60, check=False
    )
