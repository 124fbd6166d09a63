"""Fluid replicas as cohorts in lockstep: requests whose first token comes in the same step decode together, one
token per engine step (continuous batching), in steps timed by the engine's own step-time model; a FIFO queue of
prompt tokens per replica is prefilled in the token budget left beside the decodes, and stretches their steps."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from serving.engine.profile import Profile
from serving.engine.steptime import StepTimeModel

# where a step's decode advance is cut to follow a batch that empties or slows within the step (shares of the most
# tokens a lone sequence could decode in it): finer early, where short answers finish
ADVANCE_GRID = np.array([0.0, 0.01, 0.025, 0.05, 0.1, 0.17, 0.25, 0.35, 0.5, 0.65, 0.8, 1.0])
TTFT_POINTS = 4  # TTFT points per queue slice served: its first requests are prefilled before its last
GONE = 1e-4  # a cohort (or queue slice) holding fewer requests than this, over all replicas, is dropped


class StepOutputs:
    """The output lengths of each step's arrivals, as the share of them still decoding after `a` decode steps
    (P(output - 1 > a): the first token comes with the prefill), on a grid of whole steps up to the longest answer."""

    def __init__(self, step_of_request: np.ndarray, output_tokens: np.ndarray, steps: int):
        outputs = np.asarray(output_tokens, dtype=np.int64)
        if len(outputs) and outputs.min() < 1:
            raise ValueError("cohort mode: every request needs at least one output token")
        order = np.argsort(step_of_request, kind="stable")
        self.decode_steps = outputs[order] - 1
        self.bounds = np.searchsorted(np.asarray(step_of_request)[order], np.arange(steps + 1))
        self.length = int(outputs.max()) + 1 if len(outputs) else 2  # survival is 0 from here on
        self.mean_output = float(outputs.mean()) if len(outputs) else 0.0

    def histogram(self, step: int) -> np.ndarray:
        """Counts of the step's arrivals by their decode steps."""
        lo, hi = self.bounds[step], self.bounds[step + 1]
        return np.bincount(self.decode_steps[lo:hi], minlength=self.length)


class _Slots:
    """Named (replicas x slots) arrays whose slots are reused once empty and grow when none is free."""

    def __init__(self, names: tuple[str, ...], shared: tuple[str, ...], rows: int, width: int = 64, table: int = 0):
        self.names, self.shared = names, shared
        self.arrays = {name: np.zeros((rows, width)) for name in names}
        self.columns = {name: np.zeros(width) for name in shared}  # one value per slot, for every replica
        self.table = np.zeros((width, table))  # a row of `table` values per slot, for every replica
        self.used = np.zeros(width, dtype=bool)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name] if name in self.arrays else self.columns[name]

    def take(self) -> int:
        free = np.flatnonzero(~self.used)
        if not len(free):
            width = len(self.used)
            for name in self.names:
                self.arrays[name] = np.concatenate([self.arrays[name], np.zeros_like(self.arrays[name])], axis=1)
            for name in self.shared:
                self.columns[name] = np.concatenate([self.columns[name], np.zeros(width)])
            self.table = np.concatenate([self.table, np.zeros_like(self.table)])
            self.used = np.concatenate([self.used, np.zeros(width, dtype=bool)])
            free = np.array([width])
        slot = int(free[0])
        self.used[slot] = True
        for name in self.names:
            self.arrays[name][:, slot] = 0.0
        return slot

    def add_rows(self, count: int) -> None:
        for name in self.names:
            self.arrays[name] = np.concatenate([self.arrays[name], np.zeros((count, len(self.used)))])

    def keep_rows(self, keep: np.ndarray) -> None:
        for name in self.names:
            self.arrays[name] = self.arrays[name][keep]


@dataclass
class StepServed:
    """What a step served, per replica, and what its Prometheus histograms gain."""

    completions: np.ndarray
    met: np.ndarray  # completions within both SLO targets
    first_tokens: np.ndarray
    first_prompt_tokens: np.ndarray
    output_tokens: np.ndarray  # generated: first tokens and decoded ones
    busy_s: np.ndarray  # GPU-busy seconds
    ttft: np.ndarray  # TTFT points of the first tokens (flat), with their weights
    ttft_weights: np.ndarray
    itl: np.ndarray  # mean ITL of the completions (flat), with their weights
    itl_weights: np.ndarray
    itl_sum: float  # seconds between tokens, over every token decoded (vLLM's ITL histogram sum and count)
    itl_count: float


