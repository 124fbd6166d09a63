"""What the simulator's tests share in one test run: a disk cache for load tables (measured once, by whichever
worker asks first) and the chat-mix table several modules read."""

import numpy as np
import pytest

from autoscaler.capacity.load_table import build_load_table
from serving.common.disk_cache import DiskCache
from serving.profiles import load_profile


@pytest.fixture(scope="session")
def sim_cache(tmp_path_factory, testrun_uid):
    """One folder for every xdist worker of this run, and of this run only (a later run measures afresh)."""
    folder = tmp_path_factory.getbasetemp().parent / f"sim-cache-{testrun_uid}"
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def chat_table(sim_cache):
    """Llama-3.1-8B on H100, 1,500-token prompts and 300-token answers, TTFT <= 1 s and ITL <= 50 ms."""
    profile = load_profile("llama-3.1-8b-h100")
    build = lambda: build_load_table(profile, np.full(50, 1500), np.full(50, 300), 1.0, 0.05)
    return DiskCache(sim_cache)("test-tables", "chat-1500-300", build)
