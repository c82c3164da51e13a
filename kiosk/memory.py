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
about 10%). The kiosk agent, whose camera frames, page images and model
buffers are megabytes each, keeps about 60 MB less after reading pages.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

logger = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # from glibc's malloc.h
LARGE_BLOCK_BYTES = 4 << 20


def return_large_blocks(threshold: int = LARGE_BLOCK_BYTES) -> bool:
    """Serve blocks of ``threshold`` bytes or more by mmap, always.

    Returns False (and changes nothing) where the C library is not glibc.
    """
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        logger.debug("no mallopt in %s; memory settings left as they are", name)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, threshold))
