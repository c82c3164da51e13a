"""The mmap threshold for copy-sized buffers."""

from __future__ import annotations

import ctypes.util
import subprocess
import sys

import pytest

from kiosk import memory

PROBE = """
import sys
from kiosk.memory import return_large_blocks
if sys.argv[1] == "fixed":
    assert return_large_blocks()
def rss_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
# free a large block once: glibc then raises its threshold to 24 MB
block = bytearray(24 << 20)
del block
base = rss_kb()
# copy-sized buffers between small long-lived objects, as while signing
big, small = [], []
for _ in range(20):
    big.append(bytearray(6 << 20))
    small.append(bytearray(64 << 10))
del big
print(rss_kb() - base)
"""


def test_mallopt_is_applied_on_glibc() -> None:
    assert memory.return_large_blocks() is True


def test_without_a_c_library_nothing_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    memory._libc.cache_clear()
    try:
        assert memory.return_large_blocks() is False
        assert memory.give_back_free_memory() is False
    finally:
        memory._libc.cache_clear()


TRIM_PROBE = """
import sys
from kiosk.memory import give_back_free_memory, return_large_blocks
return_large_blocks()
def rss_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
# a visit's blocks (crops, frames) between small objects that outlive it
blocks, kept = [], []
for _ in range(1500):
    blocks.append(bytearray(100 << 10))
    kept.append(bytearray(2000))  # above pymalloc, so from the heap
base = rss_kb()
del blocks
if sys.argv[1] == "trim":
    assert give_back_free_memory()
print(base - rss_kb())
"""


def run_probe(code: str, mode: str) -> int:
    """Run a memory probe in a fresh interpreter; return the number it printed."""
    done = subprocess.run(
        [sys.executable, "-c", code, mode], capture_output=True, text=True, check=True
    )
    return int(done.stdout.strip())


def test_trimming_gives_back_the_freed_heap_pages() -> None:
    # 150 MB of heap blocks freed: pinned by the small objects until trimmed
    assert run_probe(TRIM_PROBE, "keep") < 20 << 10
    assert run_probe(TRIM_PROBE, "trim") > 120 << 10


def test_freed_copy_sized_buffers_go_back_to_the_system() -> None:
    # 20 buffers of 6 MB, all freed: with the threshold fixed they go back,
    # without it the small objects between them pin them in the heap
    assert run_probe(PROBE, "fixed") < 8 << 10
    assert run_probe(PROBE, "default") > 60 << 10


FAULT_PROBE = """
import resource, sys
from kiosk.memory import keep_freed_heap, return_large_blocks
assert return_large_blocks()
if sys.argv[1] == "keep":
    assert keep_freed_heap()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(3):  # settle the heap first
    bytes(bytearray(3 << 20))
before = faults()
# a one-page copy's buffers: made, copied, freed, forty times
for _ in range(40):
    scan = bytearray(3 << 20)
    pdf = bytes(scan)
    del scan, pdf
print(faults() - before)
"""


def test_the_bridge_keeps_freed_copy_buffers_instead_of_faulting_them_in() -> None:
    # 40 copies of two 3 MB buffers: about 60,000 page faults when each
    # freed buffer goes back to the system, a handful when the heap keeps it
    assert run_probe(FAULT_PROBE, "return") > 20_000
    assert run_probe(FAULT_PROBE, "keep") < 2_000
