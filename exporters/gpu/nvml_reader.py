"""Reads every NVIDIA GPU of this host through NVML (nvidia-ml-py) into dcgm-exporter's fields and units.

Utilization, memory, power, energy, temperature and clocks come from NVML's device queries; the profiling
ratios (graphics engine, tensor pipe, DRAM) from NVML's GPU Performance Monitoring (GPM, Hopper and later)
between two samples, as DCGM computes them; the last XID from NVML's event set. A field the device or
driver does not support is left out, as dcgm-exporter does.
"""

from __future__ import annotations

import threading
from dataclasses import replace

import pynvml as nvml

from exporters.gpu.collector import GpuRow

MIB = 1 << 20
_GPM_FIELDS = {  # DCGM profiling field -> NVML GPM metric (percent)
    "DCGM_FI_PROF_GR_ENGINE_ACTIVE": nvml.NVML_GPM_METRIC_GRAPHICS_UTIL,
    "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE": nvml.NVML_GPM_METRIC_ANY_TENSOR_UTIL,
    "DCGM_FI_PROF_DRAM_ACTIVE": nvml.NVML_GPM_METRIC_DRAM_BW_UTIL,
}


class NoNvidiaDriver(RuntimeError):
    """NVML could not start: no NVIDIA driver (or no GPU) on this host."""


def start_nvml() -> None:
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as err:
        raise NoNvidiaDriver(
            f"no NVIDIA driver found ({err}): the GPU exporter needs an NVIDIA GPU and its driver "
            "(libnvidia-ml.so); on a machine without one, `headroom up` serves emulated GPU metrics"
        ) from None
    if nvml.nvmlDeviceGetCount() == 0:
        nvml.nvmlShutdown()
        raise NoNvidiaDriver("the NVIDIA driver is loaded but reports no GPU")


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def supported(call, *args):
    """The value, or None where this device or driver does not support the query."""
    try:
        return call(*args)
    except nvml.NVMLError:
        return None


