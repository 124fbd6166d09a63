"""ServeGen per-client window rates: load them, total them, and synthesize request-level arrivals from them."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from loadgen.workloads.workload import TraceError, Workload

FAMILIES = {"": 0, "Gamma": 1, "Weibull": 2}


@dataclass(frozen=True)
class ClientWindows:
    """One client's windows: mean rate (req/s), IAT coefficient of variation, fitted family, shape and scale."""

    name: str
    start_s: np.ndarray
    rate: np.ndarray
    cv: np.ndarray
    family: np.ndarray
    shape: np.ndarray
    scale: np.ndarray


@dataclass(frozen=True)
class RateWindows:
    window_s: float
    clients: tuple[ClientWindows, ...]

    @property
    def start_s(self) -> np.ndarray:
        return self.clients[0].start_s

    def total_rate(self) -> np.ndarray:
        """Requests per second per window, summed over clients."""
        return np.sum([c.rate for c in self.clients], axis=0)

    def scaled(self, time_scale: float = 1.0, rate_scale: float = 1.0) -> RateWindows:
        """The same traffic replayed `time_scale` times faster (windows shorter, rates higher) at `rate_scale` times
        the rate, as Workload.scaled does to a request trace."""
        if time_scale <= 0 or rate_scale <= 0:
            raise ValueError(f"time_scale and rate_scale must be positive, got {time_scale} and {rate_scale}")
        if time_scale == 1.0 and rate_scale == 1.0:
            return self
        clients = tuple(
            replace(c, start_s=c.start_s / time_scale, rate=c.rate * time_scale * rate_scale) for c in self.clients
        )
        return RateWindows(self.window_s / time_scale, clients)


def _number(path: str, line: int, column: str, raw: str, minimum: float = 0.0) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise TraceError(path, line, column, raw, "expected a number") from None
    if not math.isfinite(value) or value < minimum:
        raise TraceError(path, line, column, raw, f"expected a finite number >= {minimum:g}")
    return value


def load_client(path: str | Path) -> ClientWindows:
    """A `chunk-<client>-trace.csv` file: no header; start, rate, cv, family, shape, scale per 600 s window.
    Parsed fast with pandas; any doubt falls back to the row-by-row parser, whose errors name line and column."""
    fast = _load_client_fast(str(path))
    return fast if fast is not None else _load_client_checked(str(path))


def _load_client_fast(path: str) -> ClientWindows | None:
    import pandas as pd

    try:
        frame = pd.read_csv(path, header=None, names=range(6), dtype={3: str}, keep_default_na=False)
        numbers = frame[[0, 1, 2, 4, 5]].astype(np.float64)
    except (ValueError, TypeError, pd.errors.ParserError):
        return None
    values = numbers.to_numpy()
    family = frame[3].map(FAMILIES)
    if (
        len(frame) == 0
        or frame.shape[1] != 6
        or family.isna().any()
        or not np.isfinite(values).all()
        or (values < 0).any()
        or np.any(np.diff(values[:, 0]) <= 0)
    ):
        return None
    rate, shape, scale = values[:, 1], values[:, 3], values[:, 4]
    active = rate > 0
    if np.any(active & ((family.to_numpy() == 0) | (shape <= 0) | (scale <= 0))):
        return None
    return ClientWindows(
        Path(path).stem, values[:, 0], rate, values[:, 2], family.to_numpy().astype(np.int8), shape, scale
    )


def _load_client_checked(path: str) -> ClientWindows:
    cols: list[list] = [[], [], [], [], [], []]
    with open(path, newline="") as f:
        for line, row in enumerate(csv.reader(f), start=1):
            if not row:
                continue
            if len(row) != 6:
                raise TraceError(
                    path, line, "row", ",".join(row), "expected 6 columns (start, rate, cv, family, shape, scale)"
                )
            start = _number(path, line, "window_start", row[0])
            rate = _number(path, line, "rate", row[1])
            cv = _number(path, line, "cv", row[2])
            if row[3] not in FAMILIES:
                raise TraceError(path, line, "family", row[3], "expected Gamma, Weibull or empty")
            if rate > 0 and not row[3]:
                raise TraceError(path, line, "family", row[3], "a window with requests needs a fitted family")
            shape = _number(path, line, "shape", row[4])
            scale = _number(path, line, "scale", row[5])
            if rate > 0 and (shape <= 0 or scale <= 0):
                raise TraceError(path, line, "shape", row[4], "shape and scale must be positive where the rate is")
            if cols[0] and start <= cols[0][-1]:
                raise TraceError(path, line, "window_start", row[0], "windows must be in increasing order")
            for target, value in zip(cols, (start, rate, cv, FAMILIES[row[3]], shape, scale)):
                target.append(value)
    if not cols[0]:
        raise TraceError(path, 1, "row", "", "the file has no windows")
    arrays = [np.asarray(c, dtype=np.float64) for c in cols]
    arrays[3] = arrays[3].astype(np.int8)
    return ClientWindows(Path(path).stem, *arrays)


def load_servegen(folder: str | Path) -> RateWindows:
    """Every client file of one model's folder; all must share the same windows."""
    files = sorted(Path(folder).glob("chunk-*-trace.csv"))
    if not files:
        raise FileNotFoundError(f"no chunk-*-trace.csv files in {folder}")
    clients = tuple(load_client(f) for f in files)
    first = clients[0].start_s
    for c, f in zip(clients, files):
        if len(c.start_s) != len(first) or not np.array_equal(c.start_s, first):
            raise TraceError(
                str(f), 1, "window_start", c.start_s[:3].tolist(), "windows differ from the other clients' files"
            )
    window = float(first[1] - first[0]) if len(first) > 1 else 600.0
    return RateWindows(window, clients)


