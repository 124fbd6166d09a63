"""vLLM as the rendered manifests run it, on a real GPU (the device host): the rendered arguments, the startup probe's
budget against the measured start, and the rendered preStop drain against real streams, with a run without it for
comparison. Standard library only: it runs beside vLLM's own Python. `prepare` (here) writes the plan, `run` (there)
measures, `section` (here) turns the results into docs/benchmarks.md's table.

usage: python -m bench.k8s_device prepare PLAN.json
       python3 bench/k8s_device.py run PLAN.json MODEL_DIR OUT_DIR   (on the device; extra vLLM args after --)
       python -m bench.k8s_device section RESULTS.json"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request

STREAMS, ANSWER_TOKENS = 32, 4000  # long enough to outlast the endpoint drain's 15 s
PROFILES = {"H200": "llama-3.1-8b-h200", "H100": "llama-3.1-8b-h100"}


def prepare(path: str) -> None:
    from serving.k8s.render import (
        PROBE_PERIOD_S,
        ServingSettings,
        grace_period_s,
        prestop_script,
        startup_failure_threshold,
        vllm_args,
    )
    from serving.profiles import load_profile

    plan = {}
    for gpu, name in PROFILES.items():
        profile, settings = load_profile(name), ServingSettings()
        plan[gpu] = {
            "profile": name,
            "args": vllm_args(profile),
            "prestop": prestop_script(profile, settings),
            "startup_budget_s": startup_failure_threshold(profile) * PROBE_PERIOD_S,
            "grace_s": grace_period_s(profile, settings),
        }
    with open(path, "w") as f:
        json.dump(plan, f, indent=1)


def get(url: str, timeout: float = 5.0) -> bytes:
    return urllib.request.urlopen(url, timeout=timeout).read()


def start_server(args: list[str], log_path: str) -> tuple[subprocess.Popen, float]:
    started = time.time()
    with open(log_path, "ab") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "vllm.entrypoints.cli.main", "serve", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    while time.time() - started < 480:
        if server.poll() is not None:
            raise SystemExit(f"vLLM exited with {server.returncode} before /health answered: see {log_path}")
        try:
            if get("http://127.0.0.1:8000/health", 2) is not None:
                return server, time.time() - started
        except OSError:
            time.sleep(0.5)
    raise SystemExit("vLLM did not answer /health within 480 s")


def stream(model: str, tokens: int, results: list, index: int) -> None:
    """One streamed completion; records (ok, tokens received, seconds, end time)."""
    body = json.dumps(
        {
            "model": model,
            "prompt": " ".join(f"w{index}x{i}" for i in range(64)),
            "max_tokens": tokens,
            "ignore_eos": True,
            "stream": True,
        }
    ).encode()
    started, received, done = time.time(), 0, False
    try:
        request = urllib.request.Request(
            "http://127.0.0.1:8000/v1/completions", body, {"content-type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=600) as answer:
            for line in answer:
                if line.startswith(b"data: [DONE]"):
                    done = True
                elif line.startswith(b"data: "):
                    received += 1
    except OSError:
        pass
    results[index] = {
        "ok": done and received >= tokens,
        "tokens": received,
        "seconds": time.time() - started,
        "ended": time.time(),
    }


def launch_streams(model: str) -> tuple[list[threading.Thread], list]:
    results: list = [None] * STREAMS
    threads = [threading.Thread(target=stream, args=(model, ANSWER_TOKENS, results, i)) for i in range(STREAMS)]
    for thread in threads:
        thread.start()
    return threads, results


def stop(server: subprocess.Popen, grace_s: float = 120.0) -> float:
    """SIGTERM to the server's process, as the kubelet sends it to the container's after preStop; SIGKILL to all
    that is left when the grace runs out. Seconds until the server exits."""
    started = time.time()
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(grace_s)
    except subprocess.TimeoutExpired:
        pass
    exited = time.time() - started
    try:
        os.killpg(server.pid, signal.SIGKILL)  # the engine's worker processes, if any outlived it
    except ProcessLookupError:
        pass
    server.wait(30)
    return exited


def scenario(args: list[str], model: str, log: str, prestop: str | None) -> dict:
    server, ready_s = start_server(args, log)
    models = json.loads(get("http://127.0.0.1:8000/v1/models"))["data"]
    metrics = get("http://127.0.0.1:8000/metrics").decode()
    threads, results = launch_streams(model)
    time.sleep(3)
    terminating = time.time()  # the pod is deleted now
    hold_s = None
    if prestop is not None:
        subprocess.run([sys.executable, "-c", prestop], check=True, timeout=3600)
        hold_s = time.time() - terminating
    exit_s = stop(server)
    for thread in threads:
        thread.join(600)
    ends = [r["ended"] - terminating for r in results]
    return {
        "ready_s": ready_s,
        "served_models": [m["id"] for m in models],
        "gauges_exported": all(f"\nvllm:{g}{{" in metrics for g in ("num_requests_running", "num_requests_waiting")),
        "streams": STREAMS,
        "answer_tokens": ANSWER_TOKENS,
        "ok": sum(r["ok"] for r in results),
        "tokens_received": sum(r["tokens"] for r in results),
        "last_stream_end_s": max(ends),
        "prestop_hold_s": hold_s,
        "shutdown_s": exit_s,
    }


def run(plan_path: str, model_dir: str, out_dir: str, extra: list[str]) -> None:
    gpu_name = subprocess.run(
        ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, check=True
    ).stdout.splitlines()[0]
    gpu = "H200" if "H200" in gpu_name else "H100"
    with open(plan_path) as f:
        plan = json.load(f)[gpu]
    args = list(plan["args"])
    model = args[args.index("--model") + 1]
    args[args.index("--model") + 1] = model_dir  # the weights' folder; the served name stays the profile's model
    args += extra
    results = {
        "gpu": gpu_name,
        "profile": plan["profile"],
        "args": args,
        "startup_budget_s": plan["startup_budget_s"],
        "grace_s": plan["grace_s"],
    }
    results["with_drain"] = scenario(args, model, f"{out_dir}/server_drain.log", plan["prestop"])
    results["without_drain"] = scenario(args, model, f"{out_dir}/server_nodrain.log", None)
    with open(f"{out_dir}/k8s_device.json", "w") as f:
        json.dump(results, f, indent=1)
    print(json.dumps(results, indent=1))


def section(path: str) -> str:
    from bench.__main__ import _table

    with open(path) as f:
        r = json.load(f)
    rows = [
        {"case": case, **r[key]}
        for case, key in (
            ("rendered preStop, then SIGTERM", "with_drain"),
            ("SIGTERM at once (no preStop)", "without_drain"),
        )
    ]
    return "\n".join(
        [
            "## vLLM as the manifests run it, on a real GPU",
            "",
            (
                f"Real vLLM 0.20.2 on the device host's {r['gpu']} with the arguments `headroom k8s render` writes for "
                f"{r['profile']} (dummy weights, the model's architecture; `{' '.join(r['args'][-4:])}` added for this "
                f"host). Its startup probe allows {r['startup_budget_s']} s and its grace period is {r['grace_s']} s. "
                f"{r['with_drain']['streams']} streamed completions of {r['with_drain']['answer_tokens']} tokens each are in "
                "flight when the pod is deleted (3 s after they start)."
            ),
            "",
            _table(
                rows,
                [
                    ("case", "case", ""),
                    ("ready_s", "process start to /health s", "{:.1f}"),
                    ("ok", "answers complete", ""),
                    ("streams", "of", ""),
                    ("last_stream_end_s", "last answer ends, s after delete", "{:.1f}"),
                    ("prestop_hold_s", "preStop returns, s", "{}"),
                    ("shutdown_s", "SIGTERM to exit, s", "{:.1f}"),
                ],
            ),
        ]
    )


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "prepare":
        prepare(sys.argv[2])
    elif command == "run":
        extra = sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else []
        run(sys.argv[2], sys.argv[3], sys.argv[4], extra)
    elif command == "section":
        print(section(sys.argv[2]))
