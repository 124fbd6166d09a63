"""The NVML GPU exporter against nvidia-smi on a real GPU: idle, then under a torch matrix-multiply loop.

Measures only where an NVIDIA driver is present (the `device` machine: `python3 -m bench.gpu_exporter --out FILE`
writes the section and its raw samples); `python -m bench gpu-exporter` measures there, and elsewhere rebuilds the
section from the samples recorded in bench/data.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

# exporter field -> (nvidia-smi query field, how to compare)
PAIRS = {
    "DCGM_FI_DEV_GPU_UTIL": "utilization.gpu",
    "DCGM_FI_DEV_FB_USED": "memory.used",
    "DCGM_FI_DEV_FB_FREE": "memory.free",
    "DCGM_FI_DEV_FB_RESERVED": "memory.reserved",
    "DCGM_FI_DEV_POWER_USAGE": "power.draw",
    "DCGM_FI_DEV_SM_CLOCK": "clocks.sm",
    "DCGM_FI_DEV_MEM_CLOCK": "clocks.mem",
    "DCGM_FI_DEV_GPU_TEMP": "temperature.gpu",
}
UNITS = {
    "DCGM_FI_DEV_GPU_UTIL": "%",
    "DCGM_FI_DEV_FB_USED": "MiB",
    "DCGM_FI_DEV_FB_FREE": "MiB",
    "DCGM_FI_DEV_FB_RESERVED": "MiB",
    "DCGM_FI_DEV_POWER_USAGE": "W",
    "DCGM_FI_DEV_SM_CLOCK": "MHz",
    "DCGM_FI_DEV_MEM_CLOCK": "MHz",
    "DCGM_FI_DEV_GPU_TEMP": "C",
}
PROFILING = ["DCGM_FI_PROF_GR_ENGINE_ACTIVE", "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "DCGM_FI_PROF_DRAM_ACTIVE"]
ENERGY = "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"
RECORDED = Path(__file__).resolve().parent / "data" / "gpu_exporter.json"

LOAD = """
import sys, time, torch
a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
hold = torch.empty(int(sys.argv[2]) << 20, dtype=torch.uint8, device="cuda")  # a known amount of memory
end = time.time() + float(sys.argv[1])
n = 0
while time.time() < end:
    for _ in range(20):
        c = a @ b
    torch.cuda.synchronize()
    n += 20
