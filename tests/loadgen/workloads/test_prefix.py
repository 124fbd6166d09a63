"""Flat prefix-block ids: slicing per request, selection, expansion into engine blocks, bad shapes."""

import numpy as np
import pytest

from loadgen.workloads.prefix import PrefixBlocks


def test_from_lists_keeps_each_requests_ids_in_order():
    blocks = PrefixBlocks.from_lists([[5, 6, 7], [], [8]])
    assert len(blocks) == 3 and blocks
    assert blocks.trace_ids(0).tolist() == [5, 6, 7]
    assert blocks.trace_ids(1).tolist() == []
    assert blocks.engine_ids(2) == (8,)


def test_take_selects_and_reorders_requests():
    blocks = PrefixBlocks.from_lists([[1, 2], [3], [4, 5, 6]], per_block=2)
    taken = blocks.take(np.array([2, 0, 2]))
    assert [taken.trace_ids(i).tolist() for i in range(3)] == [[4, 5, 6], [1, 2], [4, 5, 6]]
    assert taken.per_block == 2
    assert not blocks.take(np.array([], dtype=np.int64))


def test_engine_ids_expand_each_trace_block_into_distinct_shared_ids():
    blocks = PrefixBlocks.from_lists([[1, 2], [1, 3]], per_block=4)
    first, second = blocks.engine_ids(0), blocks.engine_ids(1)
    assert len(first) == 8 and len(set(first)) == 8
    assert first[:4] == second[:4]  # the shared trace block gives the same engine blocks
    assert set(first[4:]).isdisjoint(second[4:])


@pytest.mark.parametrize(
    ("ids", "starts", "per_block", "message"),
    [
        ([1, 2], [0, 2], 0, "per_block"),
        ([1, 2], [0, 1], 1, "starts must run"),
        ([1, 2], [1, 2], 1, "starts must run"),
        ([1, 2], [0, 2, 1, 2], 1, "must not decrease"),
    ],
)
def test_bad_shapes_are_refused_by_name(ids, starts, per_block, message):
    with pytest.raises(ValueError, match=message):
        PrefixBlocks(np.array(ids), np.array(starts), per_block)
