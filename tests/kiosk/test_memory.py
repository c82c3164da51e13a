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


def probe_kb(code: str, mode: str) -> int:
    """Run a memory probe in a fresh interpreter; return the KB it printed."""
    done = subprocess.run(
        [sys.executable, "-c", code, mode], capture_output=True, text=True, check=True
    )
    return int(done.stdout.strip())


def test_trimming_gives_back_the_freed_heap_pages() -> None:
    # 150 MB of heap blocks freed: pinned by the small objects until trimmed
    assert probe_kb(TRIM_PROBE, "keep") < 20 << 10
    assert probe_kb(TRIM_PROBE, "trim") > 120 << 10


def test_freed_copy_sized_buffers_go_back_to_the_system() -> None:
    # 20 buffers of 6 MB, all freed: with the threshold fixed they go back,
    # without it the small objects between them pin them in the heap
    assert probe_kb(PROBE, "fixed") < 8 << 10
    assert probe_kb(PROBE, "default") > 60 << 10
