"""Benchmarks: engine fidelity, roofline floor, emulator cost; `python -m bench` writes docs/benchmarks.md."""

import os

from serving.common.disk_cache import cache_folder

CACHE = cache_folder(os.environ)  # load tables, capacities and sweeps are kept here between benchmark runs
