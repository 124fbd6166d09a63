"""Actuators: the only writers (Kubernetes scale subresource, the local fleet, dry-run, an exported metric)."""
