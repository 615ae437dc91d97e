"""Memory and allocation tricks for the bulk paths: pause the cyclic GC, return freed heap.

**Pausing the collector.**
Decoding a batch of a COCO-style array allocates millions of small tuples and lists in one go.
Every 700 new container objects CPython runs a generation-0 collection, and the older generations
are re-scanned as the heap grows, so the collector can cost more than the decoding itself
(measured: 0.83 s → 0.32 s for the 466k annotations of a GoldG file). What is allocated here holds
no reference cycles, so nothing is lost by collecting it later.

**Returning freed heap.** glibc keeps freed small blocks in its heap, so after a read phase the
process's resident size stays at its peak. A forked worker starts with a copy of every resident
page (and ``ru_maxrss`` counts them), so the converters trim the heap before forking.
"""

from __future__ import annotations

import ctypes
import gc
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache


@contextmanager
def gc_paused() -> Iterator[None]:
    """Disable the cyclic collector for the block; restore its previous state afterwards."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@cache
def _malloc_trim():  # type: ignore[no-untyped-def]
    """glibc's ``malloc_trim`` from the symbols already loaded (no library search), else None."""
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return None


def trim_heap() -> None:
    """Give the heap's free memory back to the OS (glibc ``malloc_trim``; a no-op elsewhere)."""
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
