"""Timing of one OpenAI-compatible response with `vllm bench serve`'s definitions, fed raw bytes as they arrive.

TTFT is the time to the first SSE message carrying `choices`; ITL the gaps between such messages; TPOT is
(end-to-end - TTFT) / (output tokens - 1). Output tokens come from the server's `usage` when it sends one
(`stream_options.include_usage`), otherwise from the number of content messages.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from serving.contracts.tokens import count_tokens


@dataclass
class Measured:
    """What one request measured; times in seconds from sending the request."""

    ok: bool
    status: int
    error: str = ""
    ttft_s: float = float("nan")
    itl_s: list[float] = field(default_factory=list)
    e2e_s: float = float("nan")
    prompt_tokens: int | None = None
    output_tokens: int = 0
    usage_reported: bool = False
    content_messages: int = 0
    response_id: str = ""  # the server's id for the completion (to join with server-side logs)

    @property
    def tpot_s(self) -> float:
        if self.output_tokens > 1 and self.ttft_s == self.ttft_s:
            return (self.e2e_s - self.ttft_s) / (self.output_tokens - 1)
        return float("nan")


class StreamTimer:
    """Splits a streamed body into SSE `data:` messages and times the ones that carry `choices`."""

    def __init__(self, sent_at: float):
        self.sent_at = sent_at
        self._buffer = b""
        self._last_choice: float | None = None
        self.result = Measured(ok=True, status=200)
        self.done = False

    def feed(self, chunk: bytes, now: float) -> None:
        """Bytes received at `now` (perf_counter seconds); messages may span chunks."""
        self._buffer += chunk
        while True:
            end = self._buffer.find(b"\n\n")
            if end < 0:
                return
            message, self._buffer = self._buffer[:end], self._buffer[end + 2 :]
            self._message(message, now)

    def _message(self, message: bytes, now: float) -> None:
        for line in message.split(b"\n"):
            line = line.strip()
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if data == b"[DONE]":
                self.done = True
                return
            try:
                event = json.loads(data)
            except ValueError:
                self._fail(f"malformed SSE data: {data[:80]!r}")
                return
            if not isinstance(event, dict):
                continue
            if "error" in event and not event.get("choices"):
                error = event["error"]
                self._fail(error.get("message", str(error)) if isinstance(error, dict) else str(error))
                return
            if event.get("choices"):
                if self._last_choice is None:
                    self.result.ttft_s = now - self.sent_at
                    self.result.response_id = str(event.get("id", ""))
                else:
                    self.result.itl_s.append(now - self._last_choice)
                self._last_choice = now
                if _has_content(event["choices"][0]):
                    self.result.content_messages += 1
            usage = event.get("usage")
            if isinstance(usage, dict) and usage.get("completion_tokens") is not None:
                self.result.usage_reported = True
                self.result.output_tokens = int(usage["completion_tokens"])
                if usage.get("prompt_tokens") is not None:
                    self.result.prompt_tokens = int(usage["prompt_tokens"])

    def _fail(self, error: str) -> None:
        self.result.ok = False
        self.result.error = self.result.error or error

    def finish(self, now: float) -> Measured:
        """The stream has ended at `now`: complete the measurement (a stream without [DONE] is a failure)."""
        result = self.result
        result.e2e_s = now - self.sent_at
        if self._buffer.strip():
            self._message(self._buffer, now)
            self._buffer = b""
        if not result.usage_reported:
            result.output_tokens = result.content_messages
        if result.ok and not self.done:
            self._fail("stream ended before data: [DONE]")
        if result.ok and self._last_choice is None:
            self._fail("stream carried no choices")
        return result


def _has_content(choice: dict) -> bool:
    if "text" in choice:
        return bool(choice.get("text"))
    delta = choice.get("delta") or {}
    return bool(delta.get("content"))


def measure_full(body: bytes, status: int, sent_at: float, now: float) -> Measured:
    """A non-streamed response: TTFT is the whole response time; tokens from `usage`."""
    result = Measured(ok=200 <= status < 300, status=status, e2e_s=now - sent_at, ttft_s=now - sent_at)
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if not result.ok:
        result.error = _error_text(payload, body, status)
        return result
    if not isinstance(payload, dict) or not payload.get("choices"):
        result.ok, result.error = False, f"response without choices: {body[:120]!r}"
        return result
    result.response_id = str(payload.get("id", ""))
    usage = payload.get("usage") or {}
    if usage.get("completion_tokens") is not None:
        result.output_tokens, result.usage_reported = int(usage["completion_tokens"]), True
        result.prompt_tokens = usage.get("prompt_tokens")
    else:
        choice = payload["choices"][0]
        text = choice.get("text") if "text" in choice else (choice.get("message") or {}).get("content", "")
        result.output_tokens = count_tokens(text or "")
    return result


def error_from_body(body: bytes, status: int) -> str:
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    return _error_text(payload, body, status)


def _error_text(payload, body: bytes, status: int) -> str:
    if isinstance(payload, dict):
        error = payload.get("error", payload.get("message"))
        if isinstance(error, dict):
            error = error.get("message")
        if error:
            return f"HTTP {status}: {error}"
    return f"HTTP {status}: {body[:200].decode(errors='replace')}"
