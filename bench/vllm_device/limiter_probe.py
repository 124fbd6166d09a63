"""On the GPU host: how the board's power limiter moves the SM clock when load alternates between compute-bound
bursts (a prefill's GEMMs) and memory-bound stretches (decode steps), sampled through NVML every few milliseconds.
DCGM's one-second samples cannot show it (docs/vllm-on-h200.md, "What is left is the limiter").

usage: python3 -m bench.vllm_device.limiter_probe OUT_FOLDER (from the repository root)

Writes samples.csv (time, power averaged by the board, instant power, energy counter, SM clock, clock-event
reasons; every `GPM_EVERY_S` the tensor pipe's and HBM's activity since the last such reading, as DCGM reads
them), work.csv (each synchronized chunk of work: start, end, phase, what it did) and phases.csv (one row a phase:
mean power, clock and activity, work rate), and prints phases.csv. Needs torch and nvidia-ml-py, as the host has;
reads NVML through the GPU exporter's helpers."""

import csv
import json
import multiprocessing
import sys
import time
from pathlib import Path

SAMPLE_EVERY_S = 0.002
GPM_EVERY_S = 0.1  # the activity is a ratio between two GPM samples: one a tenth of a second, as NVML's power updates
GEMM_N = 8192  # one bf16 product of two 8192 x 8192 matrices: 1.1 TFLOP, compute-bound
STREAM_BATCH, STREAM_IN, STREAM_OUT, STREAM_MATRICES = 8, 4096, 28672, 64  # 15 GB of weights read a step

# (pattern, [(phase kind, seconds)] repeated `times`): sustained load, then alternations at a closed loop's pace
PATTERNS = (
    ("gemm_sustained", [("idle", 3.0), ("gemm", 8.0)], 1),
    ("stream_sustained", [("idle", 3.0), ("stream", 5.0)], 1),
    ("gemm1_stream1.5", [("gemm", 1.0), ("stream", 1.5)], 6),
    ("gemm0.3_stream0.3", [("gemm", 0.3), ("stream", 0.3)], 12),
    ("gemm0.05_stream0.05", [("gemm", 0.05), ("stream", 0.05)], 40),
    ("gemm2_idle1", [("idle", 1.0), ("gemm", 2.0)], 4),
    ("mix_sustained", [("idle", 2.0), ("mix", 4.0)], 1),  # a GEMM and a weight read in each chunk: a mixed step
    ("stream0.5_gemm0.15", [("stream", 0.5), ("gemm", 0.15)], 10),  # bursts shorter than the clamp's first update
)


