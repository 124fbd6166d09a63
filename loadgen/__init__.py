"""Load generation: Locust users, shapes, workloads, campaigns and sweeps."""
