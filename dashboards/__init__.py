"""Grafana dashboards, rules and alerts as a monitoring mixin."""