def sample(out: str, stop) -> None:
    """NVML readings as fast as `SAMPLE_EVERY_S` allows, until `stop` is set; a failed reading is left blank."""
    import pynvml

    from exporters.gpu.nvml_reader import NvmlGpu, start_nvml, supported

    start_nvml()
    handle = pynvml.nvmlDeviceGetHandleByIndex(0)
    gpu, gpm_at = NvmlGpu(0), 0.0

    def instant():
        field = pynvml.nvmlDeviceGetFieldValues(handle, [pynvml.NVML_FI_DEV_POWER_INSTANT])[0]
        return field.value.uiVal if field.nvmlReturn == 0 else None

    with open(out, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(("time", "power_mw", "instant_mw", "energy_mj", "sm_mhz", "reasons", "tensor", "dram"))
        while not stop.is_set():
            now = time.time()
            activity = {}
            if now - gpm_at >= GPM_EVERY_S:
                activity, gpm_at = gpu.gpm_ratios(), now
            writer.writerow(
                (
                    f"{now:.4f}",
                    supported(pynvml.nvmlDeviceGetPowerUsage, handle),
                    supported(instant),
                    supported(pynvml.nvmlDeviceGetTotalEnergyConsumption, handle),
                    supported(pynvml.nvmlDeviceGetClockInfo, handle, pynvml.NVML_CLOCK_SM),
                    supported(pynvml.nvmlDeviceGetCurrentClocksEventReasons, handle),
                    activity.get("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", ""),
                    activity.get("DCGM_FI_PROF_DRAM_ACTIVE", ""),
                )
            )
            time.sleep(max(0.0, SAMPLE_EVERY_S - (time.time() - now)))


class Work:
    """The two kinds of load on the GPU, each run in chunks that end with a synchronize, so every chunk's host
    times bound its GPU time."""

    def __init__(self):
        import torch

        self.torch = torch
        g = torch.Generator(device="cuda").manual_seed(0)
        rand = lambda *shape: torch.randn(*shape, device="cuda", dtype=torch.bfloat16, generator=g)
        self.a, self.b, self.c = rand(GEMM_N, GEMM_N), rand(GEMM_N, GEMM_N), rand(GEMM_N, GEMM_N)
        self.x = rand(STREAM_BATCH, STREAM_IN)
        self.weights = [rand(STREAM_IN, STREAM_OUT) for _ in range(STREAM_MATRICES)]
        self.y = rand(STREAM_BATCH, STREAM_OUT)

    def gemm(self, count: int = 4) -> float:
        for _ in range(count):
            self.torch.matmul(self.a, self.b, out=self.c)
        return count * 2.0 * GEMM_N**3  # FLOPs

    def stream(self) -> float:
        for w in self.weights:
            self.torch.matmul(self.x, w, out=self.y)
        return float(sum(w.numel() * w.element_size() for w in self.weights))  # bytes read

    def _work(self, kind: str) -> float:
        if kind == "mix":
            return self.gemm(1) + self.stream()  # FLOPs and bytes summed: its rate is not a rate of either
        return self.gemm() if kind == "gemm" else self.stream()

    def run(self, kind: str, seconds: float) -> list[tuple]:
        """Chunks of `kind` until `seconds` have passed: (start, end, amount) each."""
        chunks, end = [], time.time() + seconds
        while time.time() < end:
            start = time.time()
            if kind == "idle":
                time.sleep(min(0.01, max(end - start, 0.0)))
                amount = 0.0
            else:
                amount = self._work(kind)
                self.torch.cuda.synchronize()
            chunks.append((start, time.time(), amount))
        return chunks


def phase_summary(samples: list[dict], rows: list[dict]) -> list[dict]:
    """Per phase: mean board and instant power, mean and least SM clock over its samples, the clock in its first
    and last 50 ms, the mean tensor and HBM activity its GPM readings saw, and its work rate (TFLOP/s or TB/s)."""
    summary = []
    for row in rows:
        inside = [s for s in samples if row["start"] <= s["time"] < row["end"]]
        if not inside:
            continue

        def mean(key, pick=inside):
            values = [s[key] for s in pick if s.get(key) is not None]
            return sum(values) / len(values) if values else float("nan")

        first = [s for s in inside if s["time"] < row["start"] + 0.05]
        last = [s for s in inside if s["time"] >= row["end"] - 0.05]
        seconds = row["end"] - row["start"]
        summary.append(
            {
                "pattern": row["pattern"],
                "cycle": row["cycle"],
                "kind": row["kind"],
                "seconds": round(seconds, 3),
                "samples": len(inside),
                "power_w": round(mean("power_mw") / 1000, 1),
                "instant_w": round(mean("instant_mw") / 1000, 1),
                "sm_mhz": round(mean("sm_mhz")),
                "sm_min_mhz": min(s["sm_mhz"] for s in inside),
                "sm_first_mhz": round(mean("sm_mhz", first)) if first else "",
                "sm_last_mhz": round(mean("sm_mhz", last)) if last else "",
                "tensor": round(mean("tensor"), 3),
                "dram": round(mean("dram"), 3),
                "rate": round(row["amount"] / max(row["busy_s"], 1e-9) / 1e12, 1),
            }
        )
    return summary


def main(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    facts = board_facts()
    (folder / "facts.json").write_text(json.dumps(facts, indent=1))
    print(facts)
    work = Work()
    for kind in ("gemm", "stream"):  # warm-up: cuBLAS handles and kernels chosen before the sampler starts
        work.run(kind, 1.0)
    spawn = multiprocessing.get_context("spawn")  # a fresh process: no CUDA state forked from this one
    stop = spawn.Event()
    sampler = spawn.Process(target=sample, args=(str(folder / "samples.csv"), stop))
    sampler.start()
    time.sleep(2.0)
    rows, chunks = [], []
    for pattern, phases, times in PATTERNS:
        for cycle in range(times):
            for kind, seconds in phases:
                done = work.run(kind, seconds)
                chunks += [(pattern, cycle, kind, *c) for c in done]
                busy = sum(c[1] - c[0] for c in done)
                rows.append(
                    {"pattern": pattern, "cycle": cycle, "kind": kind, "start": done[0][0], "end": done[-1][1]}
                    | {"amount": sum(c[2] for c in done), "busy_s": busy}
                )
        time.sleep(2.0)  # the board cools a little between patterns, as between a grid's runs
    stop.set()
    sampler.join()
    with open(folder / "work.csv", "w", newline="") as f:
        csv.writer(f).writerows([("pattern", "cycle", "kind", "start", "end", "amount"), *chunks])
    samples = read_samples(folder / "samples.csv")
    summary = phase_summary(samples, rows)
    with open(folder / "phases.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(summary[0]))
        writer.writeheader()
        writer.writerows(summary)
    print_means(summary)


def board_facts() -> dict:
    import pynvml

    from exporters.gpu.nvml_reader import start_nvml

    start_nvml()
    handle = pynvml.nvmlDeviceGetHandleByIndex(0)
    return {
        "name": pynvml.nvmlDeviceGetName(handle),
        "driver": pynvml.nvmlSystemGetDriverVersion(),
        "power_limit_w": pynvml.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000,
        "max_sm_mhz": pynvml.nvmlDeviceGetMaxClockInfo(handle, pynvml.NVML_CLOCK_SM),
    }


def read_samples(path: Path) -> list[dict]:
    """The sampler's rows with power and clock read; a blank instant power stays None."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return [
        {k: float(v) if v != "" else None for k, v in row.items()} for row in rows if row["power_mw"] and row["sm_mhz"]
    ]


def print_means(summary: list[dict]) -> None:
    """One line a pattern and phase kind: the means over its cycles (the first cycle apart)."""
    keys = ("power_w", "instant_w", "sm_mhz", "sm_min_mhz", "sm_first_mhz", "sm_last_mhz", "tensor", "dram", "rate")
    print("pattern,kind,cycles," + ",".join(keys))
    groups: dict[tuple, list[dict]] = {}
    for row in summary:
        groups.setdefault((row["pattern"], row["kind"]), []).append(row)
    for (pattern, kind), rows in groups.items():
        means = [sum(float(r[k] or 0) for r in rows) / len(rows) for k in keys]  # a phase without a GPM reading: nan
        print(f"{pattern},{kind},{len(rows)}," + ",".join(f"{m:.0f}" if m > 50 else f"{m:.2f}" for m in means))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
