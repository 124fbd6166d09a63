"""Fluid replicas as cohorts in lockstep: requests whose first token comes in the same step decode together, one
token per engine step (continuous batching), in steps timed by the engine's own step-time model; a FIFO queue of
prompt tokens per replica is prefilled in the token budget left beside the decodes, and stretches their steps."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from serving.engine.profile import Profile
from serving.engine.scheduler import prefill_budget, sequence_room
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
        self.scheduler = profile.scheduler  # the batch limits, applied by serving.engine.scheduler's arithmetic
        self.lone_step_s = float(self.steps.mixed_steps(np.array([1.0]), np.array([1.0]), np.array([0.0]))[0][0])
        self.request_latency_s = profile.efficiency.request_latency_s
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

    # ---- one step: pure stages, each returning what the next reads ---------------------------------
    def step(self, now: float) -> StepServed:
        """Plans and serves one step of `step_s` from `now` on every replica."""
        batch = self._batch()
        queue = self._queue_head()
        plan = self._plan_prefill(now, batch, queue)
        first = self._first_tokens(now, queue, plan)
        self._dequeue(queue, plan)
        cohorts = self._with_new_cohort(batch.live, queue, plan, first)
        decoded = self._decode(cohorts, plan)
        busy = self._busy(plan, decoded)
        self._read_gauges(now, queue, plan, first, cohorts, decoded)
        return StepServed(
            decoded.completions,
            decoded.met,
            first.count,
            first.prompt_tokens,
            first.count + decoded.tokens,
            busy,
            first.ttft,
            first.ttft_weights,
            np.concatenate(decoded.itl_values) if decoded.itl_values else np.zeros(0),
            np.concatenate(decoded.itl_weights) if decoded.itl_weights else np.zeros(0),
            decoded.itl_sum,
            decoded.itl_count,
        )

    def _batch(self) -> Batch:
        c = self.cohorts
        live = np.flatnonzero(c.used)
        alive = c["count"][:, live] * self._survival(live, c["age"][:, live])
        context = (alive * (c["prompt"][:, live] + c["age"][:, live])).sum(axis=1)
        return Batch(live, alive.sum(axis=1), context)

    def _queue_head(self) -> QueueView:
        """Each replica's queue, oldest slice first, with the prompt lengths a chunk of it holds."""
        q, rows = self.queue, self.rows
        order = np.flatnonzero(q.used)
        order = order[np.argsort(q["arrival"][order], kind="stable")]
        requests, tokens = q["requests"][:, order], q["tokens"][:, order]
        per_request = np.divide(tokens, requests, out=np.zeros_like(tokens), where=requests > 0)
        cum_requests, cum_tokens = np.cumsum(requests, axis=1), np.cumsum(tokens, axis=1)
        head_prompt, attended = np.ones(rows), np.ones(rows)
        if len(order):
            queued, total = cum_requests[:, -1], cum_tokens[:, -1]
            head_prompt = np.divide(total, queued, out=np.ones(rows), where=queued > 0)
            squares = q["squares"][:, order].sum(axis=1)
            # a token at position i of its prompt attends i tokens: a chunk's attention goes by the squared lengths
            attended = np.divide(squares, total, out=head_prompt.copy(), where=total > 0)
        arrival = q["arrival"][order][None, :]
        steps = q["step"][order].astype(np.int64)
        return QueueView(
            order, requests, tokens, per_request, cum_requests, cum_tokens, arrival, steps, head_prompt, attended
        )

    def _plan_prefill(self, now: float, batch: Batch, queue: QueueView) -> PrefillPlan:
        """The queue's head, FIFO, in the token budget left beside the decodes, within sequence and KV room (the
        scheduler's limits, serving.engine.scheduler); and what a prefill token costs the step."""
        dt, rows, scheduler = self.step_s, self.rows, self.scheduler
        decoding, context = batch.decoding, batch.context
        chunk = prefill_budget(decoding, scheduler)
        full_s, full_busy = self.steps.mixed_steps(decoding, context, chunk, queue.head_prompt, queue.attended)
        decode_s, _ = self.steps.mixed_steps(decoding, context, np.zeros(rows))
        prefill_rate = np.divide(chunk, full_s, out=np.zeros(rows), where=full_s > 0)  # tokens/s, beside the decodes
        decode_steps = dt / np.maximum(decode_s, self.lone_step_s)
        kv_room = self.kv_capacity - context - decoding * decode_steps  # what the batch grows into during the step
        kv_sequences = np.maximum(0.0, kv_room) / np.maximum(queue.head_prompt, 1.0)
        room = np.minimum(sequence_room(decoding, scheduler), kv_sequences)
        requests, tokens = queue.requests, queue.tokens
        admitted = np.clip(room[:, None] - (queue.cum_requests - requests), 0.0, requests)
        prefilled_tokens = np.minimum((admitted * queue.per_request).sum(axis=1), prefill_rate * dt)
        take_tokens = np.clip(prefilled_tokens[:, None] - (queue.cum_tokens - tokens), 0.0, tokens)
        take = np.divide(take_tokens, queue.per_request, out=np.zeros_like(take_tokens), where=queue.per_request > 0)
        take = np.minimum(take, requests)
        per_token_s, typical_s = self._prefill_token_cost(now, batch, queue, chunk, decode_s)
        prefill_step = decode_s[:, None] + queue.per_request * per_token_s[:, None]
        return PrefillPlan(
            chunk,
            full_s,
            full_busy,
            decode_s,
            prefill_rate,
            prefilled_tokens,
            take,
            take_tokens,
            per_token_s,
            typical_s,
            prefill_step,
        )

    def _prefill_token_cost(self, now, batch: Batch, queue: QueueView, chunk, decode_s) -> tuple:
        """(seconds a prefill token adds to a step, the typical step's seconds): chunks of one prompt where the
        queue's backlog is short (arrivals spread over the step are prefilled as they come), full chunks behind a
        burst's backlog."""
        rows = self.rows
        backlog = (queue.tokens * (queue.arrival < now)).sum(axis=1)
        typical = np.minimum(chunk, np.maximum(queue.head_prompt, backlog))
        typical_s, _ = self.steps.mixed_steps(batch.decoding, batch.context, typical, queue.head_prompt, queue.attended)
        per_token_s = np.divide(np.maximum(typical_s - decode_s, 0.0), typical, out=np.zeros(rows), where=typical > 0)
        return per_token_s, typical_s

    def _first_tokens(self, now: float, queue: QueueView, plan: PrefillPlan) -> FirstTokens:
        """TTFT of each slice served: its tokens done, FIFO at the prefill rate, from the step's start; not before
        it arrived, and not sooner than its own: the server's request latency, the step under way ends (half a step,
        on average), then its prompt takes a step of its own. Its first requests come before its last."""
        slo, take = self.slo_ttft_s, plan.take
        # the server's request latency comes before any of it: a slice that waited longer has it behind it already
        own = plan.prefill_step + 0.5 * plan.typical_s[:, None] + self.request_latency_s(queue.per_request)
        rate = np.maximum(plan.prefill_rate, 1e-9)[:, None]
        done_before = queue.cum_tokens - queue.tokens
        first = np.maximum(now + done_before / rate - queue.arrival, own)
        last = np.maximum(now + (done_before + plan.take_tokens) / rate - queue.arrival, own)
        spread = last - first
        within = np.divide(slo - first, spread, out=(first <= slo).astype(float), where=spread > 1e-12)
        ttft_ok = np.clip(within, 0.0, 1.0) * take
        shares = (np.arange(TTFT_POINTS) + 0.5) / TTFT_POINTS
        ttft_points = first[..., None] + spread[..., None] * shares
        served = take > 0
        ttft = ttft_points[served].ravel()
        weights = np.repeat(take[served] / TTFT_POINTS, TTFT_POINTS)
        count = take.sum(axis=1)
        return FirstTokens(first, last, ttft_ok, ttft, weights, count, (take * queue.per_request).sum(axis=1))

    def _dequeue(self, queue: QueueView, plan: PrefillPlan) -> None:
        q, order, requests, take = self.queue, queue.order, queue.requests, plan.take
        q["requests"][:, order] = requests - take
        q["tokens"][:, order] = queue.tokens - take * queue.per_request
        q["squares"][:, order] *= np.divide(requests - take, requests, out=np.zeros_like(requests), where=requests > 0)
        q.used[order[q["requests"][:, order].sum(axis=0) < GONE]] = False

    def _with_new_cohort(self, live: np.ndarray, queue: QueueView, plan: PrefillPlan, first: FirstTokens) -> Cohorts:
        """The step's first tokens form a new cohort beside the live ones."""
        c, rows, count = self.cohorts, self.rows, first.count
        fresh_slot = None
        if count.sum() > GONE:
            fresh_slot = c.take()
            c["count"][:, fresh_slot] = count
            c["ttft_ok"][:, fresh_slot] = np.divide(
                first.ttft_ok.sum(axis=1), count, out=np.ones(rows), where=count > 0
            )
            c["prompt"][:, fresh_slot] = np.divide(first.prompt_tokens, count, out=np.zeros(rows), where=count > 0)
            c.table[fresh_slot] = self._cohort_survival(queue.steps, plan.take.sum(axis=0))
            live = np.flatnonzero(c.used)
        fresh = live == fresh_slot if fresh_slot is not None else np.zeros(len(live), dtype=bool)
        return Cohorts(
            live,
            fresh,
            c["count"][:, live],
            c["age"][:, live],
            c["decode_s"][:, live],
            c["prompt"][:, live],
            c["ttft_ok"][:, live],
        )

    def _decode(self, cohorts: Cohorts, plan: PrefillPlan) -> Decoded:
        """Every running request advances in lockstep; a step carrying a chunk lasts that much longer. The advance
        is cut on ADVANCE_GRID to follow a batch that empties or slows within the step."""
        rows = self.rows
        progress = Decoded.start(rows)
        progress.before = self._survival(cohorts.live, cohorts.age)
        progress.before[:, cohorts.fresh] = 1.0  # answers of one token end with their first
        prefill_share = np.clip(plan.per_token_s * plan.prefilled_tokens / self.step_s, 0.0, 0.999)
        chunk_cost = np.maximum(plan.full_s - plan.decode_s, 0.0)
        most = self.step_s / self.lone_step_s + 1.0
        for share in ADVANCE_GRID[1:]:
            if not self._decode_to(cohorts, progress, np.full(rows, share * most), prefill_share, chunk_cost):
                break
        c, live = self.cohorts, cohorts.live
        c["age"][:, live] = cohorts.age + progress.advance[:, None]
        c["decode_s"][:, live] = cohorts.decode_s + progress.wall[:, None]
        progress.remaining = cohorts.count * progress.before
        c.used[live[progress.remaining.sum(axis=0) < GONE]] = False
        return progress

    def _decode_to(self, cohorts: Cohorts, p: Decoded, target, prefill_share, chunk_cost) -> bool:
        """Advances the cohorts toward `target` tokens, as far as the step's time allows; False once none fits."""
        rows, count, age0 = self.rows, cohorts.count, cohorts.age
        after = self._survival(cohorts.live, age0 + target[:, None])
        mean_alive = count * 0.5 * (p.before + after)
        batch = mean_alive.sum(axis=1)
        mid = age0 + 0.5 * (p.advance + target)[:, None]
        batch_context = (mean_alive * (cohorts.prompt + mid)).sum(axis=1)
        bare_s, step_busy = self.steps.mixed_steps(batch, batch_context, np.zeros(rows))
        step_s = np.minimum(bare_s / (1.0 - prefill_share), bare_s + chunk_cost)
        gain = target - p.advance
        cost = gain * step_s
        fits = np.clip(np.divide(self.step_s - p.wall, cost, out=np.ones(rows), where=cost > 0), 0.0, 1.0)
        fits = np.where(batch > 1e-9, fits, 0.0)
        reached = p.advance + fits * gain
        after = self._survival(cohorts.live, age0 + reached[:, None])
        finished = count * (p.before - after)
        wall = p.wall + fits * gain * step_s
        itl = (cohorts.decode_s + wall[:, None]) / np.maximum(age0 + reached[:, None], 1.0)
        ok = finished * cohorts.ttft_ok * (itl <= self.slo_itl_s)
        p.completions += finished.sum(axis=1)
        p.met += ok.sum(axis=1)
        p.itl_values.append(itl[finished > 0])
        p.itl_weights.append(finished[finished > 0])
        tokens_decoded = (count * 0.5 * (p.before + after)).sum(axis=1) * fits * gain
        p.tokens += tokens_decoded
        p.itl_sum += float((tokens_decoded * step_s).sum())
        p.itl_count += float(tokens_decoded.sum())
        p.concurrency_s += batch * fits * gain * step_s
        p.busy_s += batch * fits * gain * step_busy
        p.steps_s += batch * fits * gain * bare_s
        p.wall, p.advance, p.before = wall, reached, after
        return bool((fits > 0).any())

    def _busy(self, plan: PrefillPlan, decoded: Decoded) -> np.ndarray:
        """GPU-busy seconds: the prefill's, and the decodes' while the engine holds a request. A step's requests
        come spread over it, not at once as the lockstep has them: for a mean of m decoding over the step
        (Poisson), the engine holds one 1 - exp(-m) of the time."""
        dt, rows = self.step_s, self.rows
        prefill_s = plan.per_token_s * plan.prefilled_tokens
        prefill_busy = prefill_s * np.divide(plan.full_busy, plan.full_s, out=np.zeros(rows), where=plan.full_s > 0)
        busy_share = np.divide(decoded.busy_s, decoded.steps_s, out=np.zeros(rows), where=decoded.steps_s > 0)
        holding = -np.expm1(-decoded.concurrency_s / dt) * dt
        return prefill_busy + np.minimum(np.maximum(dt - prefill_s, 0.0), holding) * busy_share

    def _read_gauges(self, now, queue: QueueView, plan: PrefillPlan, first: FirstTokens, cohorts: Cohorts, decoded):
        """The gauges a scrape reads at the step's end. Decoding: the step's time average (a batch of short answers
        decoded in a fraction of the step is, on the engine, a few requests at a time over all of it). Queued: what
        is left of the queue, and of the step's own arrivals, spread over it, those served in it for their time
        queued. Of those, the ones being prefilled run (vLLM counts them running): each for its prompt's step, or a
        full chunk's worth of prompts all along while a backlog keeps the budget full."""
        dt, rows, take = self.step_s, self.rows, plan.take
        present_from = np.maximum(queue.arrival, now)
        served_until = np.clip(queue.arrival + 0.5 * (first.first + first.last), present_from, now + dt)
        bound = plan.prefilled_tokens >= 0.999 * plan.prefill_rate * dt
        prefilling = (take * plan.prefill_step).sum(axis=1) / dt if len(queue.order) else 0.0
        in_chunk = np.where(bound, plan.chunk / np.maximum(queue.head_prompt, 1.0), prefilling)
        own = queue.arrival >= now
        queued_at_end = (
            (queue.requests - take).sum(axis=1) + (take * (served_until - present_from) * own).sum(axis=1) / dt
            if len(queue.order)
            else np.zeros(rows)
        )
        in_chunk = np.minimum(queued_at_end, in_chunk)
        self.running, self.waiting = decoded.concurrency_s / dt + in_chunk, queued_at_end - in_chunk
        held = (decoded.remaining * (cohorts.prompt + cohorts.age + decoded.advance[:, None])).sum(axis=1)
        self.kv_usage = np.minimum(1.0, held / self.kv_capacity)


