import threading
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporters.gpu.collector import GpuRow
from exporters.gpu.server import GpuExporterConfig, serve
from serving.fleet.fleet import free_port


class CountingSource:
    """A GPU source whose utilization counts its reads: shows that scrapes see fresh samples."""

    def __init__(self):
        self.reads = 0

    def read_all(self):
        self.reads += 1
        return [
            GpuRow(
                0, "GPU-aaaa", "00000000:18:00.0", "nvidia0", "NVIDIA H200", {"DCGM_FI_DEV_GPU_UTIL": float(self.reads)}
            )
        ]


@pytest.fixture
def exporter():
    port = free_port()
    ready, stop = threading.Event(), threading.Event()
    config = GpuExporterConfig(host="127.0.0.1", port=port, interval_s=0.1, hostname="node-a")
    thread = threading.Thread(
        target=serve, args=(config, CountingSource()), kwargs={"ready": ready, "stop": stop}, daemon=True
    )
    thread.start()
    assert ready.wait(10)
    yield f"http://127.0.0.1:{port}"
    stop.set()
    thread.join(10)
    assert not thread.is_alive(), "the exporter stops when asked"


def utilization(base: str) -> float:
    text = urllib.request.urlopen(base + "/metrics", timeout=5).read().decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    (sample,) = families["DCGM_FI_DEV_GPU_UTIL"].samples
    assert sample.labels["Hostname"] == "node-a" and sample.labels["UUID"] == "GPU-aaaa"
    return sample.value


def test_serves_fresh_samples_over_http(exporter):
    first = utilization(exporter)
    deadline = threading.Event()
    deadline.wait(0.5)
    assert utilization(exporter) > first  # the sampler read again in between
    assert urllib.request.urlopen(exporter + "/health", timeout=5).read() == b"ok\n"
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(exporter + "/nope", timeout=5)
    assert err.value.code == 404


def test_config_names_bad_values():
    with pytest.raises(ValueError, match="port"):
        GpuExporterConfig(port=0)
    with pytest.raises(ValueError, match="interval_s"):
        GpuExporterConfig(interval_s=0)
