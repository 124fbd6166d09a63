"""On the GPU host, beside a running `vllm serve`: several `vllm bench serve` runs in one process (the CLI's own
code, without its start-up cost each time), each saved with its per-request values (`--save-detailed`).

usage: python3 bench_driver.py RESULT_DIR MODEL_DIR RUN...
RUN = name:INPUT:OUTPUT:CONCURRENCY:PROMPTS:RATE:SEED[:PREFIX]
  INPUT tokens of random words after PREFIX shared tokens (prefix-cache hits); CONCURRENCY 0 = open loop at RATE
  (req/s, Poisson; inf = all at once). Each run has its own seed, so no run hits another's prefixes."""

import argparse
import os
import sys
import time
import traceback

MODEL = os.environ.get("SERVED_MODEL", "meta-llama/Llama-3.1-8B-Instruct")  # the name `vllm serve` was given


def bench_args(result_dir: str, model_dir: str, spec: str) -> argparse.Namespace:
    from vllm.benchmarks.serve import add_cli_args  # on the GPU host only (the recorder below is tested here)

    name, input_len, output_len, concurrency, prompts, rate, seed, *prefix = spec.split(":")
    argv = [
        *("--backend", "vllm", "--host", "localhost", "--port", "8000", "--model", MODEL, "--tokenizer", model_dir),
        *("--dataset-name", "random", "--random-input-len", input_len, "--random-output-len", output_len),
        *("--random-prefix-len", prefix[0] if prefix else "0", "--ignore-eos", "--num-prompts", prompts),
        *("--request-rate", rate, "--seed", seed, "--percentile-metrics", "ttft,tpot,itl,e2el"),
        *("--metric-percentiles", "50,90,99", "--ready-check-timeout-sec", "0", "--num-warmups", "0"),
        *("--disable-tqdm", "--save-result", "--save-detailed", "--result-dir", result_dir),
        *("--result-filename", name + ".json", "--label", name),
    ]
    if int(concurrency) > 0:
        argv += ["--max-concurrency", concurrency]
    parser = argparse.ArgumentParser()
    add_cli_args(parser)
    return parser.parse_args(argv)


def record_run(result_dir: str, name: str, started: float, ended: float) -> None:
    """When a run ran (Unix seconds), so the GPU exporter's samples of it can be found: runs.csv, as
    bench/vllm_device/runs.py reads it (its start includes the client's set-up, a second or two of an idle GPU)."""
    path = os.path.join(result_dir, "runs.csv")
    new = not os.path.exists(path)
    with open(path, "a") as f:
        f.write(("name,start,end\n" if new else "") + f"{name},{started:.1f},{ended:.1f}\n")


def run_all(result_dir: str, model_dir: str, specs: list[str], deadline: float) -> None:
    from vllm.benchmarks.serve import main

    for spec in specs:
        name = spec.split(":")[0]
        if os.path.exists(os.path.join(result_dir, name + ".json")):
            continue
        if time.time() > deadline:
            print(f"===== SKIP {name}: past the deadline", flush=True)
            continue
        started = time.time()
        print(f"===== RUN {spec}", flush=True)
        try:
            main(bench_args(result_dir, model_dir, spec))
            ended = time.time()
            record_run(result_dir, name, started, ended)
            print(f"===== DONE {name} in {ended - started:.1f}s", flush=True)
        except Exception:  # noqa: BLE001 - one failed run is reported; the grid goes on
            traceback.print_exc()
            print(f"===== FAIL {name} after {time.time() - started:.1f}s", flush=True)


if __name__ == "__main__":
    run_all(sys.argv[1], sys.argv[2], sys.argv[3:], float(os.environ.get("BENCH_DEADLINE", "1e18")))
