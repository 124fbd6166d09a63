"""dcgm-exporter for Kubernetes: DaemonSet, Service, ServiceMonitor and the counters Headroom reads."""
