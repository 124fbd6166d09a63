"""Metrics sources: build the Snapshot a policy decides on (only measure; actuators write)."""
