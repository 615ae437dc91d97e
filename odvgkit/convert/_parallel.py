"""Use both cores: decode (see :class:`~odvgkit.io.jsonstream.Parallel`) and format in workers.

The converters first turn a file into NumPy columns and a plan (which boxes go to which image),
then format records block by block. Python formatting runs in forked worker processes: a fork
inherits the plan copy-on-write, nothing is pickled on the way in, and only the finished JSON
Lines bytes come back, in block order. Formatting in C that releases the GIL runs on threads.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any, TypeVar

from odvgkit._memory import trim_heap
from odvgkit._workers import die_with_parent

A = TypeVar("A")
R = TypeVar("R")


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask, e.g. under ``taskset`` or a CI quota)."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


# Two workers: with more, the main process (cutting the file, writing the output) is the bottleneck.
WORKERS = min(2, usable_cpus())
PARALLEL_MIN_BYTES = 64 << 20  # smaller inputs: forking costs more than it saves

_TASKS: dict[int, Callable[[Any], Any]] = {}
_tokens = itertools.count()


def _run(token: int, arg: Any) -> Any:
    return _TASKS[token](arg)


def ordered_map(
    fn: Callable[[A], R], args: Iterable[A], workers: int = WORKERS, ahead: int = 2, threads: bool = False
) -> Iterator[R]:
    """``map(fn, args)`` computed in forked workers, results yielded in order of ``args``.

    ``fn`` may be a closure: the workers are forked after it is registered, so it is never
    pickled (its arguments and results are). With ``threads=True`` the workers are threads
    instead, for an ``fn`` that spends its time in C with the GIL released (nothing is forked,
    nothing pickled). At most ``ahead * workers`` results are in flight, which bounds memory.
    With ``workers < 2`` this is plain ``map``.
    """
    if workers < 2:
        yield from map(fn, args)
        return
    token = next(_tokens)
    _TASKS[token] = fn
    pool: Executor
    if threads:
        pool = ThreadPoolExecutor(workers)
    else:
        trim_heap()  # the workers start as copies of this process: as small as it can be
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                                   initializer=die_with_parent, initargs=(os.getpid(),))
    pending: deque[Future[R]] = deque()
    try:
        for arg in args:
            pending.append(pool.submit(_run, token, arg))
            if len(pending) >= ahead * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        del _TASKS[token]