print(n * 2 * 8192 ** 3 / float(sys.argv[1]) / 1e12, "TFLOP/s", flush=True)
"""


def scrape(url: str) -> dict[str, float]:
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("gpu") == "0":  # the parser names the energy counter's sample with _total
                values[ENERGY if sample.name == ENERGY + "_total" else sample.name] = sample.value
    return values


def smi() -> dict[str, float]:
    fields = list(PAIRS.values())
    line = subprocess.run(
        ["nvidia-smi", "-i", "0", f"--query-gpu={','.join(fields)}", "--format=csv,noheader,nounits"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    out = {}
    for field, value in zip(fields, (v.strip() for v in line.split(","))):
        try:
            out[field] = float(value)
        except ValueError:
            pass  # "[N/A]"
    return out


def sample_phase(url: str, phase: str, seconds: float, every_s: float = 1.0) -> list[dict]:
    rows, end = [], time.time() + seconds
    while time.time() < end:
        exporter, reference = scrape(url), smi()
        rows.append({"phase": phase, "time": time.time(), "exporter": exporter, "smi": reference})
        time.sleep(every_s)
    return rows


def measure(port: int = 9400, idle_s: float = 12.0, load_s: float = 40.0, hold_mib: int = 20480) -> dict:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    exporter = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "headroom",
            "gpu-exporter",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--interval",
            "1",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        for _ in range(100):
            try:
                scrape(url)
                break
            except OSError:
                time.sleep(0.2)
        time.sleep(2.0)  # two samples in: the GPM ratios have a previous sample
        rows = sample_phase(url, "idle", idle_s)
        load = subprocess.Popen(
            [sys.executable, "-c", LOAD, str(load_s + 8), str(hold_mib)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        time.sleep(6.0)  # the load is up: allocations made, clocks raised
        energy_start = scrape(url).get(ENERGY)
        start = time.time()
        rows += sample_phase(url, "load", load_s)
        energy_end, elapsed = scrape(url).get(ENERGY), time.time() - start
        tflops = load.communicate(timeout=120)[0].strip()
    finally:
        exporter.terminate()
        log = exporter.communicate(timeout=10)[0]
    gpu = subprocess.run(
        ["nvidia-smi", "-i", "0", "--query-gpu=name,driver_version", "--format=csv,noheader"],
        check=False,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return {
        "rows": rows,
        "energy_mj": (energy_start, energy_end),
        "energy_elapsed_s": elapsed,
        "load": tflops,
        "gpu": gpu,
        "hold_mib": hold_mib,
        "exporter_log": log[-2000:],
    }


def _tflops(printed: str) -> str:
    value, _, unit = printed.partition(" ")
    try:
        return f"{float(value):,.0f} {unit}"
    except ValueError:
        return printed


def recorded_or_measured() -> str:
    """Measure where an NVIDIA driver is present; elsewhere rebuild the table from the last recorded run."""
    from exporters.gpu.nvml_reader import NoNvidiaDriver, start_nvml

    try:
        start_nvml()
    except NoNvidiaDriver:  # no driver here: the recorded samples from the device machine
        result = json.loads(RECORDED.read_text())
        return section(result) + f"\n\nRecorded on the device machine; raw samples in `bench/data/{RECORDED.name}`."
    result = measure()
    RECORDED.write_text(json.dumps(result, indent=1))
    return section(result)


def section(result: dict) -> str:
    rows = result["rows"]
    lines = [
        "### NVML GPU exporter against nvidia-smi on a real GPU",
        "",
        (
            f"GPU: {result['gpu']}. `headroom gpu-exporter` (NVML every 1 s) scraped over HTTP once a second, each scrape "
            "beside an `nvidia-smi --query-gpu` call; idle, then under a torch bf16 8192x8192 matrix-multiply loop "
            f"({_tflops(result['load'])}) that also holds {result['hold_mib']:,} MiB. Medians over the phase; the difference is the "
            "median of the paired absolute differences (both tools sample the driver at slightly different instants)."
        ),
        "",
        "| field | unit | phase | exporter | nvidia-smi | median abs difference | samples |",
        "|---|---|---|---|---|---|---|",
    ]
    for field, query in PAIRS.items():
        for phase in ("idle", "load"):
            pairs = [
                (r["exporter"][field], r["smi"][query])
                for r in rows
                if r["phase"] == phase and field in r["exporter"] and query in r["smi"]
            ]
            if not pairs:
                lines.append(f"| {field} | {UNITS[field]} | {phase} | missing | | | 0 |")
                continue
            ours = statistics.median(p[0] for p in pairs)
            theirs = statistics.median(p[1] for p in pairs)
            diff = statistics.median(abs(a - b) for a, b in pairs)
            lines.append(
                f"| {field} ({query}) | {UNITS[field]} | {phase} | {ours:,.1f} | {theirs:,.1f} | {diff:,.1f} | {len(pairs)} |"
            )
    lines += ["", "| profiling field (GPM) | idle | load |", "|---|---|---|"]
    for field in PROFILING:
        cell = lambda phase, field=field: (
            f"{statistics.median(v):.3f}"
            if (v := [r["exporter"][field] for r in rows if r["phase"] == phase and field in r["exporter"]])
            else "not served"
        )
        lines.append(f"| {field} | {cell('idle')} | {cell('load')} |")
    start, end = result["energy_mj"]
    load_power = [
        r["exporter"]["DCGM_FI_DEV_POWER_USAGE"]
        for r in rows
        if r["phase"] == "load" and "DCGM_FI_DEV_POWER_USAGE" in r["exporter"]
    ]
    if start is not None and end is not None and load_power:
        lines += [
            "",
            (
                f"Energy counter over the load phase: {(end - start) / 1e3 / result['energy_elapsed_s']:,.1f} W on average "
                f"(its increase over {result['energy_elapsed_s']:.1f} s), against {statistics.mean(load_power):,.1f} W mean power reading."
            ),
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True, help="write the markdown section here (and the raw samples beside it)")
    args = parser.parse_args()
    result = measure()
    Path(args.out).with_suffix(".json").write_text(json.dumps(result, indent=1))
    Path(args.out).write_text(section(result) + "\n")
    print(section(result))


if __name__ == "__main__":
    main()
