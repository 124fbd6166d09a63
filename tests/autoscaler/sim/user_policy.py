"""A policy defined outside Headroom's packages, as a user would write one (loaded by package.module:Name)."""

from autoscaler.policy.base import Decision


class Doubler:
    name = "doubler"
    interval_s = 30.0

    def initial_state(self):
        return 0

    def decide(self, snapshot, state):
        wanted = max(1, 2 * snapshot.ready) if snapshot.waiting > 10 else max(1, snapshot.desired)
        return Decision(min(wanted, 4), ("waiting > 10 doubles" if wanted > snapshot.desired else "hold",)), state + 1
