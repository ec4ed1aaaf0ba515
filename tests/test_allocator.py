"""The malloc tuning of the CLI and its workers: freed batch-sized buffers stay in the process for reuse (checked on
the resident set size), only on glibc, and never over the user's own malloc settings."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from robustbench_local.allocator import glibc

PROBE = """
import os, torch
from robustbench_local.allocator import keep_freed_buffers
applied = keep_freed_buffers()
page = os.sysconf("SC_PAGE_SIZE")
def resident():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * page
x = torch.ones(200 * 2**20 // 4)  # 200 MiB, above glibc's 32 MiB mmap ceiling
held = resident()
del x
print(applied, (held - resident()) // 2**20)
"""


def probe(**env: str) -> tuple[bool, int]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES"))}
    out = subprocess.run([sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True,
                         check=True).stdout.split()
    return out[0] == "True", int(out[1])


on_glibc = pytest.mark.skipif(not glibc(), reason="glibc's malloc only")


@on_glibc
def test_freed_buffers_stay_for_reuse_on_glibc():
    applied, returned_mib = probe()
    assert applied and returned_mib < 20  # kept in the heap for the next batch


@on_glibc
@pytest.mark.parametrize("setting", [{"MALLOC_MMAP_THRESHOLD_": "33554432"}, {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}])
def test_the_users_malloc_settings_stand(setting):
    applied, returned_mib = probe(**setting)
    assert not applied and returned_mib > 180  # glibc's own behaviour: the 200 MiB buffer is unmapped at once
