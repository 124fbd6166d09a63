"""What a streamed answer tells as it passes: its first event's time, the gaps between events, the token events,
and the `usage` of its last event (pure: bytes and clock readings in, counts out)."""

from __future__ import annotations

import re

_USAGE = re.compile(rb'"usage": ?\{"prompt_tokens": ?(\d+), ?"total_tokens": ?\d+, ?"completion_tokens": ?(\d+)')
TOKEN_EVENT = b'"finish_reason"'  # one per token event (and per chat role event)
ROLE_EVENT = b'"role": "assistant"'
CHOICES = (
    b'"choices": [{',
    b'"choices":[{',
)  # events carrying choices (vLLM bench's TTFT and ITL); usage-only ones: []
TAIL_BYTES = 4096


def count_new(before: bytes, chunk: bytes, pattern: bytes) -> int:
    """Occurrences of `pattern` that end inside `chunk`, including those that started in `before`."""
    carry = before[-(len(pattern) - 1) :]
    return (carry + chunk).count(pattern) - carry.count(pattern)


def usage_tokens(body: bytes) -> tuple[int, int] | None:
    """(prompt, completion) tokens from the last `usage` object in a body, or None when it has none."""
    found = _USAGE.findall(body)
    return (int(found[-1][0]), int(found[-1][1])) if found else None


class StreamMeter:
    """Feed it each chunk of an SSE stream with the time it was written on; `itl` observes the gaps between events
    with choices (events that came in the same read: no gap between them)."""

    def __init__(self, itl):
        self.itl = itl
        self.first: float | None = None
        self.last: float | None = None
        self.events = 0
        self.tail = b""

    def feed(self, data: bytes, now: float) -> None:
        tail = self.tail
        arrived = count_new(tail, data, CHOICES[0]) + count_new(tail, data, CHOICES[1])
        if arrived:
            if self.first is None:
                self.first = now
            else:
                self.itl.observe(now - self.last)
            for _ in range(arrived - 1):
                self.itl.observe(0.0)
            self.last = now
        self.events += count_new(tail, data, TOKEN_EVENT) - count_new(tail, data, ROLE_EVENT)
        self.tail = (tail + data)[-TAIL_BYTES:]
