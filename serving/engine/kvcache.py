"""Paged KV cache of 16-token blocks with reference counts, LRU eviction and prefix caching (vLLM V1 style)."""

from __future__ import annotations

from collections import OrderedDict

from serving.engine.profile import BLOCK_SIZE


def blocks_for(tokens: int) -> int:
    return -(-tokens // BLOCK_SIZE)


def chain_hashes(prefix_block_ids: list[int] | tuple[int, ...]) -> tuple[int, ...]:
    """Hash of each full block of a prompt's prefix, chained so a block hits only after the same predecessors."""
    out, parent = [], 0
    for block_id in prefix_block_ids:
        parent = hash((parent, block_id))
        out.append(parent)
    return tuple(out)


class KVCache:
    """Block pool: blocks held by requests, free blocks (evictable in LRU order) and a hash -> block map."""

    def __init__(self, num_blocks: int, enable_prefix_caching: bool = True):
        if num_blocks <= 0:
            raise ValueError(f"num_blocks must be positive, got {num_blocks}")
        self.num_blocks = num_blocks
        self.enable_prefix_caching = enable_prefix_caching
        self._ref = [0] * num_blocks
        self._free: OrderedDict[int, None] = OrderedDict((b, None) for b in range(num_blocks))
        self._hash_of: dict[int, int] = {}
        self._block_of: dict[int, int] = {}
        self._held: dict[str, list[int]] = {}

    # ---- queries -------------------------------------------------------------------
    @property
    def free_blocks(self) -> int:
        return len(self._free)

    @property
    def used_blocks(self) -> int:
        return self.num_blocks - len(self._free)

    @property
    def usage(self) -> float:
        """Share of blocks held by requests: vllm:kv_cache_usage_perc."""
        return self.used_blocks / self.num_blocks

    @property
    def holdings(self) -> dict[str, list[int]]:
        """Each request's blocks, for the scheduler's per-step loop (read only)."""
        return self._held

    def held(self, request_id: str) -> list[int]:
        return self._held.get(request_id, [])

    def cached_prefix(self, block_hashes: tuple[int, ...]) -> list[int]:
        """Blocks already holding the longest cached run of these hashes (not yet claimed)."""
        if not self.enable_prefix_caching:
            return []
        hits = []
        for h in block_hashes:
            block = self._block_of.get(h)
            if block is None:
                break
            hits.append(block)
        return hits

    # ---- changes -------------------------------------------------------------------
    def allocate(self, request_id: str, total_tokens: int, claim: list[int] | None = None) -> bool:
        """Grow a request's blocks to cover `total_tokens`, first claiming cached `claim` blocks; False if short."""
        held = self._held.setdefault(request_id, [])
        if not claim and len(held) * BLOCK_SIZE >= total_tokens:
            return True  # the common decode step: the last block still has room
        claim = claim or []
        needed = blocks_for(total_tokens) - len(held) - len(claim)
        claimable_free = sum(1 for b in claim if self._ref[b] == 0)
        if needed > len(self._free) - claimable_free:
            if not held:
                del self._held[request_id]
            return False
        for block in claim:
            if self._ref[block] == 0:
                del self._free[block]
            self._ref[block] += 1
            held.append(block)
        for _ in range(max(0, needed)):
            block, _ = self._free.popitem(last=False)
            old = self._hash_of.pop(block, None)
            if old is not None and self._block_of.get(old) == block:
                del self._block_of[old]
            self._ref[block] = 1
            held.append(block)
        return True

    def register_full_blocks(
        self, request_id: str, block_hashes: tuple[int, ...], computed_tokens: int, registered: int = 0
    ) -> int:
        """Make the request's full prefix blocks findable by later requests, from block `registered` on (those
        before were made findable already, as vLLM counts a request's cached blocks). Returns the new count."""
        if not self.enable_prefix_caching or not block_hashes:
            return registered
        held = self._held.get(request_id, [])
        full = min(computed_tokens // BLOCK_SIZE, len(block_hashes), len(held))
        for i in range(registered, full):
            h = block_hashes[i]
            if h not in self._block_of:
                self._block_of[h] = held[i]
                self._hash_of[held[i]] = h
        return max(registered, full)

    def free(self, request_id: str) -> None:
        """Release a request's blocks; tail blocks go first in the eviction order, as in vLLM."""
        for block in reversed(self._held.pop(request_id, [])):
            self._ref[block] -= 1
            if self._ref[block] == 0:
                self._free[block] = None
                if block not in self._hash_of:  # nothing can hit it: reuse it before cached blocks
                    self._free.move_to_end(block, last=False)

    def check(self) -> None:
        """Invariants, for tests: reference counts match holders and the free list."""
        counts = [0] * self.num_blocks
        for blocks in self._held.values():
            for b in blocks:
                counts[b] += 1
        assert counts == self._ref, "reference counts disagree with held blocks"
        assert all((self._ref[b] == 0) == (b in self._free) for b in range(self.num_blocks)), "free list is wrong"
