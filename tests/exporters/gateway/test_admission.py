"""Admission control without HTTP: slots, the fair queue per model, eviction, timeouts."""

import asyncio

import pytest

from exporters.gateway.admission import Admission, Rejected
from exporters.gateway.backends import BackendPool
from exporters.gateway.config import ModelLimits


def admission(slots: int = 1, max_queue: int = 4, timeout_s: float = 5.0, backends=("a:1",)) -> Admission:
    pool = BackendPool(max_in_flight=slots)
    pool.set_discovered(list(backends))
    return Admission(pool, lambda model: ModelLimits(max_queue=max_queue, queue_timeout_s=timeout_s))


def run(coro):
    return asyncio.run(coro)


def test_free_slot_is_taken_at_once_then_requests_wait():
    async def scenario():
        adm = admission(slots=2)
        first, wait1 = await adm.acquire("m", "t")
        _second, _ = await adm.acquire("m", "t")
        assert wait1 == 0.0 and first.outstanding == 2
        third = asyncio.create_task(adm.acquire("m", "t"))
        await asyncio.sleep(0.01)
        assert not third.done() and adm.depth("m") == 1
        adm.release(first)
        backend, waited = await third
        assert backend is first and waited > 0 and adm.depth("m") == 0

    run(scenario())


def test_waiters_are_served_round_robin_over_tenants():
    async def scenario():
        adm = admission(slots=1, max_queue=10)
        holder, _ = await adm.acquire("m", "a")
        order = []

        async def ask(tenant):
            backend, _ = await adm.acquire("m", tenant)
            order.append(tenant)
            await asyncio.sleep(0)
            adm.release(backend)

        tasks = [asyncio.create_task(ask("a")) for _ in range(4)]  # tenant a floods first
        await asyncio.sleep(0)
        tasks += [asyncio.create_task(ask("b")) for _ in range(2)]
        await asyncio.sleep(0.01)
        adm.release(holder)
        await asyncio.gather(*tasks)
        assert order[:4] == ["a", "b", "a", "b"]  # b does not wait behind all of a's requests

    run(scenario())


def test_full_queue_rejects_with_retry_after_and_evicts_for_a_tenant_below_its_share():
    async def scenario():
        adm = admission(slots=1, max_queue=4)
        await adm.acquire("m", "a")
        flood = [asyncio.create_task(adm.acquire("m", "a")) for _ in range(4)]
        await asyncio.sleep(0.01)
        with pytest.raises(Rejected) as full:
            await adm.acquire("m", "a")  # a already holds the whole queue
        assert full.value.reason == "queue_full" and full.value.retry_after_s >= 1
        b = asyncio.create_task(adm.acquire("m", "b"))  # b holds nothing: a's newest waiter makes room
        await asyncio.sleep(0.01)
        assert flood[-1].done() and isinstance(flood[-1].exception(), Rejected)
        assert flood[-1].exception().reason == "evicted" and not b.done() and adm.depth("m") == 4
        for task in [*flood[:-1], b]:
            task.cancel()
        await asyncio.gather(*flood[:-1], b, return_exceptions=True)

    run(scenario())


def test_queue_timeout_and_no_backend():
    async def scenario():
        adm = admission(slots=1, timeout_s=0.05)
        await adm.acquire("m", "a")
        with pytest.raises(Rejected) as late:
            await adm.acquire("m", "a")
        assert late.value.reason == "queue_timeout" and adm.depth("m") == 0
        with pytest.raises(Rejected) as none:
            await admission(backends=()).acquire("m", "a")
        assert none.value.reason == "no_backend"

    run(scenario())


def test_a_waiter_whose_client_left_takes_no_slot():
    async def scenario():
        adm = admission(slots=1)
        holder, _ = await adm.acquire("m", "a")
        waiter = asyncio.create_task(adm.acquire("m", "a"))
        await asyncio.sleep(0.01)
        waiter.cancel()  # the client went away while waiting
        await asyncio.gather(waiter, return_exceptions=True)
        assert adm.depth("m") == 0
        adm.release(holder)
        assert holder.outstanding == 0  # the slot was not handed to the departed waiter

    run(scenario())
