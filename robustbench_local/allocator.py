"""glibc's malloc, tuned once per process for the large, short-lived buffers of batched forward and backward passes."""
from __future__ import annotations

import ctypes
import os

HOLD_BYTES = 1 << 30
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt's parameter numbers (glibc's malloc.h)
_USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


def glibc() -> str:
    """'glibc 2.36' when this process runs on glibc, else '' (another C library, or not Linux)."""
    try:
        version = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (AttributeError, ValueError, OSError):
        return ""
    return version if version.startswith("glibc") else ""


def keep_freed_buffers() -> bool:
    """Let glibc's malloc keep freed buffers below 1 GiB in the heap for reuse; returns whether it applied.

    By default glibc serves each buffer above 32 MiB (a batch's activations: 33.5 MB for 256 images of 32x32 through
    a 32-channel convolution, 103 MB for 32 images of 224 px through ResNet's stem) with a fresh mmap and unmaps it
    at every free, so every pass faults its pages in again: about a quarter of a CPU forward pass
    (`python -m bench allocator`). Applies on glibc only, and not when MALLOC_MMAP_THRESHOLD_,
    MALLOC_TRIM_THRESHOLD_ or GLIBC_TUNABLES is set (the user's settings stand). The process then holds up to
    1 GiB of freed memory for reuse instead of returning it to the system.
    """
    if not glibc() or any(k in os.environ for k in (*_USER_SETTINGS, "GLIBC_TUNABLES")):
        return False
    mallopt = ctypes.CDLL(None).mallopt
    return bool(mallopt(_M_MMAP_THRESHOLD, HOLD_BYTES)) and bool(mallopt(_M_TRIM_THRESHOLD, HOLD_BYTES))
