"""DESIGN.md habit 9: layering enforced with import-linter (the pure engine and load-generation cores import no I/O package)."""

import shutil
import subprocess
import sys
from pathlib import Path


def test_import_contracts_hold():
    lint = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    proc = subprocess.run([lint], cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Contracts: 3 kept, 0 broken" in proc.stdout
