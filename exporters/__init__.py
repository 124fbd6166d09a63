"""Exporters: the gateway (token and queue exporter) and GPU telemetry."""
