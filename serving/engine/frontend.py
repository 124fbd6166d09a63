"""vLLM's API server as one serial worker in front of the engine: it admits requests and streams step outputs; the
benchmark client, one more serial worker, reads them."""

from __future__ import annotations

import numpy as np

from serving.engine.profile import Efficiency


class SerialWorker:
    """One event loop that handles, one at a time in arrival order, requests (`admit`) and streamed tokens
    (`stream`), each at its cost; with no costs it passes everything through at once."""

    def __init__(self, request_s: float = 0.0, token_s: float = 0.0, finish_s: float = 0.0):
        self.request_s, self.token_s, self.finish_s = request_s, token_s, finish_s
        self.free_at = 0.0

    def _serve(self, arrival: float, cost: float) -> float:
        self.free_at = max(arrival, self.free_at) + cost
        return self.free_at

    def admit(self, arrival: float) -> float:
        """When a request that reached the worker at `arrival` is handed on."""
        return self._serve(arrival, self.request_s)

    def stream(self, arrival: float, tokens: int = 1, finished: bool = False) -> float:
        """When `tokens` that reached the worker at `arrival` are handed on; the last of a request also closes its
        stream."""
        return self._serve(arrival, self.token_s * tokens + (self.finish_s if finished else 0.0))


class Frontend(SerialWorker):
    """The API server process handles, one at a time in arrival order, the requests it tokenizes and hands to the
    engine core and the outputs of each engine step it detokenizes and streams. The engine core runs beside it, so
    the server does not slow the steps; but under hundreds of streams the outputs keep it busy, new requests wait
    behind them, and the tokens reach the clients late (docs/vllm-on-h200.md). Without the costs of a profile it
    passes everything through at once."""

    def __init__(self, efficiency: Efficiency | None = None):
        if efficiency is None:
            super().__init__()
        else:
            super().__init__(efficiency.frontend_request_s, efficiency.frontend_token_s, efficiency.frontend_finish_s)

    @property
    def has_costs(self) -> bool:
        return bool(self.request_s or self.token_s or self.finish_s)

    def stream_step(self, arrival: float, tokens: int, marks: list[tuple[int, bool]]) -> list[float]:
        """A step's `tokens` outputs, one a request, streamed in turn as `stream` would one by one; `marks`: the
        (position, ends its stream) of the requests whose times are wanted, in order, every ending one among them.
        Returns when each marked request's token is handed on."""
        start = max(arrival, self.free_at)
        times, ended = [], 0
        for position, finished in marks:
            ended += finished
            times.append(start + (position + 1) * self.token_s + ended * self.finish_s)
        self.free_at = start + tokens * self.token_s + ended * self.finish_s
        return times

    def stream_steps(self, arrivals: np.ndarray, tokens: int) -> None:
        """Steps that each reach the worker with `tokens` outputs at `arrivals` (ascending), none ending a stream:
        the worker's time after them, in closed form (each starts when it arrives or the one before is done)."""
        if len(arrivals) == 0:
            return
        cost = tokens * self.token_s
        behind = arrivals + cost * np.arange(len(arrivals), 0, -1)  # each step's arrival plus its and later costs
        self.free_at = max(self.free_at + cost * len(arrivals), float(behind.max()))