class LengthSampler:
    """Token lengths for synthesized requests: resampled (prompt, output) pairs of a trace, or log-normal."""

    def __init__(self, prompts: np.ndarray, outputs: np.ndarray):
        self.prompts, self.outputs = np.asarray(prompts), np.asarray(outputs)

    @classmethod
    def from_workload(cls, workload: Workload) -> LengthSampler:
        return cls(workload.prompt_tokens, workload.output_tokens)

    @classmethod
    def lognormal(
        cls, prompt_mean: float, output_mean: float, sigma: float = 1.0, seed: int = 0, n: int = 100_000
    ) -> LengthSampler:
        rng = np.random.default_rng(seed)
        draw = lambda mean: np.maximum(1, rng.lognormal(math.log(mean) - sigma**2 / 2, sigma, n)).astype(np.int64)
        return cls(draw(prompt_mean), draw(output_mean))

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        index = rng.integers(0, len(self.prompts), n)
        return self.prompts[index], self.outputs[index]

    @property
    def mean_prompt(self) -> float:
        return float(self.prompts.mean())

    @property
    def mean_output(self) -> float:
        return float(self.outputs.mean())


def _draw_gaps(family: np.ndarray, shape: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One inter-arrival gap per entry from its fitted family (Gamma, else Weibull), at unit scale: the scale is
    immaterial, since each window's gaps are rescaled to its rate. Weibull as E^(1/shape), E exponential."""
    gaps = rng.standard_exponential(len(family))
    gamma = family == FAMILIES["Gamma"]
    if gamma.all():
        return rng.standard_gamma(shape)
    np.power(gaps, 1.0 / shape, out=gaps)
    if gamma.any():
        gaps[gamma] = rng.standard_gamma(shape[gamma])
    return gaps


_CHUNK = 4_000_000  # gaps drawn at once, to bound memory on days of traffic


def arrival_chunks(windows: RateWindows, seed: int = 0, start_s: float = 0.0, end_s: float | None = None):
    """Arrival times in [start_s, end_s), client by client, in chunks of windows (unsorted across chunks): per
    client and window, IATs from the fitted family, rescaled so the window's mean rate is met (as ServeGen's
    generator does), starting at a uniform offset. Reproducible by seed; vectorized over windows."""
    rng = np.random.default_rng(seed)
    w = windows.window_s
    end_s = end_s if end_s is not None else float(windows.start_s[-1] + w)
    starts = windows.start_s
    span = np.flatnonzero((starts + w > start_s) & (starts < end_s))
    for client in windows.clients:
        index = span[client.rate[span] > 0]
        if not len(index):
            continue
        rate = client.rate[index]
        expected = rate * w
        draws = (expected * 1.5 + 10 * np.sqrt(expected) + 10).astype(np.int64)
        ends = np.cumsum(draws)
        first = 0
        while first < len(index):
            last = max(first + 1, int(np.searchsorted(ends, (ends[first - 1] if first else 0) + _CHUNK, side="right")))
            part, n = slice(first, last), draws[first:last]
            at = index[part]
            gaps = _draw_gaps(np.repeat(client.family[at], n), np.repeat(client.shape[at], n), rng)
            heads = np.concatenate(([0], np.cumsum(n)[:-1]))
            mean = np.add.reduceat(gaps, heads) / n
            fit = np.where(mean > 0, (1.0 / rate[part]) / np.where(mean > 0, mean, 1.0), 0.0)
            gaps = np.where(np.repeat(mean > 0, n), gaps * np.repeat(fit, n), np.repeat(1.0 / rate[part], n))
            before = np.cumsum(gaps) - gaps  # time from the window's first arrival, per window below
            offset = rng.uniform(0.0, 1.0 / rate[part])
            into = before - np.repeat(before[heads], n) + np.repeat(offset, n)
            stamps = np.repeat(starts[at], n) + into
            keep = (into < w) & (stamps >= start_s) & (stamps < end_s)
            yield stamps[keep]
            first = last


def synthesize(
    windows: RateWindows,
    lengths: LengthSampler,
    seed: int = 0,
    start_s: float = 0.0,
    end_s: float | None = None,
    name: str = "servegen",
) -> Workload:
    """Request-level arrivals for [start_s, end_s) (arrival_chunks), with token lengths drawn from `lengths`."""
    times = list(arrival_chunks(windows, seed, start_s, end_s))
    arrival = np.sort(np.concatenate(times)) if times else np.zeros(0)
    prompts, outputs = lengths.sample(len(arrival), np.random.default_rng([seed, 1]))
    return Workload(name, arrival - start_s, prompts, outputs)


def window_counts(
    windows: RateWindows, step_s: float, seed: int = 0, start_s: float = 0.0, end_s: float | None = None
) -> np.ndarray:
    """Arrivals per `step_s` over [start_s, end_s): the same arrivals `synthesize` makes with this seed, binned, without
    holding days of timestamps at once."""
    end_s = end_s if end_s is not None else float(windows.start_s[-1] + windows.window_s)
    steps = int(math.ceil((end_s - start_s) / step_s))
    counts = np.zeros(steps)
    for stamps in arrival_chunks(windows, seed, start_s, end_s):
        counts += np.bincount(np.minimum(((stamps - start_s) // step_s).astype(np.int64), steps - 1), minlength=steps)
    return counts
