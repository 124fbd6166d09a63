"""On the GPU host: scrapes Headroom's own GPU exporter (`exporters.gpu`, dcgm-exporter's names) once a second while
vLLM runs, into a CSV of utilization, memory, power and clocks. Standard library only.

usage: python3 gpu_sampler.py URL OUT.csv SECONDS"""

import csv
import sys
import time
import urllib.request

FIELDS = (
    "DCGM_FI_DEV_GPU_UTIL",
    "DCGM_FI_DEV_FB_USED",
    "DCGM_FI_DEV_POWER_USAGE",
    "DCGM_FI_DEV_SM_CLOCK",
    "DCGM_FI_DEV_MEM_CLOCK",
    "DCGM_FI_DEV_GPU_TEMP",
    "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
    "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",
    "DCGM_FI_PROF_DRAM_ACTIVE",
)


def values(text: str) -> dict[str, float]:
    """The first sample of each field (one GPU)."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in FIELDS and name not in found:
            found[name] = float(line.rsplit(" ", 1)[1])
    return found


def sample(url: str, out: str, seconds: float) -> None:
    end = time.time() + seconds
    with open(out, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(("time", *FIELDS))
        while time.time() < end:
            started = time.time()
            try:
                read = values(urllib.request.urlopen(url, timeout=2).read().decode())
                writer.writerow((f"{started:.3f}", *(read.get(name, "") for name in FIELDS)))
                f.flush()
            except OSError:
                pass  # the exporter is not up yet, or a scrape timed out: the row is missing, not made up
            time.sleep(max(0.0, 1.0 - (time.time() - started)))


if __name__ == "__main__":
    sample(sys.argv[1], sys.argv[2], float(sys.argv[3]))
