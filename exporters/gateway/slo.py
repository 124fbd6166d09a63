"""Whether one answered request met each latency SLO of its model (pure: its timings and thresholds in, outcomes
out). Counted per request, an SLI holds at any threshold, not only at a histogram's bucket edge."""

from __future__ import annotations

from dataclasses import dataclass

from exporters.gateway.config import SloThresholds

SLO_NAMES = ("ttft", "tpot", "e2e")


@dataclass(frozen=True)
class RequestTimings:
    """A request's client-side latencies; TTFT and TPOT only for streamed answers (a whole answer's first token
    reaches the client with its last), TPOT only from two output tokens on."""

    e2e_s: float
    ttft_s: float | None = None
    tpot_s: float | None = None


def time_per_output_token(first_s: float | None, last_s: float | None, output_tokens: int) -> float | None:
    """vLLM's definition: the time from the first token to the last over the tokens after the first."""
    if first_s is None or last_s is None or output_tokens < 2:
        return None
    return (last_s - first_s) / (output_tokens - 1)


def slo_outcomes(timings: RequestTimings, slo: SloThresholds) -> list[tuple[str, bool]]:
    """(SLO name, met) for every SLO with a threshold that this request's timings measure."""
    measured = {
        "ttft": (timings.ttft_s, slo.ttft_s),
        "tpot": (timings.tpot_s, slo.tpot_s),
        "e2e": (timings.e2e_s, slo.e2e_s),
    }
    return [
        (name, value <= threshold)
        for name, (value, threshold) in measured.items()
        if value is not None and threshold is not None
    ]
