"""Where per-shard work runs: in this process, a local process pool, or Apache Spark.

Both GRIT stages are "one pure function per shard" (``process_shard``, ``convert_shard``), so the
engine only decides where that function runs; results always come back **in shard order**, so the
local and the Spark engine write the same bytes.

* ``local``: a ``spawn`` process pool with a bounded window of shards in flight (memory stays at
  about ``2 × workers`` shard results whatever the number of shards); one worker runs in-process.
* ``spark``: one Spark task per shard (``parallelize(shards, len(shards))``); results stream back
  through ``toLocalIterator`` partition by partition, so the driver never holds every shard. An
  already active ``SparkSession`` is reused (and left running); otherwise one is created for
  ``--master`` and stopped at the end. A ``local[…]`` master binds the driver to 127.0.0.1 with the
  UI off, so nothing listens on other interfaces.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any, TypeVar

from odvgkit._workers import die_with_parent
from odvgkit.convert._parallel import usable_cpus
from odvgkit.errors import OdvgError, require

T = TypeVar("T")
R = TypeVar("R")

ENGINES = ("local", "spark")


def default_workers() -> int:
    return usable_cpus()  # one process per usable core


def _init_worker(parent: int) -> None:
    # one process per core already: keep the tokenizer's own thread pool out of the way
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    die_with_parent(parent)  # a killed parent must not leave shard workers running


def run_local(fn: Callable[[T], R], items: Sequence[T], workers: int) -> Iterator[R]:
    """``map(fn, items)`` in order over ``workers`` processes, at most ``2 × workers`` in flight."""
    if workers <= 1 or len(items) <= 1:
        for item in items:
            yield fn(item)
        return
    with ProcessPoolExecutor(
        max_workers=min(workers, len(items)), mp_context=get_context("spawn"), initializer=_init_worker,
        initargs=(os.getpid(),),
    ) as pool:
        window: deque[Future[R]] = deque()
        it = iter(items)
        for item in it:
            window.append(pool.submit(fn, item))
            if len(window) >= 2 * workers:
                break
        while window:
            result = window.popleft().result()
            nxt = next(it, None)
            if nxt is not None:
                window.append(pool.submit(fn, nxt))
            yield result


def spark_conf(master: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Configuration for a session odvgkit starts: loopback-only for local masters."""
    conf = {
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.pyspark.python": sys.executable,
        "spark.pyspark.driver.python": sys.executable,
        "spark.python.worker.reuse": "true",
    }
    if master.startswith("local"):
        conf["spark.driver.host"] = "127.0.0.1"
        conf["spark.driver.bindAddress"] = "127.0.0.1"
    conf.update(extra or {})
    return conf


@contextlib.contextmanager
def spark_session(master: str, conf: dict[str, str] | None = None, app_name: str = "odvgkit") -> Iterator[Any]:
    """The active SparkSession (reused, left running) or a new one (stopped on exit)."""
    require("pyspark", "grit")
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        yield active
        return
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in spark_conf(master, conf).items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # JVM missing, bad master URL …: one line, not a Java stack
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise OdvgError(f"cannot start Spark (master {master}): {first}") from None
    session.sparkContext.setLogLevel("ERROR")
    try:
        yield session
    finally:
        session.stop()


def run_spark(fn: Callable[[T], R], items: Sequence[T], session: Any) -> Iterator[R]:
    """``map(fn, items)`` as one Spark task per item, streamed back to the driver in order."""
    if not items:
        return iter(())
    rdd = session.sparkContext.parallelize(list(items), len(items))
    return _spark_errors(rdd.map(fn).toLocalIterator(prefetchPartitions=True))


def _spark_errors(results: Iterator[R]) -> Iterator[R]:
    """A failed Spark task arrives as a Java/Py4J exception with pages of stack: keep the cause."""
    try:
        yield from results
    except OdvgError:
        raise
    except Exception as exc:
        text = str(exc)
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        cause = next((ln for ln in reversed(lines) if "Error" in ln or "Exception" in ln), lines[-1] if lines else type(exc).__name__)
        raise OdvgError(f"a Spark task failed: {cause[:500]}") from None


def parse_conf(pairs: Sequence[str]) -> dict[str, str]:
    """``--spark-conf key=value`` options as a dict, with a clear error for a malformed one."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise OdvgError(f"--spark-conf {pair!r}: expected KEY=VALUE", exit_code=2)
        out[key.strip()] = value.strip()
    return out


@contextlib.contextmanager
def shard_runner(
    engine: str, workers: int, master: str, conf: dict[str, str] | None = None
) -> Iterator[Callable[[Callable[[T], R], Sequence[T]], Iterator[R]]]:
    """A ``run(fn, items)`` for the chosen engine, with the Spark session open while it is used."""
    if engine == "local":
        yield lambda fn, items: run_local(fn, items, workers)
    elif engine == "spark":
        with spark_session(master, conf) as session:
            yield lambda fn, items: run_spark(fn, items, session)
    else:
        raise OdvgError(f"--engine {engine!r}: choose one of {', '.join(ENGINES)}", exit_code=2)


def uniform_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-shard rows with the same columns (a count missing in one shard is 0 there)."""
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    head = [k for k in keys if not isinstance(rows[0].get(k, 0), int) or k in ("shard",)] if rows else []
    ordered = head + sorted(k for k in keys if k not in head)
    return [{k: row.get(k, 0) for k in ordered} for row in rows]
