"""When each benchmark run ran, to read the GPU exporter's samples of it: `runs.csv` (name, start and end, Unix
seconds) in a measured folder. `bench_driver.py` records them; for grids measured before it did, `match` finds them
in the samples from the runs' order and durations.

usage: python -m bench.vllm_device.runs FOLDER RUN... (the runs in the order they ran, as device.sh's GRID lists)"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np

BUSY = 0.6  # graphics engine active: the GPU works on a run's requests; between two runs it dips below for a second
EARLY_S = 2  # a run may start this much before the one before it ends by its measured duration (their clocks differ)
GAP_S = 90  # and at most this long after it (the client's set-up, or the next call)


def read_runs(folder: Path) -> dict[str, tuple[float, float]]:
    """name -> (start, end) of each run in `folder/runs.csv`; empty where it has none."""
    path = folder / "runs.csv"
    if not path.exists():
        return {}
    with open(path) as f:
        return {row["name"]: (float(row["start"]), float(row["end"])) for row in csv.DictReader(f)}


def write_runs(folder: Path, runs: dict[str, tuple[float, float]]) -> None:
    with open(folder / "runs.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["name", "start", "end"])
        for name, (start, end) in sorted(runs.items(), key=lambda item: item[1]):
            writer.writerow([name, f"{start:.1f}", f"{end:.1f}"])


def match(times: np.ndarray, busy: np.ndarray, runs: list[tuple[str, float]]) -> dict[str, tuple[float, float]]:
    """Each run's (start, end) in one-second samples (`times`, and whether the GPU was `busy` in each), the runs in
    the order they ran, each lasting its measured duration: the starts that leave the fewest busy seconds outside
    every run and idle seconds inside one, with a start after a dip preferred (dynamic programming over the
    samples). Runs the samples do not reach are left out."""
    seconds = np.round(np.asarray(times) - times[0]).astype(np.int64)  # on a grid of whole seconds: a missed
    n = int(seconds[-1]) + 1  # sample counts as idle
    on_grid = np.zeros(n, dtype=bool)
    on_grid[seconds] = np.asarray(busy, dtype=bool)
    busy, times = on_grid, times[0] + np.arange(n, dtype=np.float64)
    busy_before = np.concatenate([[0], np.cumsum(busy)])  # busy seconds among the first j samples
    lengths = [max(1, int(round(duration))) for _, duration in runs]
    fits = [i for i in range(len(runs)) if sum(lengths[:i]) < n]
    runs, lengths = runs[: len(fits)], lengths[: len(fits)]
    dip = busy & np.r_[True, ~busy[:-1]]  # sample j is busy after an idle second
    # idle samples of a run at j (its part past the last sample, where the sampler stopped, counts as neither)
    inside = lambda j, m: np.minimum(m, n - j) - (busy_before[np.minimum(j + m, n)] - busy_before[j])
    cost = np.full((len(runs), n), np.inf)
    came = np.zeros((len(runs), n), dtype=np.int64)
    cost[0] = busy_before[:n] + 0.5 * inside(np.arange(n), lengths[0]) - dip
    for i in range(1, len(runs)):
        for j in range(n):
            if not np.isfinite(cost[i - 1, j]):
                continue
            end = j + lengths[i - 1]
            for k in range(max(end - EARLY_S, j + 1), min(end + GAP_S, n)):
                skipped = busy_before[k] - busy_before[min(end, k)]  # busy seconds between the two runs
                total = cost[i - 1, j] + skipped + 0.5 * inside(k, lengths[i]) - dip[k]
                if total < cost[i, k]:
                    cost[i, k], came[i, k] = total, j
    last = len(runs) - 1
    tail = [busy_before[n] - busy_before[min(j + lengths[last], n)] for j in range(n)]
    j = int(np.argmin(cost[last] + tail))
    starts = [j]
    for i in range(last, 0, -1):
        j = int(came[i, j])
        starts.append(j)
    starts.reverse()
    return {name: (float(times[j] - 0.5), float(times[j] - 0.5 + d)) for (name, d), j in zip(runs, starts)}


def main(argv: list[str]) -> None:
    from bench.gpu_power import read_samples

    folder, order = Path(argv[0]), argv[1:]
    samples = read_samples(folder)
    with open(folder / "points.csv") as f:
        durations = {row["name"]: float(row["duration_s"]) for row in csv.DictReader(f)}
    missing = [name for name in order if name not in durations]
    if missing:
        raise SystemExit(f"no measured point named {', '.join(missing)} in {folder / 'points.csv'}")
    busy = samples["DCGM_FI_PROF_GR_ENGINE_ACTIVE"] >= BUSY
    runs = match(samples["time"], busy, [(name, durations[name]) for name in order])
    write_runs(folder, runs)
    print(f"{len(runs)} of {len(order)} runs found in the samples: {folder / 'runs.csv'}")


if __name__ == "__main__":
    main(sys.argv[1:])
