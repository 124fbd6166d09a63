"""Capacity cells measured in a spawned, niced child: a poll never waits, the result is the one measured in-process
and lands in the same disk cache, and closing stops the child."""

import multiprocessing
import os
import time

from headroom.capacity_cells import BackgroundCells, measure_cell
from serving.profiles import load_profile


def test_a_cell_is_measured_in_a_low_priority_child_and_kept_on_disk(tmp_path):
    profile = load_profile("llama-3.1-8b-a100-80gb")
    cells = BackgroundCells(profile, 1.0, 0.05, tmp_path)
    try:
        assert cells.poll(512.0, 128.0) is None  # started, not waited on
        (child,) = multiprocessing.active_children()
        deadline = time.monotonic() + 300
        while os.getpriority(os.PRIO_PROCESS, child.pid) != 19 and time.monotonic() < deadline:
            time.sleep(0.05)  # until the spawned child has run its initializer
        assert os.getpriority(os.PRIO_PROCESS, child.pid) == 19
        value = None
        while value is None and time.monotonic() < deadline:
            time.sleep(0.2)
            value = cells.poll(512.0, 128.0)
    finally:
        cells.close()
    assert value is not None and value > 0
    assert not multiprocessing.active_children()  # the child is gone
    started = time.monotonic()
    assert measure_cell(profile, 1.0, 0.05, tmp_path, 512.0, 128.0) == value  # read back from disk, not measured again
    assert time.monotonic() - started < 1.0
