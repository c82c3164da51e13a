"""Keep a long-running process's memory close to what it uses.

The bridge handles copies of several megabytes: each is copied a few times
while it is rendered, signed and archived. glibc serves blocks above its
mmap threshold with mmap and gives them back on free, but it raises that
threshold (up to 32 MB) every time such a block is freed, after which the
copies come from the heap, where freed space stays with the process. Fixing
the threshold at 4 MiB puts every buffer of a multi-page copy on mmap for
good, while a one-page copy (about 2.5 MB), on the heap, avoids the cost of
mapping and zeroing fresh pages each time. Measured by ``kiosk bench sign``
with two threads per worker: the peak with five-page copies fell from 327 MB
to 249 MB; one-page copies kept their rate (a 1 MiB threshold cost them
about 10%).

Below the threshold, glibc gives the top of the heap back as soon as more
than 128 KB of it is free, so each one-page copy faulted fresh pages in for
its buffers again (about 2,300 page faults, 9 MB, and 7 ms of system time
per copy). The bridge keeps up to 16 MiB of freed heap instead
(``keep_freed_heap``): measured by ``kiosk bench sign`` on 4 December,
in alternating runs with the same setting given through glibc's
``MALLOC_TRIM_THRESHOLD_``, one-page copies went from 30.6 to 38.1 per
second and their p95 from 176 to 146 ms, for 20 MB more per worker
(203 MB).

Fixing the threshold does nothing for the many smaller blocks a kiosk
visit leaves scattered through the heap (decoded frames, OCR line crops,
inference outputs); the agent hands those pages back with ``malloc_trim``
when a visit ends. Measured by ``kiosk bench visit``: the idle agent with
every model loaded fell from 421 MB to 261 MB, together with adjusting the
SFace graph in a child process (see ``models.prepare``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
from typing import Any

logger = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1  # from glibc's malloc.h
M_MMAP_THRESHOLD = -3
LARGE_BLOCK_BYTES = 4 << 20
KEPT_HEAP_BYTES = 16 << 20


def return_large_blocks(threshold: int = LARGE_BLOCK_BYTES) -> bool:
    """Serve blocks of ``threshold`` bytes or more by mmap, always.

    Returns False (and changes nothing) where the C library is not glibc.
    """
    return _mallopt(M_MMAP_THRESHOLD, threshold)


def keep_freed_heap(limit: int = KEPT_HEAP_BYTES) -> bool:
    """Keep up to ``limit`` bytes of freed heap instead of returning it at once.

    For a process that allocates and frees buffers of a few megabytes over
    and over (the bridge signing copies). Returns False (and changes
    nothing) where the C library is not glibc.
    """
    return _mallopt(M_TRIM_THRESHOLD, limit)


def give_back_free_memory() -> bool:
    """Return the free pages inside the heap to the system (``malloc_trim``).

    Worth calling after a burst of work of mixed sizes (a visit's pages and
    inference), when freed blocks are scattered between live ones. It takes
    a few milliseconds. Returns False where the C library is not glibc.
    """
    malloc_trim = _glibc_function("malloc_trim")
    if malloc_trim is None:
        return False
    malloc_trim.argtypes = [ctypes.c_size_t]
    malloc_trim.restype = ctypes.c_int
    malloc_trim(0)
    return True


def _mallopt(parameter: int, value: int) -> bool:
    mallopt = _glibc_function("mallopt")
    if mallopt is None:
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(parameter, value))


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None


def _glibc_function(name: str) -> Any:
    libc = _libc()
    function = getattr(libc, name, None) if libc is not None else None
    if function is None:
        logger.debug("no %s in the C library; memory settings left as they are", name)
    return function
