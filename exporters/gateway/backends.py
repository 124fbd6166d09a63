"""The backends the gateway routes to: health, the models each serves, requests outstanding; picking one."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Backend:
    address: str
    outstanding: int = 0
    healthy: bool = True  # discovered backends start routable; health checks eject and readmit them
    models: frozenset[str] | None = None  # None: not known yet (serves anything)
    passes: int = 0  # consecutive health checks passed / failed
    fails: int = 0
    discovered: bool = True  # False once discovery dropped it: it finishes what it holds, then goes


@dataclass
class BackendPool:
    """Least outstanding requests over the healthy backends that serve the model, ties round-robin; with a
    prefix-affinity key, rendezvous hashing picks among the least loaded so that a prompt prefix keeps its replica
    (and its prefix cache) while that replica is not busier than the others."""

    max_in_flight: int
    on_change: Callable[[], None] = lambda: None
    backends: dict[str, Backend] = field(default_factory=dict)
    _rr: itertools.count = field(default_factory=itertools.count)

    def set_discovered(self, addresses: list[str]) -> None:
        """Replace the discovered set; a dropped backend finishes the requests it holds, then is forgotten."""
        wanted = set(addresses)
        for address in addresses:
            backend = self.backends.get(address)
            if backend is None:
                self.backends[address] = Backend(address)
            else:
                backend.discovered = True
        for address, backend in list(self.backends.items()):
            if address not in wanted:
                backend.discovered = False
                if backend.outstanding == 0:
                    del self.backends[address]
        self.on_change()

    @property
    def known(self) -> bool:
        return any(b.discovered for b in self.backends.values())

    def routable(self, model: str | None = None) -> list[Backend]:
        return [
            b
            for b in self.backends.values()
            if b.discovered and b.healthy and (model is None or b.models is None or model in b.models)
        ]

    def models(self) -> set[str] | None:
        """Models the healthy backends report, or None while none is healthy or any has not reported yet."""
        found: set[str] = set()
        routable = self.routable()
        if not routable:
            return None
        for backend in routable:
            if backend.models is None:
                return None
            found |= backend.models
        return found

    def pick(
        self,
        model: str | None,
        exclude: set[str] = frozenset(),
        affinity: str | None = None,
        within_capacity: bool = True,
    ) -> Backend | None:
        candidates = [
            b
            for b in self.routable(model)
            if b.address not in exclude and (not within_capacity or b.outstanding < self.max_in_flight)
        ]
        if not candidates:
            return None
        low = min(b.outstanding for b in candidates)
        best = [b for b in candidates if b.outstanding == low]
        if affinity is not None:
            return max(best, key=lambda b: hashlib.blake2b(f"{b.address}|{affinity}".encode(), digest_size=8).digest())
        return best[next(self._rr) % len(best)]

    def acquire(self, backend: Backend) -> None:
        backend.outstanding += 1

    def release(self, backend: Backend) -> None:
        backend.outstanding -= 1
        if backend.outstanding == 0 and not backend.discovered and self.backends.get(backend.address) is backend:
            del self.backends[backend.address]

    def record_health(
        self, address: str, ok: bool, models: frozenset[str] | None, unhealthy_after: int, healthy_after: int
    ) -> bool:
        """Count one health check; returns True when the backend's routability changed."""
        backend = self.backends.get(address)
        if backend is None:
            return False
        if ok:
            backend.passes, backend.fails = backend.passes + 1, 0
            if models is not None:
                backend.models = models
        else:
            backend.passes, backend.fails = 0, backend.fails + 1
        was = backend.healthy
        if was and backend.fails >= unhealthy_after:
            backend.healthy = False
        elif not was and backend.passes >= healthy_after:
            backend.healthy = True
        if backend.healthy != was:
            self.on_change()
            return True
        return False

    def eject(self, address: str) -> None:
        """A backend that refused a connection is taken out until a health check passes again."""
        backend = self.backends.get(address)
        if backend is not None and backend.healthy:
            backend.healthy, backend.passes = False, 0
            self.on_change()
