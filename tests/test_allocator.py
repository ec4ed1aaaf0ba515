"""keep_freed_memory: a buffer allocated again at the same size reuses the freed pages (no fresh page faults)."""
from __future__ import annotations

import resource
import sys

import pytest
import torch

from robustbench_local.allocator import keep_freed_memory


def _faults_to_fill(size: int) -> int:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    buffer = torch.empty(size, dtype=torch.uint8)
    buffer.fill_(1)
    del buffer
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_a_freed_buffer_is_reused_without_page_faults():
    assert keep_freed_memory()
    size = 24 << 20  # 6144 pages of 4 KiB, above glibc's default and dynamic mmap thresholds
    _faults_to_fill(size)
    assert _faults_to_fill(size) < 100
