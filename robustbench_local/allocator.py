"""The memory-allocator setting of processes the harness owns (the `rbl` command, its pool workers, `bench`)."""
from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameter numbers
MMAP_THRESHOLD_MAX = 32 << 20  # the largest value glibc accepts on 64-bit
TRIM_THRESHOLD = 1 << 30


def keep_freed_memory() -> bool:
    """Have glibc's malloc serve blocks under 32 MiB from its heap and keep freed heap memory (up to 1 GiB spare),
    so tensors allocated again at the same sizes, batch after batch, reuse pages instead of faulting in fresh
    zeroed ones (PyTorch's CPU tuning guide recommends a caching allocator for the same reason; here it takes a
    sixth off the fast corruption sweep). Returns False, changing nothing, where the C library has no mallopt."""
    if not sys.platform.startswith("linux"):
        return False
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is None:
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
