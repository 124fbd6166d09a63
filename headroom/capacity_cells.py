"""Capacity cells of the autoscaler's table, kept on disk and measured in a child process at the lowest CPU priority,
so that a pass needing a cell nobody measured yet goes on with the cells it has instead of running the engine."""

from __future__ import annotations

import json
import logging
import multiprocessing
import multiprocessing.pool
import os
from pathlib import Path

from serving.common.disk_cache import DiskCache
from serving.engine.profile import Profile

log = logging.getLogger("headroom.autoscaler")


def measure_cell(profile: Profile, ttft_s: float, itl_s: float, folder: Path | None, prompt: float, output: float):
    """Requests/s one replica carries at the SLO for a mix (autoscaler.capacity.mix_cells), once per cache folder."""
    from autoscaler.capacity.mix_cells import engine_cell

    key = _key(profile, ttft_s, itl_s, prompt, output)
    return DiskCache(folder)("capacity", key, lambda: engine_cell(profile, ttft_s, itl_s)(prompt, output))


def _key(profile: Profile, ttft_s: float, itl_s: float, prompt: float, output: float) -> tuple:
    return ("capacity-cell", profile.model_dump(), prompt, output, ttft_s, itl_s, 1)


def _lowest_priority() -> None:
    os.nice(19)  # the replicas, the gateway and the load share these cores: a measurement takes only what is idle


class BackgroundCells:
    """`poll(prompt, output)`: the cell once measured, else None, having started its measurement (one at a time, in a
    spawned child: the engine model holds the GIL for seconds, and the stack's gateway shares this process)."""

    def __init__(self, profile: Profile, ttft_s: float, itl_s: float, folder: Path | None):
        self._args = (profile, ttft_s, itl_s, folder)
        self._pool = None
        self._jobs: dict[tuple[float, float], multiprocessing.pool.AsyncResult] = {}

    def poll(self, prompt: float, output: float) -> float | None:
        job = self._jobs.get((prompt, output))
        if job is None:
            profile, ttft_s, itl_s, folder = self._args
            kept = DiskCache(folder).get("capacity", _key(profile, ttft_s, itl_s, prompt, output))
            if kept is not None:  # measured by an earlier run or another process: no child needed
                return kept
            if self._pool is None:
                context = multiprocessing.get_context("spawn")
                self._pool = context.Pool(1, initializer=_lowest_priority)
            self._jobs[(prompt, output)] = self._pool.apply_async(measure_cell, (*self._args, prompt, output))
            log.info(json.dumps({"event": "capacity_cell_measuring", "prompt_tokens": prompt, "output_tokens": output}))
            return None
        if not job.ready():
            return None
        del self._jobs[(prompt, output)]
        return job.get()  # a measurement that failed raises here, in the pass, and is started again by the next

    def close(self) -> None:
        """Stop the child, by its handle, measurement or not."""
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None
        self._jobs.clear()
