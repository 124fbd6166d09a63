"""The gateway's queue: held in arrival order, failed past the timeout, released whole."""

from autoscaler.sim.gateway import Gateway


def test_expire_drops_only_the_entries_held_past_the_timeout():
    gateway = Gateway()
    for since, requests, work in ((0.0, 1.0, 2.0), (5.0, 0.5, 1.0), (9.0, 2.0, 3.0)):
        gateway.hold([since, requests, work])
    expired = gateway.expire(now=10.0, timeout_s=6.0)
    assert [entry[0] for entry in expired] == [0.0]
    assert gateway.held == 2.5 and gateway.held_work == 4.0
    assert gateway.expire(now=10.0, timeout_s=6.0) == []


def test_release_hands_over_everything_and_empties():
    gateway = Gateway()
    gateway.hold([1.0, 1, 0.0, 7])
    gateway.hold([2.0, 1, 0.0, 8])
    released = gateway.release()
    assert [entry[3] for entry in released.entries] == [7, 8]
    assert released.requests == 2
    assert gateway.held == 0 and not gateway.entries
