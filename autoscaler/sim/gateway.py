"""The gateway's queue in both simulation modes: requests held while no replica is ready, failed past a timeout."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


class Gateway:
    """Entries of [arrival time, requests, work, ...] in arrival order, with their running totals: one request
    each at the request level, a step's fractional requests in fluid mode."""

    def __init__(self):
        self.entries: deque[list] = deque()
        self.held = 0.0
        self.held_work = 0.0

    def hold(self, entry: list) -> None:
        self.entries.append(entry)
        self.held += entry[1]
        self.held_work += entry[2]

    def expire(self, now: float, timeout_s: float) -> list[list]:
        """Drops the entries held past `timeout_s` (they fail) and returns them."""
        expired = []
        while self.entries and now - self.entries[0][0] > timeout_s:
            entry = self.entries.popleft()
            expired.append(entry)
            self.held_work -= entry[2]
        if expired:
            self.held -= sum(entry[1] for entry in expired)
        return expired

    def release(self) -> Released:
        """Everything held, for routing; the gateway is then empty."""
        released = Released(self.entries, self.held, self.held_work)
        self.entries, self.held, self.held_work = deque(), 0.0, 0.0
        return released


@dataclass(frozen=True)
class Released:
    entries: deque[list]
    requests: float
    work: float
