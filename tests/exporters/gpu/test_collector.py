from prometheus_client import CollectorRegistry

from exporters.gpu.collector import GpuCollector, GpuRow
from serving.contracts.dcgm_fields import render_dcgm

READINGS = {
    "DCGM_FI_DEV_GPU_UTIL": 87.0,
    "DCGM_FI_DEV_FB_USED": 21618.0,
    "DCGM_FI_DEV_POWER_USAGE": 691.9,
    "DCGM_FI_PROF_GR_ENGINE_ACTIVE": 0.992,
    "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION": 2.8e6,
}
ROWS = [
    GpuRow(0, "GPU-aaaa", "00000000:18:00.0", "nvidia0", "NVIDIA H200", READINGS),
    GpuRow(1, "GPU-bbbb", "00000000:2A:00.0", "nvidia1", "NVIDIA H200", {"DCGM_FI_DEV_GPU_UTIL": 3.0}),
]


def registry(**kwargs) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(GpuCollector(lambda: ROWS, hostname="node-a", **kwargs))
    return reg


def test_series_carry_dcgm_exporter_labels():
    reg = registry()
    labels = {
        "gpu": "0",
        "UUID": "GPU-aaaa",
        "pci_bus_id": "00000000:18:00.0",
        "device": "nvidia0",
        "modelName": "NVIDIA H200",
        "Hostname": "node-a",
    }
    assert reg.get_sample_value("DCGM_FI_DEV_GPU_UTIL", labels) == 87.0
    assert reg.get_sample_value("DCGM_FI_DEV_POWER_USAGE", labels) == 691.9
    assert reg.get_sample_value("DCGM_FI_PROF_GR_ENGINE_ACTIVE", labels) == 0.992
    assert (
        reg.get_sample_value(
            "DCGM_FI_DEV_GPU_UTIL",
            {**labels, "gpu": "1", "UUID": "GPU-bbbb", "pci_bus_id": "00000000:2A:00.0", "device": "nvidia1"},
        )
        == 3.0
    )


def test_unsupported_fields_are_left_out_per_gpu():
    text = render_dcgm(registry()).decode()
    assert "DCGM_FI_DEV_FB_USED{" in text and 'UUID="GPU-bbbb"' in text
    fb_lines = [line for line in text.splitlines() if line.startswith("DCGM_FI_DEV_FB_USED{")]
    assert len(fb_lines) == 1 and "GPU-aaaa" in fb_lines[0]  # GPU 1 reports no memory: no series, not a zero
    assert "DCGM_FI_DEV_SM_CLOCK" not in text  # nobody has it: no family at all


def test_energy_counter_keeps_dcgm_exporters_name():
    text = render_dcgm(registry()).decode()
    assert "# TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION counter" in text
    assert "_total" not in text.replace("DCGM_FI_DEV_TOTAL_ENERGY", "")


def test_pod_labels_when_mapped():
    reg = registry(pods=lambda: {"GPU-aaaa": ("vllm-0", "llm", "vllm")})
    base = {
        "gpu": "0",
        "UUID": "GPU-aaaa",
        "pci_bus_id": "00000000:18:00.0",
        "device": "nvidia0",
        "modelName": "NVIDIA H200",
        "Hostname": "node-a",
    }
    assert (
        reg.get_sample_value("DCGM_FI_DEV_GPU_UTIL", {**base, "pod": "vllm-0", "namespace": "llm", "container": "vllm"})
        == 87.0
    )
    idle = {
        **base,
        "gpu": "1",
        "UUID": "GPU-bbbb",
        "pci_bus_id": "00000000:2A:00.0",
        "device": "nvidia1",
        "pod": "",
        "namespace": "",
        "container": "",
    }
    assert reg.get_sample_value("DCGM_FI_DEV_GPU_UTIL", idle) == 3.0
