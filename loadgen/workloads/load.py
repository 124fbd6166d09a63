"""Any supported trace as a Workload: Azure CSV, JSONL replay file, or a ServeGen folder (synthesized with
lengths drawn from another trace); windowed, time- and rate-scaled. Shared by the simulator and the campaigns."""

from __future__ import annotations

import math
from pathlib import Path

from loadgen.workloads.azure import load_azure
from loadgen.workloads.jsonl import load_jsonl
from loadgen.workloads.servegen import LengthSampler, load_servegen, synthesize
from loadgen.workloads.workload import Workload

SERVEGEN_DEFAULT_S = 3600.0  # a ServeGen folder holds days: without an end, one hour from the start


def length_sampler(lengths_from: str | None) -> LengthSampler:
    """Lengths of the given trace, or log-normal with the Azure conv means when none is given."""
    if lengths_from:
        return LengthSampler.from_workload(load_workload(lengths_from))
    return LengthSampler.lognormal(1155, 211)


def load_workload(
    trace: str,
    *,
    start_s: float = 0.0,
    end_s: float | None = None,
    time_scale: float = 1.0,
    rate_scale: float = 1.0,
    seed: int = 0,
    lengths_from: str | None = None,
) -> Workload:
    path = Path(trace)
    if path.is_dir():
        # scaled as windows (shorter, busier), then synthesized: the same arrivals as the fluid mode's counts
        windows = load_servegen(path).scaled(time_scale, rate_scale)
        end = end_s if end_s is not None else start_s + SERVEGEN_DEFAULT_S
        workload = synthesize(
            windows, length_sampler(lengths_from), seed, start_s / time_scale, end / time_scale, name=path.name
        )
    elif path.suffix == ".jsonl":
        workload = load_jsonl(path)
    elif path.suffix == ".csv":
        workload = load_azure(path)
    elif not path.exists():
        raise FileNotFoundError(f"trace {trace} does not exist")
    else:
        raise ValueError(f"trace {trace}: expected an Azure .csv, a .jsonl replay file or a ServeGen folder")
    if not path.is_dir() and (start_s or end_s is not None):
        workload = workload.window(start_s, end_s if end_s is not None else math.inf)
    if not path.is_dir() and (time_scale != 1.0 or rate_scale != 1.0):
        workload = workload.scaled(time_scale, rate_scale, seed)
    if len(workload) == 0:
        raise ValueError(f"trace {trace}: no requests in the selected range")
    return workload
