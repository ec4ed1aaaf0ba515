"""The one place the compute device is chosen, and what CPU results depend on."""
from __future__ import annotations

import os
import platform
from pathlib import Path

import torch


def pick_device(requested: str | None = None) -> torch.device:
    """`requested` ('cpu', 'cuda', 'cuda:1') or $RBL_DEVICE wins; otherwise CUDA when present, else CPU."""
    name = requested or os.environ.get("RBL_DEVICE")
    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def processor() -> str:
    """The CPU as 'VENDOR family F model M (NAME)' from /proc/cpuinfo (Linux x86), else platform.processor()."""
    info: dict[str, str] = {}
    cpuinfo = Path("/proc/cpuinfo")
    text = cpuinfo.read_text() if cpuinfo.is_file() else ""  # absent off Linux: platform's answer below
    for line in text.splitlines():
        if not line.strip():
            break  # the first processor's block
        key, _, value = line.partition(":")
        info[key.strip()] = value.strip()
    if "vendor_id" in info:
        return f"{info['vendor_id']} family {info.get('cpu family')} model {info.get('model')} ({info.get('model name')})"
    return platform.processor() or platform.machine()


def cpu_setup() -> dict[str, str | int]:
    """What CPU float results depend on, bit for bit, besides the inputs: torch's version (with its MKL and oneDNN),
    the intra-op thread count, the capability ATen chose its kernels for (`ATEN_CPU_CAPABILITY` can lower it) and
    the processor (MKL and oneDNN choose theirs by vendor and model)."""
    return {"torch": torch.__version__, "threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "cpu": processor()}
