"""ordered_map: forked workers, results in input order, errors surface; the GC/heap helpers."""

from __future__ import annotations

import gc
import os

import pytest

from odvgkit._memory import gc_paused, trim_heap
from odvgkit.convert._parallel import _TASKS, ordered_map


def test_ordered_map_runs_a_closure_in_forked_workers_in_order():
    table = {k: k * k for k in range(50)}  # captured, never pickled
    results = list(ordered_map(lambda k: (table[k], os.getpid()), range(50), workers=2, ahead=1))
    assert [r for r, _ in results] == [k * k for k in range(50)]
    assert os.getpid() not in {pid for _, pid in results}
    assert not _TASKS  # the registration is gone once the map is done


def test_ordered_map_on_threads_keeps_order_and_runs_in_this_process():
    import threading
    import time

    def slow_first(k: int) -> tuple[int, int, int]:
        time.sleep(0.02 if k == 0 else 0)  # the first result is the last to be ready
        return k, os.getpid(), threading.get_ident()

    results = list(ordered_map(slow_first, range(12), workers=2, threads=True))
    assert [k for k, _, _ in results] == list(range(12))
    assert {pid for _, pid, _ in results} == {os.getpid()}
    assert threading.get_ident() not in {t for _, _, t in results}
    assert not _TASKS


def test_ordered_map_in_process_with_one_worker():
    assert list(ordered_map(lambda k: (k, os.getpid()), [3, 1], workers=1)) == [(3, os.getpid()), (1, os.getpid())]


def test_ordered_map_raises_the_worker_error_and_cleans_up():
    def boom(k: int) -> int:
        if k == 7:
            raise ValueError("bad block 7")
        return k

    with pytest.raises(ValueError, match="bad block 7"):
        list(ordered_map(boom, range(20), workers=2))
    assert not _TASKS


def test_gc_paused_restores_the_collector_even_after_an_error():
    assert gc.isenabled()
    with pytest.raises(RuntimeError), gc_paused():
        assert not gc.isenabled()
        raise RuntimeError
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # it was off before: stays off
    finally:
        gc.enable()


def test_trim_heap_returns_freed_memory():
    def rss() -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    # ~100 MB of malloc'd blocks (too big for pymalloc, too small for mmap); the last one pins
    # the top of the heap, so freeing the rest returns nothing to the OS by itself
    blocks = [bytes(4000) for _ in range(25_000)]
    del blocks[: len(blocks) - 1]
    before = rss()
    trim_heap()
    assert rss() < before - 20_000_000
