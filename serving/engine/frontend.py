"""vLLM's API server as one serial worker in front of the engine: it admits requests and streams step outputs; the
benchmark client, one more serial worker, reads them."""

from __future__ import annotations

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
