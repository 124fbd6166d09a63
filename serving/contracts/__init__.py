"""Contracts every layer shares (the lowest layer: it imports no other Headroom package): vLLM's metric names and
buckets, dcgm-exporter's fields, and the token rule."""
