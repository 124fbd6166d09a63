"""The inner loop's cost: `make test-fast` as shipped, and side by side the configuration it replaced (two workers
handed fixed shares of the tests), on this machine. Wall and CPU seconds of the whole run, its outcome."""

from __future__ import annotations

import re
import resource
import subprocess
import time
from pathlib import Path

from bench.__main__ import _table

ROOT = Path(__file__).resolve().parents[1]
GOAL_S = 180.0  # issue 31: everything but tests/integration/ in under 3 minutes on 2 cores
CONFIGURATIONS = (
    ("make test-fast (3 workers, --dist worksteal)", []),
    ("before 2026-12-06: 2 workers, --dist load", ['UNIT_TESTS=-m "not integration" -n 2']),
)


def timed(overrides: list[str]) -> dict:
    """One `make test-fast` with Makefile variables overridden; wall and children's CPU seconds, and the outcome."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    run = subprocess.run(["make", "-s", "test-fast", *overrides], check=False, cwd=ROOT, capture_output=True, text=True)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu, "outcome": outcome_of(run.stdout, run.returncode)}


def outcome_of(stdout: str, returncode: int) -> str:
    """pytest's last summary line ("3 failed, 652 passed in 150.21s (0:02:30)"), or the exit status without one."""
    lines = re.findall(r"^=*\s*(\d+ (?:passed|failed)[^\n=]*?)\s*=*$", stdout, re.MULTILINE)
    return lines[-1] if lines else f"exit {returncode}"


def suite_section() -> str:
    rows = [{"configuration": name, **timed(overrides)} for name, overrides in CONFIGURATIONS]
    shipped, before = rows
    verdict = "met" if shipped["wall_s"] < GOAL_S and "failed" not in shipped["outcome"] else "not met"
    return "\n".join(
        [
            "## Test suite: `make test-fast`",
            "",
            (
                "`python -m bench test-suite`: the unit tests (everything but `tests/integration/`) as `make test-fast` "
                "runs them, and side by side the same tests with the worker configuration it replaced, in one run on "
                "this machine. Wall time of the make command; CPU time of all its processes."
            ),
            "",
            _table(
                rows,
                [
                    ("configuration", "configuration", ""),
                    ("wall_s", "wall s", "{:.0f}"),
                    ("cpu_s", "CPU s", "{:.0f}"),
                    ("outcome", "outcome", ""),
                ],
            ),
            "",
            (
                f"Shipped against the one before: {shipped['wall_s'] / before['wall_s']:.2f}x the wall time. Goal "
                f"(issue 31): under {GOAL_S:.0f} s on 2 cores: {verdict}."
            ),
        ]
    )
