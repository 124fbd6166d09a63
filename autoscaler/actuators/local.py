"""Actuator for `headroom up`'s local emulator fleet: counts from its replica states, scaling on its event loop."""

from __future__ import annotations

import asyncio

from autoscaler.sources.prometheus import FleetCounts


class LocalFleetActuator:
    """Called from the autoscaler's thread; the fleet lives on `loop` (the stack's event loop)."""

    kind = "local"

    def __init__(self, fleet, loop: asyncio.AbstractEventLoop, timeout_s: float = 30.0):
        self.fleet, self.loop, self.timeout_s = fleet, loop, timeout_s

    def _on_loop(self, make):
        async def call():
            return make()

        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(self.timeout_s)

    def counts(self) -> FleetCounts:
        status = self._on_loop(self.fleet.status)
        active = status["ready"] + status["starting"]
        return FleetCounts(
            desired=active, ready=status["ready"], starting=status["starting"], stopping=status["stopping"]
        )

    def scale(self, desired: int, reasons: tuple[str, ...] = ()) -> bool:
        if self.counts().desired == desired:
            return False
        asyncio.run_coroutine_threadsafe(self.fleet.scale(desired), self.loop).result(self.timeout_s)
        return True
