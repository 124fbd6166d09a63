import subprocess
import sys

import pytest

from exporters.gpu.nvml_reader import NoNvidiaDriver, _pci_bus_id, start_nvml


def _driver_present() -> bool:
    try:
        start_nvml()
    except NoNvidiaDriver:
        return False
    return True


def test_pci_bus_id_in_dcgm_exporters_form():
    assert _pci_bus_id("0000:18:00.0") == "00000000:18:00.0"
    assert _pci_bus_id("00000000:2a:00.0") == "00000000:2A:00.0"


@pytest.mark.skipif(_driver_present(), reason="this host has an NVIDIA driver")
def test_no_driver_gives_a_clear_message_and_exit():
    with pytest.raises(NoNvidiaDriver, match="no NVIDIA driver found"):
        start_nvml()
    done = subprocess.run(
        [sys.executable, "-m", "headroom", "gpu-exporter", "--port", "9400"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "headroom gpu-exporter: error: no NVIDIA driver found" in done.stderr
