"""keep_freed_memory: blocks under 32 MiB come from malloc's heap instead of fresh mappings, and stay there when freed
(read back with glibc's own accounting, mallinfo2)."""
from __future__ import annotations

import ctypes
import sys

import pytest
import torch

from robustbench_local.allocator import keep_freed_memory

FIELDS = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")


class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in FIELDS]


LIBC = ctypes.CDLL(None) if sys.platform.startswith("linux") else None


@pytest.mark.skipif(LIBC is None or not hasattr(LIBC, "mallinfo2"), reason="glibc >= 2.33")
def test_freed_blocks_stay_in_the_heap():
    LIBC.mallinfo2.restype = MallInfo2
    assert keep_freed_memory()
    before = LIBC.mallinfo2()
    block = torch.empty(20 << 20, dtype=torch.uint8)
    during = LIBC.mallinfo2()
    assert during.hblkhd == before.hblkhd  # no new mapping: served from the heap
    assert during.arena >= before.arena
    del block
    assert LIBC.mallinfo2().arena == during.arena  # not trimmed when freed: the next batch reuses it
