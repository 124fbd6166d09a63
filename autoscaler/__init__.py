"""Predictive SLO autoscaler: forecast, capacity, policy, sources, actuators, simulator."""
