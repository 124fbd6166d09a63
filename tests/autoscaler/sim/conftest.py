"""Load tables the simulator's tests share: measured once per test session, whichever worker asks first."""

import fcntl

import numpy as np
import pytest

from autoscaler.capacity.load_table import build_load_table
from serving.common.disk_cache import DiskCache
from serving.profiles import load_profile


@pytest.fixture(scope="session")
def chat_table(tmp_path_factory, testrun_uid):
    """Llama-3.1-8B on H100, 1,500-token prompts and 300-token answers, TTFT <= 1 s and ITL <= 50 ms."""
    # one folder for every xdist worker of this run, and of this run only (a later run measures afresh)
    shared = tmp_path_factory.getbasetemp().parent / f"tables-{testrun_uid}"
    shared.mkdir(exist_ok=True)
    with open(shared / "chat-table.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one worker measures; the others wait and read it from the cache
        profile = load_profile("llama-3.1-8b-h100")
        build = lambda: build_load_table(profile, np.full(50, 1500), np.full(50, 300), 1.0, 0.05)
        return DiskCache(shared / "cache")("load-tables", "chat-1500-300", build)
