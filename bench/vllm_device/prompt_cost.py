"""On the GPU host, against a running vLLM server: what a prompt costs outside the engine's steps, by length. One
request at a time of each prompt length (one word one token, max_tokens 1); the client's time against the server's
own queue and prefill time (the /metrics histograms' sums around each request). Summarized by `bench/prompt_cost.py`.
usage: PYTHONPATH=/tmp/vl/site python3 bench/vllm_device/prompt_cost.py URL MODEL OUT (vLLM's site brings
prometheus_client)"""

import csv
import json
import random
import sys
import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

LENGTHS = (128, 1024, 4096, 8192, 16384)
REPEATS = 12
SUMS = (
    "request_queue_time_seconds",
    "request_prefill_time_seconds",
    "e2e_request_latency_seconds",
    "time_to_first_token_seconds",
    "request_inference_time_seconds",
)


def post(url: str, body: dict) -> float:
    data = json.dumps(body).encode()
    started = time.perf_counter()
    request = urllib.request.Request(url, data, {"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()
    return time.perf_counter() - started


def histogram_sums(text: str) -> dict[str, float]:
    """The `_sum` of each of `SUMS`'s vLLM histograms in a /metrics scrape (NaN where it has none)."""
    found = dict.fromkeys(SUMS, float("nan"))
    for family in text_string_to_metric_families(text):
        name = family.name.removeprefix("vllm:")
        if name in found:
            found[name] = next(s.value for s in family.samples if s.name.endswith("_sum"))
    return found


def sums(url: str) -> dict[str, float]:
    return histogram_sums(urllib.request.urlopen(url, timeout=10).read().decode())


def main(base: str, model: str, out: str) -> None:
    rng = random.Random(7)
    rows = []
    for length in LENGTHS:
        for i in range(REPEATS + 2):  # the first two warm the path, unrecorded
            prompt = " ".join(f"w{rng.randrange(1000, 100000)}" for _ in range(length - 1))
            before = sums(f"{base}/metrics")
            wall = post(f"{base}/v1/completions", {"model": model, "prompt": prompt, "max_tokens": 1})
            time.sleep(0.05)
            after = sums(f"{base}/metrics")
            if i >= 2:
                rows.append({"prompt_tokens": length, "client_s": wall, **{k: after[k] - before[k] for k in SUMS}})
        print(length, sum(r["client_s"] for r in rows[-REPEATS:]) / REPEATS, flush=True)
    with open(out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main(*sys.argv[1:4])
