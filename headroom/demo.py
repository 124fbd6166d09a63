"""Built-in demo load: open-loop Poisson arrivals of streamed completions with a mixed length profile."""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass, field

import aiohttp

from serving.emulator.openai import VOCABULARY


@dataclass
class LoadResult:
    sent: int = 0
    ok: int = 0
    failed: int = 0
    output_tokens: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    ttfts: list[float] = field(default_factory=list)


def prompt_of(tokens: int, rng: random.Random) -> str:
    """A prompt of exactly `tokens` tokens under the emulator's one-word-one-token rule."""
    return " ".join(rng.choice(VOCABULARY) for _ in range(tokens))


async def run_demo_load(
    base_url: str,
    model: str,
    rate: float,
    duration_s: float,
    seed: int = 0,
    progress=None,
    drain_timeout_s: float = 120.0,
) -> LoadResult:
    """Send Poisson arrivals for `duration_s`, then wait for every request to end; nothing is left unaccounted."""
    rng = random.Random(seed)
    result = LoadResult()
    tasks: set[asyncio.Task] = set()
    timeout = aiohttp.ClientTimeout(total=drain_timeout_s + duration_s)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout) as session:
        start = time.monotonic()
        next_at = start
        last_report = start
        while True:
            next_at += rng.expovariate(rate)
            if next_at - start >= duration_s:
                break
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            prompt_len = int(min(4000, max(16, rng.lognormvariate(6.0, 0.8))))
            output_len = int(min(1000, max(8, rng.lognormvariate(5.0, 0.7))))
            body = {
                "model": model,
                "prompt": prompt_of(prompt_len, rng),
                "max_tokens": output_len,
                "ignore_eos": True,
                "stream": True,
                "stream_options": {"include_usage": True},
            }
            task = asyncio.create_task(_one(session, f"{base_url}/v1/completions", body, result))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            result.sent += 1
            if progress and time.monotonic() - last_report >= 5:
                last_report = time.monotonic()
                progress(
                    f"load: {time.monotonic() - start:5.0f}/{duration_s:.0f} s, sent {result.sent}, ok {result.ok}, "
                    f"failed {result.failed}, in flight {len(tasks)}"
                )
        if tasks:
            await asyncio.wait(tasks, timeout=drain_timeout_s)
        for task in list(tasks):  # still running after the drain timeout: count as failed, never drop
            task.cancel()
            result.failed += 1
            result.errors["timeout"] = result.errors.get("timeout", 0) + 1
    return result


async def _one(session: aiohttp.ClientSession, url: str, body: dict, result: LoadResult) -> None:
    t0 = time.monotonic()
    first = None
    usage_tokens = None
    try:
        async with session.post(url, json=body) as resp:
            if resp.status != 200:
                text = (await resp.text())[:200]
                _fail(result, f"HTTP {resp.status}: {text}")
                return
            async for line in resp.content:
                if not line.startswith(b"data: ") or line.startswith(b"data: [DONE]"):
                    continue
                doc = json.loads(line[6:])
                if doc.get("choices") and first is None:
                    first = time.monotonic() - t0
                if doc.get("usage"):
                    usage_tokens = doc["usage"]["completion_tokens"]
        if usage_tokens is None:
            _fail(result, "stream ended without usage")
            return
        result.ok += 1
        result.output_tokens += usage_tokens
        if first is not None:
            result.ttfts.append(first)
    except (TimeoutError, aiohttp.ClientError, ValueError) as err:
        _fail(result, type(err).__name__)


def _fail(result: LoadResult, reason: str) -> None:
    result.failed += 1
    result.errors[reason] = result.errors.get(reason, 0) + 1