@dataclass(frozen=True)
class Batch:
    """The decoding requests as a step begins: live cohort slots, requests and the tokens they hold, per replica."""

    live: np.ndarray
    decoding: np.ndarray
    context: np.ndarray


@dataclass(frozen=True)
class QueueView:
    """Each replica's queue (replicas x slices, oldest first) as the step begins."""

    order: np.ndarray  # queue slots, oldest first
    requests: np.ndarray
    tokens: np.ndarray
    per_request: np.ndarray  # prompt tokens per request of each slice
    cum_requests: np.ndarray
    cum_tokens: np.ndarray
    arrival: np.ndarray  # (1 x slices)
    steps: np.ndarray  # the step each slice arrived in (its output lengths)
    head_prompt: np.ndarray  # mean prompt of the queue, per replica
    attended: np.ndarray  # tokens a queued prompt token attends, on average (squared lengths over the tokens)


@dataclass(frozen=True)
class PrefillPlan:
    """What the step prefills, per replica, and what that costs its steps."""

    chunk: np.ndarray  # prefill tokens an engine step carries beside the decodes
    full_s: np.ndarray  # an engine step with a full chunk, and its GPU-busy seconds
    full_busy: np.ndarray
    decode_s: np.ndarray  # an engine step of the decodes alone
    prefill_rate: np.ndarray  # prompt tokens a second, beside the decodes
    prefilled_tokens: np.ndarray
    take: np.ndarray  # requests taken from each slice (replicas x slices), and their tokens
    take_tokens: np.ndarray
    per_token_s: np.ndarray  # seconds a prefill token adds to a step
    typical_s: np.ndarray  # the step under way when a request comes
    prefill_step: np.ndarray  # a slice's prompt's own step (replicas x slices)


