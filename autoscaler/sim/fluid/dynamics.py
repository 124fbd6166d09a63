"""One replica as a fluid queue: its state is the number of requests inside it, stepped implicitly through the
throughput-against-concurrency curve of a LoadTable; gauges and latencies are read off the same state."""

from __future__ import annotations

import math

import numpy as np

from autoscaler.capacity.load_table import LoadTable, bracket, interp_rows


class ReplicaDynamics:
    """Vectorized over replicas. A replica holding n requests completes X(n) per second, X rising with the batch
    until the batch is full (n_sat) and flat at the saturated throughput beyond: the excess waits in its queue.
    Requests leave once served, so completions follow the state as it was about one residence time ago, not as it
    is: X is read at a lagged state m, which follows n with the time constant `lag_s` (the mean time a request
    spends inside at half the replica's SLO capacity, n / X by Little's law). A burst therefore stays inside for
    about that long, as it does on the engine, before the batch's throughput rises to meet it; at a constant rate
    m = n and the steady state is the table's. Each step solves, implicitly in m (stable for any step),
        n' = n + routed - X(m') dt,   m' = m + b (n' - m),   b = 1 - exp(-dt / lag_s),
    which is backward Euler on n when the step is long against the lag (b = 1), and fills a batch gradually after
    a surge."""

    def __init__(self, table: LoadTable, step_s: float, seed: int = 0, lag_s: float | None = None):
        self.table, self.step_s = table, step_s
        self.rng = np.random.default_rng(seed)
        in_system = np.maximum.accumulate(table.running + table.waiting)
        in_system = in_system + np.arange(len(in_system)) * 1e-9  # strictly increasing knots
        self.n_knots = in_system
        self.n_sat = float(in_system[-1])
        self.mu = table.max_throughput_rps
        self.x_knots = table.rates
        if lag_s is None:  # measured: the residence time at half the SLO capacity (0: completions follow n at once)
            residence = in_system[1:] / np.maximum(table.rates[1:], 1e-9)
            lag_s = float(np.interp(0.5 * table.slo_capacity_rps, table.rates[1:], residence))
        self.lag_s = lag_s
        self.blend = 1.0 - math.exp(-step_s / self.lag_s) if self.lag_s > 0 else 1.0
        # m' + b X(m') dt = b held + (1 - b) m is increasing and piecewise linear in m': invert it by interpolation
        far = self.n_sat + 1e9
        self._g = np.append(in_system + self.blend * table.rates * step_s, far + self.blend * self.mu * step_s)
        self._n = np.append(in_system, far)

    def step(self, held: np.ndarray, lagged: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(requests still inside, lagged state) after one step, for replicas holding `held` (their previous count
        plus routed) whose lagged state was `lagged`."""
        lagged = np.interp(self.blend * held + (1.0 - self.blend) * lagged, self._g, self._n)
        return np.maximum(held - self.throughput(lagged) * self.step_s, 0.0), lagged

    def throughput(self, n: np.ndarray) -> np.ndarray:
        return np.interp(n, self.n_knots, self.x_knots)  # flat at the saturated rate past n_sat

    def queue_delay(self, n: np.ndarray) -> np.ndarray:
        """Seconds a new request waits behind the part of the queue that cannot join a full batch."""
        return np.maximum(n - self.n_sat, 0.0) / self.mu

    def column(self, name: str, n: np.ndarray) -> np.ndarray:
        return np.interp(n, self.n_knots, getattr(self.table, name))

    def ttft_points(self, n: np.ndarray, waits: np.ndarray | None = None) -> np.ndarray:
        """TTFT quantile points for requests joining replicas in states `n`: (len(n), quantiles). They wait behind
        the backlog beyond a full batch, or behind a burst's prefills (`waits`), whichever is longer: both are the
        same requests ahead of them."""
        delay = self.queue_delay(n) if waits is None else np.maximum(self.queue_delay(n), waits)
        return interp_rows(n, self.n_knots, self.table.ttft_quantiles) + delay[:, None]

    def gauges(self, n: np.ndarray, uniform: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(running, waiting, KV use, GPU utilization %) as a scrape would read them. Running and waiting are
        instantaneous counts: drawn from their spread at that load on the engine (a burst of long requests lifts
        one replica's batch for a while), which is what threshold policies with stabilization windows react to.
        `uniform`: every replica is in the same state (looked up once)."""
        table = self.table
        pick = self.rng.integers(0, table.running_ratio.shape[1], len(n))
        if uniform and len(n) > 1:  # one state: its row of each column, then one draw per replica from it
            i, w = bracket(n[:1], self.n_knots)
            i, lo, w = int(i[0]), 1.0 - float(w[0]), float(w[0])
            at = lambda column: np.full(len(n), lo * column[i - 1] + w * column[i])
            ratio = (lo * table.running_ratio[i - 1] + w * table.running_ratio[i])[pick]
            queued = (lo * table.waiting_quantiles[i - 1] + w * table.waiting_quantiles[i])[pick]
        else:
            i, w = bracket(n, self.n_knots)
            lo = 1.0 - w
            pick_lo, pick_hi = (i - 1, pick), (i, pick)
            ratio = lo * table.running_ratio[pick_lo] + w * table.running_ratio[pick_hi]
            queued = lo * table.waiting_quantiles[pick_lo] + w * table.waiting_quantiles[pick_hi]
            at = lambda column: lo * column[i - 1] + w * column[i]
        running = at(table.running) * ratio
        waiting = queued + np.maximum(n - self.n_sat, 0.0)
        return running, waiting, at(table.kv_usage), at(table.gpu_util)
