"""Continuous-batching scheduler like vLLM V1's: token budget, chunked prefill, preemption by recompute."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from serving.engine.kvcache import KVCache, chain_hashes
from serving.engine.profile import BLOCK_SIZE, SchedulerConfig
from serving.engine.steptime import BatchShape


class Status(str, Enum):
    WAITING = "waiting"
    RUNNING = "running"
    PREEMPTED = "preempted"
    FINISHED = "finished"


@dataclass(eq=False)
class EngineRequest:
    """One request inside the engine: its lengths and progress. `stop_after` models EOS."""

    request_id: str
    prompt_tokens: int
    max_tokens: int
    stop_after: int | None = None  # output length at which the model emits EOS (None: ignore_eos)
    prefix_block_ids: tuple[int, ...] = ()
    arrival: float = 0.0  # in the driver's clock; the engine only carries it
    payload: object = None  # the driver's own data (stream handle, record)

    status: Status = Status.WAITING
    num_computed_tokens: int = 0
    output_tokens: int = 0
    num_preemptions: int = 0
    finish_reason: str | None = None
    prefix_hit_tokens: int = 0
    registered_blocks: int = 0  # full prefix blocks already findable in the KV cache
    block_hashes: tuple[int, ...] = field(default=(), repr=False)
    last_output: int = field(default=0, repr=False)  # the output count at which it ends: its length cap or EOS

    def __post_init__(self):
        full_prefix = min(len(self.prefix_block_ids), self.prompt_tokens // BLOCK_SIZE)
        self.block_hashes = chain_hashes(self.prefix_block_ids[:full_prefix])
        # max_model_len cannot come first: the scheduler refuses prompt + max_tokens beyond it
        self.last_output = self.max_tokens if self.stop_after is None else min(self.max_tokens, self.stop_after)

    @property
    def num_tokens(self) -> int:
        return self.prompt_tokens + self.output_tokens


@dataclass
class ScheduledBatch:
    items: list[tuple[EngineRequest, int]]  # (request, new tokens this step)
    shape: BatchShape
    admitted: list[EngineRequest]  # scheduled for the first time (or again, after preemption)
    preempted: list[EngineRequest]


def prefill_budget(decode_tokens, config: SchedulerConfig):
    """Prefill tokens a step can carry beside its decodes: they share max_num_batched_tokens (scalars or arrays)."""
    return _at_least_zero(config.max_num_batched_tokens - decode_tokens)


def sequence_room(running, config: SchedulerConfig):
    """Sequences a step may still admit beside those running: max_num_seqs caps the batch (scalars or arrays)."""
    return _at_least_zero(config.max_num_seqs - running)


def _at_least_zero(value):
    return np.maximum(value, 0) if isinstance(value, np.ndarray) else max(value, 0)


class Scheduler:
    """Holds waiting and running requests and picks each step's batch within the token and seq budgets."""

    def __init__(self, config: SchedulerConfig, num_gpu_blocks: int, max_model_len: int):
        self.config = config
        self.max_model_len = max_model_len
        self.kv = KVCache(num_gpu_blocks, config.enable_prefix_caching)
        self.waiting: deque[EngineRequest] = deque()
        self.running: list[EngineRequest] = []
        self.num_preemptions = 0
        self.prefix_queries_tokens = 0
        self.prefix_hits_tokens = 0

    def add(self, request: EngineRequest) -> None:
        if request.prompt_tokens < 1:
            raise ValueError(f"request {request.request_id}: prompt must have at least one token")
        if request.prompt_tokens + request.max_tokens > self.max_model_len:
            raise ValueError(
                f"request {request.request_id}: prompt ({request.prompt_tokens}) + max_tokens ({request.max_tokens}) "
                f"exceeds max_model_len {self.max_model_len}"
            )
        request.status = Status.WAITING
        self.waiting.append(request)

    def abort(self, request: EngineRequest) -> None:
        if request.status == Status.RUNNING:
            self.running.remove(request)
        elif request.status in (Status.WAITING, Status.PREEMPTED):
            self.waiting.remove(request)
        self.kv.free(request.request_id)
        request.status = Status.FINISHED
        request.finish_reason = request.finish_reason or "abort"

    @property
    def has_work(self) -> bool:
        return bool(self.running or self.waiting)

    def schedule(self) -> ScheduledBatch:
        """The running requests first (a decode token each, or their prefill's next chunk), preempting the newest
        when the KV cache is short; then waiting ones, in order, within the token budget and sequence room."""
        items, preempted, budget = self._schedule_running(prefill_budget(0, self.config))
        admitted: list[EngineRequest] = []
        if not preempted:
            admitted = self._admit_waiting(items, budget)
        shape = BatchShape.of((new, request.num_computed_tokens) for request, new in items)
        return ScheduledBatch(items, shape, admitted, preempted)

    def _schedule_running(self, budget: int) -> tuple[list[tuple[EngineRequest, int]], list[EngineRequest], int]:
        running, holdings = self.running, self.kv.holdings
        items: list[tuple[EngineRequest, int]] = []
        preempted: list[EngineRequest] = []
        i = 0
        while i < len(running) and budget > 0:
            request = running[i]
            total = request.prompt_tokens + request.output_tokens
            new = min(total - request.num_computed_tokens, budget)
            held = holdings.get(request.request_id)
            # most decode steps fit the last block; only a new block can need a preemption
            if held is None or len(held) * BLOCK_SIZE < request.num_computed_tokens + new:
                if not self._grow_or_preempt(request, request.num_computed_tokens + new, preempted):
                    break
            items.append((request, new))
            budget -= new
            i += 1
        return items, preempted, budget

    def _grow_or_preempt(self, request: EngineRequest, tokens: int, preempted: list[EngineRequest]) -> bool:
        """Grows the request's blocks to `tokens`, preempting the newest running requests until they fit; False if
        the request itself was preempted."""
        while not self.kv.allocate(request.request_id, tokens):
            victim = self.running.pop()  # lowest priority under FCFS: the newest
            self._preempt(victim)
            preempted.append(victim)
            if victim is request:
                return False
        return True

    def _admit_waiting(self, items: list[tuple[EngineRequest, int]], budget: int) -> list[EngineRequest]:
        admitted: list[EngineRequest] = []
        while self.waiting and budget > 0 and sequence_room(len(self.running), self.config) > 0:
            request = self.waiting[0]
            claim = self.kv.cached_prefix(request.block_hashes)
            hit_tokens = len(claim) * BLOCK_SIZE
            if hit_tokens >= request.num_tokens:  # always recompute the last token
                claim = claim[: (request.num_tokens - 1) // BLOCK_SIZE]
                hit_tokens = len(claim) * BLOCK_SIZE
            new = request.num_tokens - hit_tokens
            if new > budget and not self.config.enable_chunked_prefill:
                break
            new = min(new, budget)
            if not self.kv.allocate(request.request_id, hit_tokens + new, claim):
                break
            self.waiting.popleft()
            if self.config.enable_prefix_caching:
                self.prefix_queries_tokens += request.num_tokens
                self.prefix_hits_tokens += hit_tokens
            request.prefix_hit_tokens = hit_tokens
            request.num_computed_tokens = hit_tokens
            request.registered_blocks = len(claim)
            request.status = Status.RUNNING
            self.running.append(request)
            admitted.append(request)
            items.append((request, new))
            budget -= new
        return admitted

    def _preempt(self, request: EngineRequest) -> None:
        self.kv.free(request.request_id)
        request.status = Status.PREEMPTED
        request.num_computed_tokens = 0
        request.registered_blocks = 0
        request.num_preemptions += 1
        self.num_preemptions += 1
        self.waiting.appendleft(request)

    def complete(self, batch: ScheduledBatch) -> tuple[list[EngineRequest], list[EngineRequest]]:
        """Apply a finished step: advance progress, sample tokens, finish requests. Returns (emitted, finished)."""
        emitted, finished = [], []
        kv, caching = self.kv, self.kv.enable_prefix_caching
        for request, new in batch.items:
            if request.status is not Status.RUNNING:  # aborted while the step ran
                continue
            computed = request.num_computed_tokens + new
            request.num_computed_tokens = computed
            if caching and request.registered_blocks < len(request.block_hashes):
                request.registered_blocks = kv.register_full_blocks(
                    request.request_id, request.block_hashes, computed, request.registered_blocks
                )
            if computed < request.prompt_tokens + request.output_tokens:
                continue  # a partial prefill chunk samples nothing
            request.output_tokens += 1
            emitted.append(request)
            if request.output_tokens >= request.last_output and self.finish_if_done(request):
                finished.append(request)
        return emitted, finished

    def finish_if_done(self, request: EngineRequest) -> bool:
        """Finish a running request that hit its length cap or EOS: out of the batch, blocks freed."""
        reason = self._finish_reason(request)
        if reason is None:
            return False
        request.finish_reason = reason
        request.status = Status.FINISHED
        self.running.remove(request)
        self.kv.free(request.request_id)
        return True

    def _finish_reason(self, request: EngineRequest) -> str | None:
        """Length cap first, then EOS, in vLLM's order."""
        if request.output_tokens >= request.max_tokens or request.num_tokens >= self.max_model_len:
            return "length"
        if request.stop_after is not None and request.output_tokens >= request.stop_after:
            return "stop"
        return None
