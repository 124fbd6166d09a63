"""Scaling policies: pure decide(snapshot, state) -> (decision, state); guard-rails as small wrappers."""
