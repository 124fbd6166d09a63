"""GPU telemetry with dcgm-exporter's names: the field contract, an NVML reader, its collector and exporter."""
