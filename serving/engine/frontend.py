"""vLLM's API server as one serial worker in front of the engine: it admits requests and streams step outputs."""

from __future__ import annotations

from serving.engine.profile import Efficiency


class Frontend:
    """The API server process handles, one at a time in arrival order, the requests it tokenizes and hands to the
    engine core and the outputs of each engine step it detokenizes and streams. The engine core runs beside it, so
    the server does not slow the steps; but under hundreds of streams the outputs keep it busy, new requests wait
    behind them, and the tokens reach the clients late (docs/vllm-on-h200.md). Without the costs of a profile it
    passes everything through at once."""

    def __init__(self, efficiency: Efficiency | None = None):
        self.request_s = efficiency.frontend_request_s if efficiency else 0.0
        self.token_s = efficiency.frontend_token_s if efficiency else 0.0
        self.finish_s = efficiency.frontend_finish_s if efficiency else 0.0
        self.free_at = 0.0

    def _serve(self, arrival: float, cost: float) -> float:
        self.free_at = max(arrival, self.free_at) + cost
        return self.free_at

    def admit(self, arrival: float) -> float:
        """When a request that reached the server at `arrival` is handed to the engine core."""
        return self._serve(arrival, self.request_s)

    def stream(self, arrival: float, tokens: int = 1, finished: bool = False) -> float:
        """When a request's `tokens` from one engine step (its outputs reached the server at `arrival`) reach its
        client; the last of a request also closes its stream."""
        return self._serve(arrival, self.token_s * tokens + (self.finish_s if finished else 0.0))
