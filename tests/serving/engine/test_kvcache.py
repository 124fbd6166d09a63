"""KV block pool: allocation, reference counts, prefix hits, eviction order."""

from serving.engine.kvcache import KVCache, blocks_for, chain_hashes


def test_blocks_for_rounds_up():
    assert [blocks_for(n) for n in (1, 16, 17, 32, 33)] == [1, 1, 2, 2, 3]


def test_allocate_until_full_then_refuse():
    kv = KVCache(4)
    assert kv.allocate("a", 48)  # 3 blocks
    assert not kv.allocate("b", 32)  # needs 2, 1 free
    assert kv.allocate("b", 16)
    assert kv.usage == 1.0
    kv.free("a")
    assert kv.free_blocks == 3
    kv.check()


def test_cached_blocks_are_shared_and_survive_until_evicted():
    kv = KVCache(6)
    hashes = chain_hashes([1, 2])
    kv.allocate("a", 40)
    kv.register_full_blocks("a", hashes, 40)
    hit = kv.cached_prefix(hashes)
    assert len(hit) == 2
    assert kv.allocate("b", 40, claim=hit)  # shares 2 blocks, one new
    assert kv.used_blocks == 4
    kv.free("a")
    kv.free("b")
    assert kv.cached_prefix(hashes) == hit  # still cached while free
    assert kv.allocate("c", 16 * 4)  # takes the uncached free blocks first
    assert kv.cached_prefix(hashes) == hit
    assert kv.allocate("d", 32)  # now must evict cached blocks
    assert kv.cached_prefix(hashes) == []
    kv.check()


def test_chain_hashes_depend_on_predecessors():
    assert chain_hashes([1, 2])[1] != chain_hashes([3, 2])[1]
    assert chain_hashes([1, 2])[0] == chain_hashes([1, 9])[0]


def test_prefix_caching_disabled_never_hits():
    kv = KVCache(4, enable_prefix_caching=False)
    kv.allocate("a", 32)
    kv.register_full_blocks("a", chain_hashes([1, 2]), 32)
    assert kv.cached_prefix(chain_hashes([1, 2])) == []


def test_registering_walks_only_blocks_not_yet_registered():
    kv = KVCache(8)
    hashes = chain_hashes([1, 2, 3, 4])
    kv.allocate("a", 64)
    assert kv.register_full_blocks("a", hashes, 20) == 1  # one full block so far
    assert len(kv.cached_prefix(hashes)) == 1
    assert kv.register_full_blocks("a", hashes, 50, registered=1) == 3
    assert len(kv.cached_prefix(hashes)) == 3
    assert kv.register_full_blocks("a", hashes, 50, registered=3) == 3  # nothing new: the count holds
    kv.check()
