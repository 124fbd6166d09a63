"""Prefix-block ids of a trace, flat: a trace's coarse blocks are held as arrays, engine blocks made per request."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PrefixBlocks:
    """Request i's trace blocks are `ids[starts[i]:starts[i + 1]]`; each stands for `per_block` engine blocks.

    A one-hour trace of 12,000-token prompts has some 9 M engine blocks: as Python tuples they took gigabytes
    and most of the loading time, so they are derived only for a request about to enter an engine."""

    ids: np.ndarray
    starts: np.ndarray
    per_block: int = 1

    def __post_init__(self):
        if self.per_block < 1:
            raise ValueError(f"per_block must be >= 1, got {self.per_block}")
        if len(self.starts) < 1 or self.starts[0] != 0 or self.starts[-1] != len(self.ids):
            raise ValueError("starts must run from 0 to the number of ids")
        if np.any(np.diff(self.starts) < 0):
            raise ValueError("starts must not decrease")

    @classmethod
    def from_lists(cls, per_request: Sequence[Sequence[int]], per_block: int = 1) -> PrefixBlocks:
        lengths = np.fromiter((len(ids) for ids in per_request), dtype=np.int64, count=len(per_request))
        flat = np.fromiter((h for ids in per_request for h in ids), dtype=np.int64, count=int(lengths.sum()))
        return cls(flat, np.concatenate(([0], np.cumsum(lengths))), per_block)

    def __len__(self) -> int:
        return len(self.starts) - 1

    def __bool__(self) -> bool:
        return len(self.ids) > 0

    def trace_ids(self, i: int) -> np.ndarray:
        return self.ids[self.starts[i] : self.starts[i + 1]]

    def engine_ids(self, i: int) -> tuple[int, ...]:
        """Engine-block ids of request i: each trace block's `per_block` ids derived from it."""
        ids = self.trace_ids(i).tolist()
        if self.per_block == 1:
            return tuple(ids)
        return tuple(hash((h, k)) for h in ids for k in range(self.per_block))

    def take(self, index: np.ndarray) -> PrefixBlocks:
        """The requests at `index`, in that order."""
        index = np.asarray(index, dtype=np.int64)
        lengths = self.starts[index + 1] - self.starts[index]
        starts = np.concatenate(([0], np.cumsum(lengths)))
        if not len(index) or not starts[-1]:
            return PrefixBlocks(np.zeros(0, dtype=np.int64), starts, self.per_block)
        # position of each kept id in the flat array: its request's start plus its place within the request
        within = np.arange(starts[-1]) - np.repeat(starts[:-1], lengths)
        return PrefixBlocks(self.ids[np.repeat(self.starts[index], lengths) + within], starts, self.per_block)
