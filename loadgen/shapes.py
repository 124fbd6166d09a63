"""Load shapes as data: the request rate over a campaign (constant, step, ramp, spike, diurnal), or a trace
replayed with time and rate scaling. Validated with pydantic; each gives `rate_at(times)` in req/s."""

from __future__ import annotations

import math
from typing import Annotated, Literal

import numpy as np
from pydantic import Field, PositiveFloat, model_validator

from serving.common.strict import Strict


class _Shape(Strict):
    def duration(self, campaign_duration_s: float | None) -> float:
        if campaign_duration_s is None:
            raise ValueError(f"a {self.kind} shape needs the campaign's duration_s")
        return campaign_duration_s

    def stages(self, duration_s: float) -> list[tuple[float, float]]:
        """(end time, rate there) at the corners of the shape, for Locust's LoadTestShape and the progress line."""
        times = np.linspace(0.0, duration_s, 61)
        return [(float(t), float(r)) for t, r in zip(times[1:], self.rate_at(times[1:]))]


class Constant(_Shape):
    kind: Literal["constant"]
    rate: PositiveFloat

    def rate_at(self, t):
        return np.full(np.shape(t), self.rate, dtype=np.float64)


class Stage(Strict):
    duration_s: PositiveFloat
    rate: float = Field(ge=0)


class Step(_Shape):
    kind: Literal["step"]
    stages_: list[Stage] = Field(alias="stages", min_length=1)

    def duration(self, campaign_duration_s: float | None) -> float:
        return campaign_duration_s if campaign_duration_s is not None else sum(s.duration_s for s in self.stages_)

    def rate_at(self, t):
        ends = np.cumsum([s.duration_s for s in self.stages_])
        rates = np.array([s.rate for s in self.stages_])
        return rates[np.minimum(np.searchsorted(ends, np.asarray(t), side="right"), len(rates) - 1)]


class Ramp(_Shape):
    kind: Literal["ramp"]
    start_rate: float = Field(ge=0)
    end_rate: float = Field(ge=0)
    ramp_s: PositiveFloat  # then holds end_rate

    def rate_at(self, t):
        return self.start_rate + (self.end_rate - self.start_rate) * np.clip(np.asarray(t) / self.ramp_s, 0.0, 1.0)


class Spike(_Shape):
    kind: Literal["spike"]
    base_rate: float = Field(ge=0)
    peak_rate: float = Field(ge=0)
    at_s: float = Field(ge=0)
    width_s: PositiveFloat

    def rate_at(self, t):
        t = np.asarray(t)
        return np.where((t >= self.at_s) & (t < self.at_s + self.width_s), self.peak_rate, self.base_rate).astype(
            np.float64
        )


class Diurnal(_Shape):
    """A day compressed into `period_s`: mean x (1 + amplitude x sin), lowest at the start (night)."""

    kind: Literal["diurnal"]
    mean_rate: PositiveFloat
    amplitude: float = Field(0.6, ge=0, le=1)
    period_s: PositiveFloat

    def rate_at(self, t):
        return self.mean_rate * (1.0 - self.amplitude * np.cos(2 * math.pi * np.asarray(t) / self.period_s))


class Trace(_Shape):
    """Replay a trace (Azure CSV, JSONL replay file, ServeGen folder) with its own arrivals and lengths."""

    kind: Literal["trace"]
    path: str
    start_s: float = Field(0.0, ge=0)
    end_s: float | None = None
    time_scale: PositiveFloat = 1.0
    rate_scale: PositiveFloat = 1.0
    lengths_from: str | None = None  # for a ServeGen folder: the trace whose lengths to draw

    @model_validator(mode="after")
    def _window(self):
        if self.end_s is not None and self.end_s <= self.start_s:
            raise ValueError(f"end_s ({self.end_s}) must be after start_s ({self.start_s})")
        return self

    def rate_at(self, t):
        raise TypeError("a trace shape has arrivals, not a rate function")


Shape = Annotated[Constant | Step | Ramp | Spike | Diurnal | Trace, Field(discriminator="kind")]
