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
    """DESIGN.md, "Layers": shared contracts -> shared utilities -> serving.engine -> the components -> autoscaler ->
    ui -> headroom -> bench, in one contract for the whole tree."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (layers,) = [c["layers"] for c in config["contracts"] if c["type"] == "layers"]
    top_down = [{name.strip() for name in layer.split("|")} for layer in layers]
    assert top_down[:4] == [{"bench"}, {"headroom"}, {"ui"}, {"autoscaler"}]
    assert {"exporters", "loadgen", "serving.emulator", "serving.fleet", "dashboards"} <= top_down[4]
    assert top_down[5:] == [{"serving.engine"}, {"serving.common"}, {"serving.contracts"}]
    every_package = {path.parent.name for path in ROOT.glob("*/__init__.py")} - {"tests"}
    assert every_package <= set(config["root_packages"]), "a top-level package outside the layers contract"
