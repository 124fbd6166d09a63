"""The fluid fleet: replicas as array slots (starting, ready, retired), least-outstanding routing by water-filling,
and the trace binned into steps."""

from __future__ import annotations

import math

import numpy as np

from loadgen.workloads.workload import Workload

EMPTY = 0.5  # a replica holding fewer requests than this is empty


def counts_from_workload(workload: Workload, step_s: float, weights: np.ndarray | None = None) -> np.ndarray:
    """Arrivals per step (each counted by its weight, or as one)."""
    bins = int(math.ceil(max(workload.duration_s, step_s) / step_s)) + 1
    return np.bincount((workload.arrival_s // step_s).astype(np.int64), weights=weights, minlength=bins).astype(
        np.float64
    )


def work_from_workload(
    workload: Workload,
    step_s: float,
    prompt_token_weight: float | np.ndarray,
    period_of_request: np.ndarray | None = None,
) -> np.ndarray:
    """Arrivals per step in requests of the mean mix: each request counts as its (output + weight x prompt) tokens
    over the mean of the trace, or of its mix period (`period_of_request`, with a weight per period), so minutes of
    short answers or long prompts load the replicas as they would."""
    prompts, outputs = workload.prompt_tokens.astype(np.float64), workload.output_tokens.astype(np.float64)
    if period_of_request is None:
        size = outputs + prompt_token_weight * prompts
        return counts_from_workload(workload, step_s, size / size.mean() if len(size) and size.mean() > 0 else None)
    size = outputs + np.asarray(prompt_token_weight, dtype=np.float64)[period_of_request] * prompts
    mean = (np.bincount(period_of_request, weights=size) / np.maximum(np.bincount(period_of_request), 1))[
        period_of_request
    ]
    return counts_from_workload(workload, step_s, np.divide(size, mean, out=np.ones_like(size), where=mean > 0))


class Fleet:
    """Live replicas as arrays (one slot each, compacted when some are gone); billing of the departed is kept.
    `attached` (with add(count) and keep(mask)) holds more per-replica state, kept in step with the arrays."""

    def __init__(self, initial: int, attached=None):
        self.attached = attached
        if attached is not None:
            attached.add(initial)
        self.requested = np.zeros(initial)
        self.ready_at = np.zeros(initial)
        self.retired = np.zeros(initial, dtype=bool)
        self.n = np.zeros(initial)  # requests inside each replica
        self.busy = np.zeros(initial)  # GPU-busy time since the last scrape (in the replica model's unit)
        self.order = np.arange(initial, dtype=np.int64)  # creation order, for ties
        self.created = initial
        self.paid_s = 0.0  # replica-seconds of replicas already gone
        self.version = 0  # bumped whenever replicas come, go or retire
        self._serving: tuple[tuple[int, bool], np.ndarray, float] = ((-1, False), np.zeros(0, dtype=np.int64), 0.0)
        self.draining = 0  # retired replicas still holding requests
        self._counts: tuple[int, float, float, tuple[int, int, int]] = (-1, 0.0, 0.0, (0, 0, 0))  # see counts()

    def __len__(self) -> int:
        return len(self.n)

    def add(self, count: int, now: float, cold_start_s: float) -> None:
        self.requested = np.append(self.requested, np.full(count, now))
        self.ready_at = np.append(self.ready_at, np.full(count, now + cold_start_s))
        self.retired = np.append(self.retired, np.zeros(count, dtype=bool))
        self.n = np.append(self.n, np.zeros(count))
        self.busy = np.append(self.busy, np.zeros(count))
        self.order = np.append(self.order, np.arange(self.created, self.created + count))
        self.created += count
        self.version += 1
        if self.attached is not None:
            self.attached.add(count)

    def remove(self, gone: np.ndarray, when: float) -> None:
        """Replicas in the mask `gone` stop costing at `when` and leave the arrays."""
        self.paid_s += float(np.sum(when - self.requested[gone]))
        keep = ~gone
        self.requested, self.ready_at, self.retired = self.requested[keep], self.ready_at[keep], self.retired[keep]
        self.n, self.order, self.busy = self.n[keep], self.order[keep], self.busy[keep]
        self.draining = int(np.count_nonzero(self.retired))
        self.version += 1
        if self.attached is not None:
            self.attached.keep(keep)

    def scale_to(self, target: int, now: float, cold_start_s: float) -> None:
        """Start replicas, or retire starting ones first (newest first), then the ready ones holding least."""
        if target == len(self) - self.draining:  # as many active (starting or ready) as wanted
            return
        active = np.flatnonzero(~self.retired)
        if target > len(active):
            self.add(target - len(active), now, cold_start_s)
            return
        surplus = len(active) - target
        if surplus <= 0:
            return
        starting = self.ready_at[active] > now
        pick = active[np.lexsort((-self.order[active], self.n[active], ~starting))][:surplus]
        self.retired[pick] = True
        self.draining = int(np.count_nonzero(self.retired))
        self.version += 1
        idle = np.zeros(len(self), dtype=bool)
        idle[pick] = (self.ready_at[pick] > now) | (self.n[pick] <= 0.0)
        if idle.any():
            self.remove(idle, now)

    def counts(self, when: float) -> tuple[int, int, int]:
        """(ready, starting, draining). Asked every control tick (each 2 s for the KPA, for days): the answer holds
        until the fleet changes or the next starting replica becomes ready, so it is kept until then."""
        version, since, until, answer = self._counts
        if version == self.version and since <= when < until:
            return answer
        ready_at = self.ready_at[~self.retired]
        is_ready = ready_at <= when
        ready = int(np.count_nonzero(is_ready))
        answer = (ready, len(ready_at) - ready, len(self) - len(ready_at))
        self._counts = (
            self.version,
            float(ready_at[is_ready].max(initial=-math.inf)),
            float(ready_at[~is_ready].min(initial=math.inf)),
            answer,
        )
        return answer

    def serving(self, when: float) -> np.ndarray:
        """Slots of the replicas that take new requests at `when`: ready and not retired. The set changes only
        when the fleet does or the next starting replica becomes ready, so it is kept until then."""
        key, slots, next_ready = self._serving
        if key == (self.version, when >= next_ready):
            return slots
        slots = np.flatnonzero(~self.retired & (self.ready_at <= when))
        next_ready = float(self.ready_at[self.ready_at > when].min(initial=math.inf))
        self._serving = ((self.version, when >= next_ready), slots, next_ready)
        return slots

    def drain(self, when: float) -> float:
        """Retired replicas holding less than half a request leave at `when`; returns what they still held."""
        if not self.draining:
            return 0.0
        drained = self.retired & (self.n < EMPTY)
        if not drained.any():
            return 0.0
        left = float(self.n[drained].sum())
        self.remove(drained, when)
        return left

    def paid_seconds(self, end: float) -> float:
        return self.paid_s + float(np.sum(end - self.requested))


def water_fill(levels: np.ndarray, amount: float) -> np.ndarray:
    """Split `amount` over queues so the shortest are raised first to a common level (least outstanding requests)."""
    if amount <= 0 or len(levels) == 0:
        return np.zeros(len(levels))
    order = np.sort(levels)
    level = (amount + np.cumsum(order)) / np.arange(1, len(order) + 1)  # common level if the k lowest share it
    fits = np.flatnonzero(level[:-1] <= order[1:])  # ...and it stays at or below the next queue
    final = level[fits[0]] if len(fits) else level[-1]
    return np.maximum(0.0, final - levels)
