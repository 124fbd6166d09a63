"""DESIGN.md habit 9: layering enforced with import-linter (the pure engine, load-generation and autoscaler cores import no I/O package)."""

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold():
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    lint = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    proc = subprocess.run([lint], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"Contracts: {len(contracts)} kept, 0 broken" in proc.stdout, proc.stdout


def test_the_layers_contract_follows_design_md():
    """DESIGN.md, "Layers": shared contracts and utilities -> serving.engine -> the components -> autoscaler -> ui ->
    headroom (bench, outside the package, may import any)."""
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    (layers,) = [c["layers"] for c in contracts if c["type"] == "layers"]
    top_down = [{name.strip() for name in layer.split("|")} for layer in layers]
    assert top_down[:3] == [{"headroom"}, {"ui"}, {"autoscaler"}]
    assert {"exporters", "loadgen", "serving.emulator", "serving.fleet"} <= top_down[3]
    assert top_down[4] == {"serving.engine"} and "serving.http" in top_down[5] and top_down[6] == {"serving.contracts"}
