"""What a node has: host facts and its GPUs with live figures (plain Python; no Django).

GPUs are read through NVML (nvidia-ml-py) where the driver is present, else through
torch.cuda; a machine with neither is a CPU node with no GPUs. `fake_gpus` (a test-only
setting) reports that many pretend GPUs so the scheduler can be tested on CPU machines.
"""

import os
import platform
import socket
from dataclasses import dataclass

import torch

GIB = 1024**3


@dataclass(frozen=True)
class GpuInfo:
    index: int
    model_name: str
    memory_total_bytes: int
    memory_used_bytes: int
    utilization: float | None
    temperature_c: float | None


def host_facts() -> dict:
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        memory = 0
    return {
        "hostname": socket.gethostname(),
        "cpu_count": os.cpu_count() or 0,
        "memory_bytes": memory,
        "torch_version": torch.__version__,
        "cuda_version": torch.version.cuda or "",
        "platform": platform.platform(),
    }


def _nvml_gpus() -> list[GpuInfo] | None:
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:
        return None
    try:
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            rates = pynvml.nvmlDeviceGetUtilizationRates(handle)
            try:
                temperature = float(pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU))
            except pynvml.NVMLError:
                temperature = None
            name = pynvml.nvmlDeviceGetName(handle)
            gpus.append(
                GpuInfo(
                    index,
                    name.decode() if isinstance(name, bytes) else name,
                    int(memory.total),
                    int(memory.used),
                    rates.gpu / 100.0,
                    temperature,
                )
            )
        return gpus
    finally:
        pynvml.nvmlShutdown()


def _torch_gpus() -> list[GpuInfo]:
    gpus = []
    for index in range(torch.cuda.device_count()):
        free, total = torch.cuda.mem_get_info(index)
        gpus.append(GpuInfo(index, torch.cuda.get_device_name(index), int(total), int(total - free), None, None))
    return gpus


def read_gpus(*, fake_gpus: int = 0) -> list[GpuInfo]:
    if fake_gpus:
        return [GpuInfo(i, "fake GPU (test setting)", 16 * GIB, 0, 0.0, None) for i in range(fake_gpus)]
    nvml = _nvml_gpus()
    if nvml is not None:
        return nvml
    return _torch_gpus() if torch.cuda.is_available() else []
