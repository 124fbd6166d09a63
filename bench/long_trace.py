"""Long-prompt trace synthesis (agent and RAG sessions with prefix-block ids) and the simulator's cost on it."""

from __future__ import annotations

import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from loadgen.arrivals import arrival_times
from loadgen.workloads.servegen import LengthSampler

HASH_BLOCK_TOKENS = 512  # the block size of `hash_ids` in the Mooncake and aiperf traces
SYSTEM_PROMPTS = 8  # shared system prompts (tools, instructions) that every session starts from
SYSTEM_BLOCKS = 4  # of 512 tokens each
TURNS_PER_SESSION = 6.0  # mean turns of a session: each turn's prompt extends the last one's


def synthesize_long_trace(
    path: Path,
    requests: int = 12_000,
    duration_s: float = 3600.0,
    prompt_mean: float = 12_000.0,
    output_mean: float = 300.0,
    seed: int = 0,
) -> Path:
    """A JSONL trace (guidellm and aiperf's replay format) of `requests` Poisson arrivals over `duration_s`.

    Prompts are drawn log-normal around `prompt_mean` tokens; each belongs to a session that starts from one of
    a few shared system prompts, and a session's turns arrive in order with growing prompts, so each turn's
    prefix blocks are the previous turn's plus new ones (what prefix caching serves in agent loops and RAG chats).
    """
    rng = np.random.default_rng(seed)
    arrivals = arrival_times(lambda t: np.full_like(t, requests / duration_s), duration_s, "poisson", seed=seed)
    lengths = LengthSampler.lognormal(prompt_mean, output_mean, sigma=0.5, seed=seed, n=len(arrivals))
    prompts, outputs = lengths.prompts, lengths.outputs
    prompts = np.clip(prompts, SYSTEM_BLOCKS * HASH_BLOCK_TOKENS + 1, 100_000)
    session = _sessions(len(arrivals), rng)
    prompts = _grow_within_sessions(prompts, session)
    system = rng.integers(0, SYSTEM_PROMPTS, session.max() + 1)
    path = Path(path)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as out:
        for i, at in enumerate(arrivals):
            s = int(session[i])
            blocks = int(prompts[i]) // HASH_BLOCK_TOKENS
            own = max(0, blocks - SYSTEM_BLOCKS)
            ids = [int(system[s]) * 100 + k for k in range(SYSTEM_BLOCKS)]
            ids += [1_000_000 + s * 1000 + k for k in range(own)]
            row = {
                "timestamp": round(at * 1000.0, 3),
                "input_length": int(prompts[i]),
                "output_length": int(outputs[i]),
            }
            row["hash_ids"] = ids
            out.write(json.dumps(row) + "\n")
    tmp.replace(path)
    return path


def _sessions(n: int, rng: np.random.Generator) -> np.ndarray:
    """Session of each request in arrival order: sessions open at random and their turns interleave."""
    count = max(1, int(math.ceil(n / TURNS_PER_SESSION)))
    session = rng.integers(0, count, n)
    _, first = np.unique(session, return_index=True)
    renumber = np.empty(count, dtype=np.int64)  # number sessions by their first turn
    renumber[session[np.sort(first)]] = np.arange(len(first))
    return renumber[session]


def _grow_within_sessions(prompts: np.ndarray, session: np.ndarray) -> np.ndarray:
    """The same lengths, reordered within each session so that its turns' prompts grow."""
    out = prompts.copy()
    order = np.lexsort((np.arange(len(session)), session))  # by session, then arrival
    bounds = np.flatnonzero(np.diff(session[order])) + 1
    for part in np.split(order, bounds):
        out[part] = np.sort(prompts[part])
    return out


POLICIES = ("static:6", "hpa:gpu_util=70", "kpa:16", "keda", "predictive")
GOAL_CPU_S = {"request": 30.0, "fluid": 10.0}
GOAL_PEAK_MIB = 2048.0


def measure_one(trace: str, mode: str, policy: str) -> dict:
    """One policy over the trace in this process: its summary, CPU seconds and peak memory (the whole process)."""
    from autoscaler.sim.args import SimulateArgs
    from autoscaler.sim.run import run_one
    from bench import CACHE

    started = time.process_time()
    result = run_one(SimulateArgs(cache_dir=CACHE, trace=trace, policies=[policy], mode=mode), policy)
    cpu_s = time.process_time() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return {"mode": mode, "policy": policy, "cpu_s": cpu_s, "peak_mib": peak_mib, **result.summary}


def measure(trace: Path, modes=("request", "fluid"), policies=POLICIES, timeout_s: float = 600.0) -> list[dict]:
    """Each (mode, policy) in a fresh process, so that peak memory is its own; a run past `timeout_s` is reported."""
    rows = []
    for mode in modes:
        for policy in policies:
            command = [sys.executable, "-m", "bench.long_trace", "one", str(trace), mode, policy]
            try:
                done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=True)
                rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            except subprocess.TimeoutExpired:
                rows.append({"mode": mode, "policy": policy, "cpu_s": math.inf, "peak_mib": math.nan})
            print(f"long trace: {mode} {policy}: {rows[-1]['cpu_s']:.1f} CPU-s", file=sys.stderr, flush=True)
    return rows


def long_trace_section() -> str:
    with tempfile.TemporaryDirectory() as folder:
        trace = synthesize_long_trace(Path(folder) / "long.jsonl")
        rows = measure(trace)
    lines = [
        "### Long prompts with prefix-block ids (one hour, 12,000 requests)",
        "",
        (
            "`python -m bench sim-long`: a synthesized hour (`bench/long_trace.py`) of 12,000 Poisson arrivals whose "
            "prompts average 12,000 tokens (log-normal, sigma 0.5) and answers 300, in sessions of about 6 turns that "
            "start from one of 8 shared 2,048-token system prompts and extend the previous turn's prompt, written as "
            "JSONL with 512-token `hash_ids` (the Mooncake and aiperf format) and read by `headroom simulate`'s loader. "
            "Each run is a fresh process: CPU seconds and peak resident memory are its own, loading included; the "
            "predictive policy's capacity is measured on the engine once and then read from the disk cache. Fluid mode "
            "runs the cohort replicas, which do not model prefix-cache hits (the request level does, in its KV cache)."
        ),
        "",
        "| mode | policy | CPU seconds | goal | peak memory (MiB) | goal | attainment | GPU-hours |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        cpu_goal, ok_cpu = GOAL_CPU_S[row["mode"]], row["cpu_s"] <= GOAL_CPU_S[row["mode"]]
        ok_mem = row["peak_mib"] <= GOAL_PEAK_MIB
        lines.append(
            f"| {row['mode']} | {row['policy']} | {row['cpu_s']:.1f} | <= {cpu_goal:g}: {'met' if ok_cpu else 'missed'} "
            f"| {row['peak_mib']:.0f} | <= {GOAL_PEAK_MIB:g}: {'met' if ok_mem else 'missed'} "
            f"| {row.get('slo_attainment', math.nan):.2%} | {row.get('gpu_hours', math.nan):.2f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "one":
        print(json.dumps(measure_one(*sys.argv[2:])))
    else:
        sys.exit("usage: python -m bench.long_trace one TRACE MODE POLICY")
