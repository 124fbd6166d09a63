"""Admission control: a bounded queue per model in front of the backends' slots, fair between tenants.

A request takes a slot on a backend (at most `max_in_flight` each) or waits. Waiters are served round-robin over
tenants, so a tenant flooding the gateway gets its turn, not the whole capacity. A full queue answers 429; when the
newcomer's tenant holds less than its fair share of the queue (max_queue over the tenants waiting), the newest
waiter of the tenant furthest over its share is turned away instead.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from exporters.gateway.backends import Backend, BackendPool


class Rejected(Exception):
    """Not admitted: `reason` is queue_full, evicted, queue_timeout or no_backend; Retry-After in seconds."""

    def __init__(self, reason: str, message: str, retry_after_s: int):
        super().__init__(message)
        self.reason, self.retry_after_s = reason, retry_after_s


@dataclass(eq=False)
class _Waiter:
    tenant: str
    affinity: str | None
    future: asyncio.Future
    since: float = field(default_factory=time.monotonic)


class _FairQueue:
    """Waiters per tenant, tenants served in turn."""

    def __init__(self):
        self.by_tenant: OrderedDict[str, deque[_Waiter]] = OrderedDict()
        self.size = 0

    def push(self, waiter: _Waiter) -> None:
        self.by_tenant.setdefault(waiter.tenant, deque()).append(waiter)
        self.size += 1

    def next(self) -> _Waiter | None:
        """The oldest waiter of the tenant whose turn it is; that tenant goes to the back of the line."""
        if not self.by_tenant:
            return None
        tenant, waiters = next(iter(self.by_tenant.items()))
        self.by_tenant.move_to_end(tenant)
        waiter = waiters.popleft()
        if not waiters:
            del self.by_tenant[tenant]
        self.size -= 1
        return waiter

    def push_front(self, waiter: _Waiter) -> None:
        """Undo `next` when no slot was free after all: the waiter keeps its place and its tenant its turn."""
        waiters = self.by_tenant.setdefault(waiter.tenant, deque())
        waiters.appendleft(waiter)
        self.by_tenant.move_to_end(waiter.tenant, last=False)
        self.size += 1

    def remove(self, waiter: _Waiter) -> bool:
        waiters = self.by_tenant.get(waiter.tenant)
        if waiters is None or waiter not in waiters:
            return False
        waiters.remove(waiter)
        if not waiters:
            del self.by_tenant[waiter.tenant]
        self.size -= 1
        return True

    def evict_for(self, tenant: str, max_queue: int) -> _Waiter | None:
        """Make room for `tenant` when it holds less than its fair share: the newest waiter of the most-over tenant."""
        tenants = set(self.by_tenant) | {tenant}
        share = max_queue / len(tenants)
        if len(self.by_tenant.get(tenant, ())) >= share:
            return None
        heaviest = max(self.by_tenant, key=lambda t: len(self.by_tenant[t]))
        if len(self.by_tenant[heaviest]) <= share:
            return None
        waiter = self.by_tenant[heaviest].pop()
        self.size -= 1
        return waiter


class Admission:
    def __init__(self, pool: BackendPool, limits):
        """`limits(model)` gives the model's ModelLimits (max_queue, queue_timeout_s)."""
        self.pool, self.limits = pool, limits
        self.queues: dict[str, _FairQueue] = {}
        self._dispatched: deque[float] = deque(maxlen=256)  # times slots were handed out, for Retry-After

    def depth(self, model: str) -> int:
        queue = self.queues.get(model)
        return queue.size if queue else 0

    def retry_after_s(self, model: str) -> int:
        """Seconds until the queue ahead would drain at the recent rate of admissions (1 to 60)."""
        now = time.monotonic()
        recent = [t for t in self._dispatched if now - t <= 30.0]
        rate = len(recent) / 30.0
        return int(min(60, max(1, math.ceil((self.depth(model) + 1) / rate)))) if rate > 0 else 1

    async def acquire(self, model: str, tenant: str, affinity: str | None = None) -> tuple[Backend, float]:
        """A backend slot for the request, and the seconds it waited for one; raises Rejected."""
        if not self.pool.known:
            raise Rejected("no_backend", "no backend is configured or discovered", 1)
        queue = self.queues.setdefault(model, _FairQueue())
        if not queue.size:
            backend = self.pool.pick(model, affinity=affinity)
            if backend is not None:
                self._take(backend)
                return backend, 0.0
        limits = self.limits(model)
        if queue.size >= limits.max_queue:
            evicted = queue.evict_for(tenant, limits.max_queue)
            if evicted is None:
                raise Rejected(
                    "queue_full",
                    f"the queue for model {model!r} is full ({limits.max_queue} waiting)",
                    self.retry_after_s(model),
                )
            evicted.future.set_exception(
                Rejected(
                    "evicted",
                    f"turned away from the full queue for model {model!r} to make "
                    "room for a tenant below its fair share",
                    self.retry_after_s(model),
                )
            )
        waiter = _Waiter(tenant, affinity, asyncio.get_running_loop().create_future())
        queue.push(waiter)
        try:
            backend = await asyncio.wait_for(asyncio.shield(waiter.future), limits.queue_timeout_s)
        except TimeoutError:
            if queue.remove(waiter) or not waiter.future.done():
                waiter.future.cancel()
                raise Rejected(
                    "queue_timeout",
                    f"waited {limits.queue_timeout_s:g} s for a free backend for model {model!r}",
                    self.retry_after_s(model),
                ) from None
            backend = waiter.future.result()  # handed a slot as the wait ran out: take it
        except asyncio.CancelledError:  # the client went away while waiting
            if (
                not queue.remove(waiter)
                and waiter.future.done()
                and not waiter.future.cancelled()
                and waiter.future.exception() is None
            ):
                self.release(waiter.future.result())
            raise
        return backend, time.monotonic() - waiter.since

    def _take(self, backend: Backend) -> None:
        self.pool.acquire(backend)
        self._dispatched.append(time.monotonic())

    def release(self, backend: Backend) -> None:
        self.pool.release(backend)
        self.dispatch()

    def dispatch(self) -> None:
        """Hand free slots to waiters, tenant by tenant (after a release, or when backends change)."""
        for model, queue in self.queues.items():
            while queue.size:
                waiter = queue.next()
                if waiter.future.done():
                    continue
                backend = self.pool.pick(model, affinity=waiter.affinity)
                if backend is None:
                    queue.push_front(waiter)
                    break
                self._take(backend)
                waiter.future.set_result(backend)
