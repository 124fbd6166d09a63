"""Baseline scaling policies, each faithful to its published algorithm, behind the same Policy interface."""
