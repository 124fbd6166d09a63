"""dcgm-exporter's metric names, help texts and labels, and its text exposition: shared by every GPU source."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest

DCGM_LABELS = ["gpu", "UUID", "pci_bus_id", "device", "modelName", "Hostname"]
POD_LABELS = ["pod", "namespace", "container"]  # added when a GPU is mapped to the pod using it
ENERGY = "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"  # a counter; every other field is a gauge

HELP = {
    "DCGM_FI_DEV_GPU_UTIL": "GPU utilization (in %).",
    "DCGM_FI_PROF_GR_ENGINE_ACTIVE": "Ratio of time the graphics engine is active.",
    "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE": "Ratio of cycles the tensor (HMMA) pipe is active.",
    "DCGM_FI_PROF_DRAM_ACTIVE": "Ratio of cycles the device memory interface is active sending or receiving data.",
    "DCGM_FI_DEV_FB_USED": "Framebuffer memory used (in MiB).",
    "DCGM_FI_DEV_FB_FREE": "Framebuffer memory free (in MiB).",
    "DCGM_FI_DEV_FB_RESERVED": "Framebuffer memory reserved (in MiB).",
    "DCGM_FI_DEV_POWER_USAGE": "Power draw (in W).",
    "DCGM_FI_DEV_GPU_TEMP": "GPU temperature (in C).",
    "DCGM_FI_DEV_SM_CLOCK": "SM clock frequency (in MHz).",
    "DCGM_FI_DEV_MEM_CLOCK": "Memory clock frequency (in MHz).",
    "DCGM_FI_DEV_XID_ERRORS": "Value of the last XID error encountered.",
    ENERGY: "Total energy consumption since boot (in mJ).",
}
GAUGES = [name for name in HELP if name != ENERGY]


def render_dcgm(registry: CollectorRegistry) -> bytes:
    """Text exposition as dcgm-exporter writes it: the energy counter keeps its name without `_total`."""
    text = generate_latest(registry)
    return text.replace(f"# HELP {ENERGY}_total ".encode(), f"# HELP {ENERGY} ".encode()).replace(
        f"# TYPE {ENERGY}_total counter".encode(), f"# TYPE {ENERGY} counter".encode()
    )


def dcgm_families(label_names: list[str], rows: list[tuple[list[str], dict[str, float]]]):
    """Metric families for GPUs given as (label values, {field: value}); a field a GPU lacks is left out for that
    GPU (dcgm-exporter skips fields the device does not support), and a family nobody has is not written."""
    for name in GAUGES:
        family = GaugeMetricFamily(name, HELP[name], labels=label_names)
        for labels, readings in rows:
            if name in readings:
                family.add_metric(labels, readings[name])
        if family.samples:
            yield family
    energy = Metric(ENERGY, HELP[ENERGY], "counter")
    for labels, readings in rows:
        if ENERGY in readings:
            energy.add_sample(ENERGY, dict(zip(label_names, labels)), readings[ENERGY])
    if energy.samples:
        yield energy
