"""Trace-driven fleet simulator (request-level and fluid) and the baseline policies it judges against."""