class NvmlGpu:
    """One device: identity, instant readings, and GPM ratios between the previous sample and this one."""

    def __init__(self, index: int):
        self.handle = handle = nvml.nvmlDeviceGetHandleByIndex(index)
        minor = supported(nvml.nvmlDeviceGetMinorNumber, handle)
        self.identity = GpuRow(
            index,
            _text(nvml.nvmlDeviceGetUUID(handle)),
            _pci_bus_id(_text(nvml.nvmlDeviceGetPciInfo(handle).busId)),
            f"nvidia{minor if minor is not None else index}",
            _text(nvml.nvmlDeviceGetName(handle)),
            {},
        )
        support = supported(nvml.nvmlGpmQueryDeviceSupport, handle)
        self.gpm = bool(support and support.isSupportedDevice)
        self._samples = [nvml.nvmlGpmSampleAlloc(), nvml.nvmlGpmSampleAlloc()] if self.gpm else []
        self._have_previous = False
        self.last_xid = 0

    def read(self) -> dict[str, float]:
        h, out = self.handle, {}
        util = supported(nvml.nvmlDeviceGetUtilizationRates, h)
        if util is not None:
            out["DCGM_FI_DEV_GPU_UTIL"] = float(util.gpu)
        memory = supported(nvml.nvmlDeviceGetMemoryInfo, h, nvml.nvmlMemory_v2)
        if memory is not None:
            out["DCGM_FI_DEV_FB_USED"] = float(memory.used // MIB)
            out["DCGM_FI_DEV_FB_FREE"] = float(memory.free // MIB)
            out["DCGM_FI_DEV_FB_RESERVED"] = float(memory.reserved // MIB)
        power = supported(nvml.nvmlDeviceGetPowerUsage, h)
        if power is not None:
            out["DCGM_FI_DEV_POWER_USAGE"] = power / 1000.0
        energy = supported(nvml.nvmlDeviceGetTotalEnergyConsumption, h)
        if energy is not None:
            out["DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"] = float(energy)
        temperature = supported(nvml.nvmlDeviceGetTemperature, h, nvml.NVML_TEMPERATURE_GPU)
        if temperature is not None:
            out["DCGM_FI_DEV_GPU_TEMP"] = float(temperature)
        for field, clock in (
            ("DCGM_FI_DEV_SM_CLOCK", nvml.NVML_CLOCK_SM),
            ("DCGM_FI_DEV_MEM_CLOCK", nvml.NVML_CLOCK_MEM),
        ):
            value = supported(nvml.nvmlDeviceGetClockInfo, h, clock)
            if value is not None:
                out[field] = float(value)
        out["DCGM_FI_DEV_XID_ERRORS"] = float(self.last_xid)
        out.update(self.gpm_ratios())
        return out

    def gpm_ratios(self) -> dict[str, float]:
        """Ratios 0-1 over the time since the previous read (nothing on the first read, or without GPM)."""
        if not self.gpm:
            return {}
        previous, current = self._samples
        if supported(nvml.nvmlGpmSampleGet, self.handle, current) is None:
            return {}
        self._samples = [current, previous]
        if not self._have_previous:
            self._have_previous = True
            return {}
        request = nvml.c_nvmlGpmMetricsGet_t()
        request.version = nvml.NVML_GPM_METRICS_GET_VERSION
        request.numMetrics = len(_GPM_FIELDS)
        request.sample1, request.sample2 = previous, current
        for i, metric in enumerate(_GPM_FIELDS.values()):
            request.metrics[i].metricId = metric
        if supported(nvml.nvmlGpmMetricsGet, request) is None:
            return {}
        return {
            field: min(1.0, max(0.0, request.metrics[i].value / 100.0))
            for i, field in enumerate(_GPM_FIELDS)
            if request.metrics[i].nvmlReturn == nvml.NVML_SUCCESS
        }

    def close(self) -> None:
        for sample in self._samples:
            supported(nvml.nvmlGpmSampleFree, sample)
        self._samples = []


def _pci_bus_id(bus_id: str) -> str:
    """dcgm-exporter writes the 8-digit domain form, 00000000:18:00.0 (NVML may give 0000:18:00.0)."""
    domain, _, rest = bus_id.partition(":")
    return f"{int(domain, 16):08X}:{rest.upper()}" if rest else bus_id.upper()


class XidWatcher:
    """Waits on NVML's critical-XID events in a daemon thread and records the last XID on its GPU."""

    def __init__(self, gpus: list[NvmlGpu]):
        self.gpus = {gpu.identity.uuid: gpu for gpu in gpus}
        self.event_set = supported(nvml.nvmlEventSetCreate)
        self.watching = []
        if self.event_set is not None:
            for gpu in gpus:
                if (
                    supported(
                        nvml.nvmlDeviceRegisterEvents, gpu.handle, nvml.nvmlEventTypeXidCriticalError, self.event_set
                    )
                    is not None
                ):
                    self.watching.append(gpu.identity.index)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="xid-events", daemon=True)
        if self.watching:
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                event = nvml.nvmlEventSetWait(self.event_set, 500)
            except nvml.NVMLError_Timeout:
                continue
            except nvml.NVMLError:
                return
            gpu = self.gpus.get(_text(nvml.nvmlDeviceGetUUID(event.device)))
            if gpu is not None:
                gpu.last_xid = int(event.eventData)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        if self.event_set is not None:
            supported(nvml.nvmlEventSetFree, self.event_set)


class NvmlSource:
    """Every GPU of the host, read in one pass (the collector's GpuSource)."""

    def __init__(self):
        start_nvml()
        self.gpus = [NvmlGpu(i) for i in range(nvml.nvmlDeviceGetCount())]
        self.xids = XidWatcher(self.gpus)

    def read_all(self) -> list[GpuRow]:
        return [replace(gpu.identity, readings=gpu.read()) for gpu in self.gpus]

    def close(self) -> None:
        self.xids.stop()
        for gpu in self.gpus:
            gpu.close()
        supported(nvml.nvmlShutdown)
