"""Golden summaries: short runs of every simulator mode must give the summaries recorded before a refactor.

A change that moves a figure on purpose rerecords them (`python -m tests.autoscaler.sim.test_golden`) and says
in its commit which figures moved and why."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

from autoscaler.sim.args import SimulateArgs
from autoscaler.sim.run import run_one
from tests.helpers import SHARED_DATA

GOLDEN = Path(__file__).parent / "golden" / "summaries.json"
TRACES = SHARED_DATA / "traces"
SERVEGEN_WINDOWS = {  # a small ServeGen folder (window start, rate, cv, distribution, its two parameters)
    "chunk-1-trace.csv": "0,6.0,2.0,Gamma,0.25,0.67\n600,20.0,1.5,Weibull,0.7,0.04\n1200,4.0,1.0,Gamma,1.0,0.25\n",
    "chunk-2-trace.csv": "0,2.0,1.0,Gamma,1.0,0.5\n600,0,0,,0,0\n1200,2.0,1.0,Gamma,1.0,0.5\n",
}
CONV = {"trace": "AzureLLMInferenceTrace_conv.csv", "end_s": 900.0, "rate_scale": 2.0}
CODE = {"trace": "AzureLLMInferenceTrace_code.csv", "end_s": 900.0}
SERVEGEN = {"trace": "servegen", "end_s": 1800.0, "mode": "fluid", "max_replicas": 10}
CASES = {  # name: (arguments, policy)
    "conv-request-hpa": (CONV, "hpa:gpu_util=70"),
    "conv-request-kpa": (CONV, "kpa:16"),
    "code-request-predictive": (CODE, "predictive"),
    "conv-cohort-kpa": ({**CONV, "mode": "fluid"}, "kpa:16"),
    "code-cohort-keda": ({**CODE, "mode": "fluid"}, "keda"),
    "servegen-table-hpa": (SERVEGEN, "hpa:running=8"),
    "servegen-table-keda": ({**SERVEGEN, "clock_phase_s": 7.0}, "keda"),
}


def run_case(name: str, servegen: Path, cache_dir: Path | None = None) -> dict:
    arguments, policy = CASES[name]
    trace = servegen if arguments["trace"] == "servegen" else TRACES / arguments["trace"]
    args = SimulateArgs(**{"max_replicas": 20, **arguments, "trace": str(trace)}, policies=[], cache_dir=cache_dir)
    result = run_one(args, policy)
    figures = {key: value for key, value in result.summary.items() if isinstance(value, int | float)}
    for column in ("desired", "ready", "running", "waiting"):
        figures[f"timeline_{column}_sum"] = float(result.timeline[column].sum())
    figures["decisions"] = len(result.decisions)
    return {key: float(value) for key, value in figures.items()}


def write_servegen(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in SERVEGEN_WINDOWS.items():
        (folder / name).write_text(text)
    return folder


@pytest.fixture(scope="module")
def servegen(tmp_path_factory):
    return write_servegen(tmp_path_factory.mktemp("servegen"))


@pytest.mark.parametrize("name", sorted(CASES))
def test_summary_matches_the_recorded_one(name, servegen, sim_cache):
    expected = json.loads(GOLDEN.read_text())[name]
    got = run_case(name, servegen, sim_cache)
    assert sorted(got) == sorted(expected)
    moved = {
        key: (expected[key], got[key])
        for key in expected
        if not (
            math.isclose(got[key], expected[key], rel_tol=1e-9, abs_tol=1e-12)
            or (math.isnan(got[key]) and math.isnan(expected[key]))
        )
    }
    assert not moved, f"{name}: figures moved (recorded, now): {moved}"


def record() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        servegen = write_servegen(Path(folder) / "servegen")
        golden = {name: run_case(name, servegen) for name in sorted(CASES)}
    GOLDEN.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")
    print(f"recorded {len(golden)} summaries in {GOLDEN}", file=sys.stderr)


if __name__ == "__main__":
    record()