@dataclass(frozen=True)
class FirstTokens:
    """The step's first tokens: TTFT spans of each slice served, the share within the target, flat TTFT points."""

    first: np.ndarray  # TTFT of each slice's first and last request served (replicas x slices)
    last: np.ndarray
    ttft_ok: np.ndarray  # requests within the TTFT target (replicas x slices)
    ttft: np.ndarray
    ttft_weights: np.ndarray
    count: np.ndarray  # first tokens per replica, and their prompt tokens
    prompt_tokens: np.ndarray


@dataclass(frozen=True)
class Cohorts:
    """The live cohorts (replicas x cohorts) as the decode starts; `fresh` marks the one formed in this step."""

    live: np.ndarray
    fresh: np.ndarray
    count: np.ndarray
    age: np.ndarray  # decode steps taken
    decode_s: np.ndarray  # seconds those took
    prompt: np.ndarray
    ttft_ok: np.ndarray


@dataclass
class Decoded:
    """The decode's progress through the step, per replica, and what it served."""

    advance: np.ndarray  # tokens each running request advanced
    wall: np.ndarray  # wall time of those tokens
    before: np.ndarray  # survival of each cohort at the advance so far
    completions: np.ndarray
    met: np.ndarray
    tokens: np.ndarray
    concurrency_s: np.ndarray  # request-seconds decoding
    busy_s: np.ndarray  # GPU-busy and unstretched time of its steps (x batch)
    steps_s: np.ndarray
    itl_values: list
    itl_weights: list
    itl_sum: float = 0.0
    itl_count: float = 0.0
    remaining: np.ndarray | None = None

    @classmethod
    def start(cls, rows: int) -> Decoded:
        arrays = (np.zeros(rows) for _ in range(9))
        return cls(*arrays, itl_values=[], itl_weights=[])
