"""Workloads shared by the simulator and Locust replay: trace loaders, ServeGen synthesis, scaling."""
