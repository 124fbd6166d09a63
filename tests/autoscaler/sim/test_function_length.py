"""The simulator's code stays readable: no function in autoscaler/sim/ longer than a screen (60 lines)."""

import ast
from pathlib import Path

import autoscaler.sim

LIMIT = 60


def long_functions(folder: Path, limit: int = LIMIT) -> list[str]:
    found = []
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > limit:
                    found.append(f"{path.relative_to(folder.parent)}:{node.lineno} {node.name} ({lines} lines)")
    return found


def test_no_simulator_function_is_longer_than_a_screen():
    assert long_functions(Path(autoscaler.sim.__file__).parent) == []


def test_the_check_finds_a_long_function(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(LIMIT))
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "m.py").write_text(f"def long():\n{body}\n")
    assert long_functions(tmp_path / "pkg") == ["pkg/m.py:1 long (61 lines)"]