class CohortReplicas:
    """Vectorized over replicas (rows). Per replica: a FIFO queue of slices (requests routed in one step, with their
    prompt tokens and arrival time) and cohorts (requests that got their first token in one step, with the share of
    them that met the TTFT target, their mean prompt, the decode steps they have taken and the time those took).

    Each step of `step_s` plans what the engine does in it, as vLLM's scheduler does per engine step: the running
    decodes first, then prefill from the queue's head in the token budget left (max_num_batched_tokens), within the
    sequence and KV-cache room. Prefill takes its share of the step's time, and every decode step that carries a
    chunk is that much longer, so the running requests' ITL rises while a burst's prompts are prefilled beside them.
    All running requests then advance by the same number of tokens, timed by the step-time model on the batch as it
    shrinks (cohorts lose the requests whose outputs end: the output lengths of the steps they arrived in), and a completing
    request meets the SLO if its cohort met the TTFT target and its time over tokens is within the ITL target."""

    def __init__(
        self,
        profile: Profile,
        outputs: StepOutputs,
        slo_ttft_s: float,
        slo_itl_s: float,
        step_s: float = 1.0,
        rows: int = 0,
    ):
        self.steps = StepTimeModel(profile)
        self.outputs, self.step_s = outputs, step_s
        self.slo_ttft_s, self.slo_itl_s = slo_ttft_s, slo_itl_s
        self.kv_capacity = float(profile.kv_capacity_tokens)
        self.max_seqs = float(profile.scheduler.max_num_seqs)
        self.budget = float(profile.scheduler.max_num_batched_tokens)
        self.lone_step_s = float(self.steps.mixed_steps(np.array([1.0]), np.array([1.0]), np.array([0.0]))[0][0])
        self.rows = rows
        self.queue = _Slots(("requests", "tokens", "squares"), ("arrival", "step"), rows)
        self.cohorts = _Slots(("count", "age", "decode_s", "ttft_ok", "prompt"), (), rows, table=outputs.length + 1)
        self.running = np.zeros(rows)  # gauges after the last step
        self.waiting = np.zeros(rows)
        self.kv_usage = np.zeros(rows)

    # ---- fleet ---------------------------------------------------------------------------------
    def add(self, count: int) -> None:
        self.queue.add_rows(count)
        self.cohorts.add_rows(count)
        self.running, self.waiting, self.kv_usage = (
            np.append(a, np.zeros(count)) for a in (self.running, self.waiting, self.kv_usage)
        )
        self.rows += count

    def keep(self, keep: np.ndarray) -> None:
        self.queue.keep_rows(keep)
        self.cohorts.keep_rows(keep)
        self.running, self.waiting, self.kv_usage = self.running[keep], self.waiting[keep], self.kv_usage[keep]
        self.rows = int(np.count_nonzero(keep))

    def enqueue(
        self,
        requests: np.ndarray,
        prompt_tokens: np.ndarray,
        arrival_s: float,
        step: int,
        prompt_squares: np.ndarray | None = None,
    ) -> None:
        """Requests routed to each replica (with their prompt tokens, and the sum of their squares: by default
        prompts of one length), arrived in `step`, at `arrival_s` on average."""
        if not requests.any():
            return
        slot = self.queue.take()
        self.queue["requests"][:, slot] = requests
        self.queue["tokens"][:, slot] = prompt_tokens
        self.queue["squares"][:, slot] = (
            prompt_squares
            if prompt_squares is not None
            else np.divide(prompt_tokens**2, requests, out=np.zeros_like(requests), where=requests > 0)
        )
        self.queue["arrival"][slot] = arrival_s
        self.queue["step"][slot] = step

    def _survival(self, columns: np.ndarray, age: np.ndarray) -> np.ndarray:
        """Share of each cohort (columns) still decoding at `age` (replicas x columns), by linear interpolation."""
        width = self.cohorts.table.shape[1]
        at = np.clip(age, 0.0, width - 1.0)
        below = np.minimum(at.astype(np.int64), width - 2)
        flat = self.cohorts.table[columns].ravel()
        base = (np.arange(len(columns)) * width)[None, :] + below
        low, high = flat[base], flat[base + 1]
        return low + (high - low) * (at - below)

    def oldest_arrival(self) -> float:
        """When the longest-waiting queued request arrived (inf with every queue empty)."""
        used = self.queue.used
        return float(self.queue["arrival"][used].min()) if used.any() else math.inf

    def outstanding(self) -> np.ndarray:
        """Requests each replica holds: decoding or queued (what least-outstanding-requests routing reads)."""
        return self._decoding() + self.queue["requests"][:, self.queue.used].sum(axis=1)

    def _decoding(self) -> np.ndarray:
        live = self.cohorts.used
        if not live.any():
            return np.zeros(self.rows)
        c = self.cohorts
        columns = np.flatnonzero(live)
        return (c["count"][:, columns] * self._survival(columns, c["age"][:, columns])).sum(axis=1)

    def _cohort_survival(self, steps: np.ndarray, taken: np.ndarray) -> np.ndarray:
        """Survival of a cohort made of `taken` requests from the queue slices of arrival `steps`: the mix of those
        steps' output lengths, each slice weighed by what was taken of it."""
        histogram = np.zeros(self.outputs.length)
        for step, weight in zip(steps[taken > 0], taken[taken > 0]):
            counts = self.outputs.histogram(int(step))
            histogram += weight * counts / max(counts.sum(), 1)
        cdf = np.cumsum(histogram) / max(histogram.sum(), 1e-12)
        return np.append(1.0 - cdf, 0.0)

    # ---- one step --------------------------------------------------------------------------------
    def step(self, now: float) -> StepServed:
        dt, rows = self.step_s, self.rows
        c = self.cohorts
        live = np.flatnonzero(c.used)
        alive = c["count"][:, live] * self._survival(live, c["age"][:, live])
        decoding = alive.sum(axis=1)
        context = (alive * (c["prompt"][:, live] + c["age"][:, live])).sum(axis=1)

        # prefill: the queue's head, FIFO, in the budget left beside the decodes, within sequence and KV room
        q = self.queue
        order = np.flatnonzero(q.used)
        order = order[np.argsort(q["arrival"][order], kind="stable")]
        requests, tokens = q["requests"][:, order], q["tokens"][:, order]
        per_request = np.divide(tokens, requests, out=np.zeros_like(tokens), where=requests > 0)
        cum_requests, cum_tokens = np.cumsum(requests, axis=1), np.cumsum(tokens, axis=1)
        queued = cum_requests[:, -1] if len(order) else np.zeros(rows)
        head_prompt = (
            np.divide(cum_tokens[:, -1], queued, out=np.ones(rows), where=queued > 0) if len(order) else np.ones(rows)
        )
        squares = q["squares"][:, order].sum(axis=1)
        attended = (
            np.divide(squares, cum_tokens[:, -1], out=head_prompt.copy(), where=cum_tokens[:, -1] > 0)
            if len(order)
            else head_prompt
        )
        chunk = np.maximum(0.0, self.budget - decoding)
        full_s, full_busy = self.steps.mixed_steps(decoding, context, chunk, head_prompt, attended)
        decode_s, _ = self.steps.mixed_steps(decoding, context, np.zeros(rows))
        prefill_rate = np.divide(chunk, full_s, out=np.zeros(rows), where=full_s > 0)  # tokens/s, beside the decodes
        decode_steps = dt / np.maximum(decode_s, self.lone_step_s)
        kv_room = self.kv_capacity - context - decoding * decode_steps  # what the batch grows into during the step
        room = np.minimum(
            np.maximum(0.0, self.max_seqs - decoding), np.maximum(0.0, kv_room) / np.maximum(head_prompt, 1.0)
        )
        admitted = np.clip(room[:, None] - (cum_requests - requests), 0.0, requests)
        prefilled_tokens = np.minimum((admitted * per_request).sum(axis=1), prefill_rate * dt)
        take_tokens = np.clip(prefilled_tokens[:, None] - (cum_tokens - tokens), 0.0, tokens)
        take = np.divide(take_tokens, per_request, out=np.zeros_like(take_tokens), where=per_request > 0)
        take = np.minimum(take, requests)

        # what a prefill token costs the step: chunks of one prompt where the queue's backlog is short (arrivals
        # spread over the step are prefilled as they come), full chunks behind a burst's backlog
        backlog = (tokens * (q["arrival"][order] < now)[None, :]).sum(axis=1)
        typical = np.minimum(chunk, np.maximum(head_prompt, backlog))
        typical_s, _ = self.steps.mixed_steps(decoding, context, typical, head_prompt, attended)
        per_token_s = np.divide(np.maximum(typical_s - decode_s, 0.0), typical, out=np.zeros(rows), where=typical > 0)
        # TTFT of each slice served: its tokens done, FIFO at the prefill rate, from the step's start; not before it
        # arrived, and not sooner than its own: the step under way ends (half a step, on average), then its prompt
        # takes a step of its own. Its first requests come before its last.
        residual = 0.5 * typical_s
        prefill_step = decode_s[:, None] + per_request * per_token_s[:, None]
        own = prefill_step + residual[:, None]
        rate = np.maximum(prefill_rate, 1e-9)[:, None]
        arrival = q["arrival"][order][None, :]
        first = np.maximum(now + (cum_tokens - tokens) / rate - arrival, own)
        last = np.maximum(now + (cum_tokens - tokens + take_tokens) / rate - arrival, own)
        ttft_ok = (
            np.clip(
                np.divide(
                    self.slo_ttft_s - first,
                    last - first,
                    out=(first <= self.slo_ttft_s).astype(float),
                    where=last - first > 1e-12,
                ),
                0.0,
                1.0,
            )
            * take
        )
        shares = (np.arange(TTFT_POINTS) + 0.5) / TTFT_POINTS
        ttft_points = first[..., None] + (last - first)[..., None] * shares
        served = take > 0
        ttft_flat = ttft_points[served].ravel()
        ttft_weights = np.repeat(take[served] / TTFT_POINTS, TTFT_POINTS)
        first_tokens = take.sum(axis=1)
        first_prompt = (take * per_request).sum(axis=1)
        q["requests"][:, order] = requests - take
        q["tokens"][:, order] = tokens - take * per_request
        q["squares"][:, order] *= np.divide(requests - take, requests, out=np.zeros_like(requests), where=requests > 0)
        q.used[order[q["requests"][:, order].sum(axis=0) < GONE]] = False

        # the step's first tokens form a new cohort
        if first_tokens.sum() > GONE:
            slot = c.take()
            c["count"][:, slot] = first_tokens
            c["ttft_ok"][:, slot] = np.divide(
                ttft_ok.sum(axis=1), first_tokens, out=np.ones(rows), where=first_tokens > 0
            )
            c["prompt"][:, slot] = np.divide(first_prompt, first_tokens, out=np.zeros(rows), where=first_tokens > 0)
            c.table[slot] = self._cohort_survival(q["step"][order].astype(np.int64), take.sum(axis=0))
            live = np.flatnonzero(c.used)
        fresh = live == slot if first_tokens.sum() > GONE else np.zeros(len(live), dtype=bool)

        # decode: every running request advances in lockstep; a step carrying a chunk lasts that much longer
        count, age0, spent0 = c["count"][:, live], c["age"][:, live], c["decode_s"][:, live]
        prompt, cohort_ttft_ok = c["prompt"][:, live], c["ttft_ok"][:, live]
        prefill_share = np.clip(per_token_s * prefilled_tokens / dt, 0.0, 0.999)
        chunk_cost = np.maximum(full_s - decode_s, 0.0)
        before = self._survival(live, age0)
        before[:, fresh] = 1.0  # answers of one token end with their first
        most = dt / self.lone_step_s + 1.0
        wall = np.zeros(rows)  # wall time of the tokens decoded so far in the step
        prefill_s = per_token_s * prefilled_tokens
        prefill_busy = prefill_s * np.divide(full_busy, full_s, out=np.zeros(rows), where=full_s > 0)
        concurrency_s = np.zeros(rows)  # request-seconds decoding in the step
        decode_busy_s, decode_steps_s = (
            np.zeros(rows),
            np.zeros(rows),
        )  # GPU-busy and unstretched time of its steps (x batch)
        advance = np.zeros(rows)
        completions, met, decoded = np.zeros(rows), np.zeros(rows), np.zeros(rows)
        itl_values, itl_weights = [], []
        itl_sum = itl_count = 0.0
        for share in ADVANCE_GRID[1:]:
            target = np.full(rows, share * most)
            after = self._survival(live, age0 + target[:, None])
            mean_alive = count * 0.5 * (before + after)
            batch = mean_alive.sum(axis=1)
            mid = age0 + 0.5 * (advance + target)[:, None]
            batch_context = (mean_alive * (prompt + mid)).sum(axis=1)
            bare_s, step_busy = self.steps.mixed_steps(batch, batch_context, np.zeros(rows))
            step_s = np.minimum(bare_s / (1.0 - prefill_share), bare_s + chunk_cost)
            gain = target - advance
            fits = np.clip(np.divide(dt - wall, gain * step_s, out=np.ones(rows), where=gain * step_s > 0), 0.0, 1.0)
            fits = np.where(batch > 1e-9, fits, 0.0)
            reached = advance + fits * gain
            after = self._survival(live, age0 + reached[:, None])
            finished = count * (before - after)
            wall_new = wall + fits * gain * step_s
            itl = (spent0 + wall_new[:, None]) / np.maximum(age0 + reached[:, None], 1.0)
            ok = finished * cohort_ttft_ok * (itl <= self.slo_itl_s)
            completions += finished.sum(axis=1)
            met += ok.sum(axis=1)
            itl_values.append(itl[finished > 0])
            itl_weights.append(finished[finished > 0])
            tokens_decoded = (count * 0.5 * (before + after)).sum(axis=1) * fits * gain
            decoded += tokens_decoded
            itl_sum += float((tokens_decoded * step_s).sum())
            itl_count += float(tokens_decoded.sum())
            concurrency_s += batch * fits * gain * step_s
            decode_busy_s += batch * fits * gain * step_busy
            decode_steps_s += batch * fits * gain * bare_s
            wall, advance, before = wall_new, reached, after
            if not (fits > 0).any():
                break
        c["age"][:, live] = age0 + advance[:, None]
        c["decode_s"][:, live] = spent0 + wall[:, None]
        remaining = count * before
        c.used[live[remaining.sum(axis=0) < GONE]] = False

        # a step's requests come spread over it, not at once as the lockstep has them: a batch of short answers
        # decoded in a fraction of the step is, on the engine, a few requests at a time over all of it. So the
        # decoding gauge is the step's time average (what a scrape at any instant expects; the queue, FIFO, is read
        # at the step's end, below), and the engine decodes while it holds a request: for a mean of m decoding over
        # the step (Poisson), 1 - exp(-m) of the time
        mean_decoding = concurrency_s / dt
        busy_share = np.divide(decode_busy_s, decode_steps_s, out=np.zeros(rows), where=decode_steps_s > 0)
        busy = prefill_busy + np.minimum(np.maximum(dt - prefill_s, 0.0), -np.expm1(-mean_decoding) * dt) * busy_share
        # a served slice is queued from its arrival (or the step's start) until its first tokens
        present_from = np.maximum(arrival, now)
        served_until = np.clip(arrival + 0.5 * (first + last), present_from, now + dt)
        # of those, the ones being prefilled run (vLLM counts them running): each for its prompt's step, or a full
        # chunk's worth of prompts all along while a backlog keeps the budget full
        bound = prefilled_tokens >= 0.999 * prefill_rate * dt
        in_chunk = np.where(
            bound, chunk / np.maximum(head_prompt, 1.0), (take * prefill_step).sum(axis=1) / dt if len(order) else 0.0
        )
        # a scrape comes at a step's end: the queue then holds what is left of it, and of the step's own arrivals,
        # spread over it, those served in it for their time queued (under light load, what any instant holds)
        own = arrival >= now
        queued_at_end = (
            (requests - take).sum(axis=1) + (take * (served_until - present_from) * own).sum(axis=1) / dt
            if len(order)
            else np.zeros(rows)
        )
        in_chunk = np.minimum(queued_at_end, in_chunk)
        self.running, self.waiting = mean_decoding + in_chunk, queued_at_end - in_chunk
        self.kv_usage = np.minimum(1.0, (remaining * (prompt + age0 + advance[:, None])).sum(axis=1) / self.kv_capacity)
        return StepServed(
            completions,
            met,
            first_tokens,
            first_prompt,
            first_tokens + decoded,
            busy,
            ttft_flat,
            ttft_weights,
            np.concatenate(itl_values) if itl_values else np.zeros(0),
            np.concatenate(itl_weights) if itl_weights else np.zeros(0),
            itl_sum,
            itl_count,
        )
