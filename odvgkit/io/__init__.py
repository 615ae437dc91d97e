"""Streaming record I/O, chosen by file extension.

=========================== =====================================
extension                   format
=========================== =====================================
``.jsonl``, ``.json``       ODVG JSON Lines (MMDetection's naming)
``.jsonl.gz``, ``.json.gz`` the same, gzip-compressed
``.parquet``                ODVG Parquet (nested columns)
=========================== =====================================

Readers yield ``(line_or_row, record)`` one at a time; writers go through a temporary file that
replaces the target only when everything was written (see :mod:`odvgkit.io.atomic`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

from odvgkit.errors import OdvgError, ProblemLog
from odvgkit.io.atomic import (
    AtomicGroup,
    atomic_path,
    atomic_write,
    check_distinct,
    ensure_parent,
    set_force,
    sweep,
)
from odvgkit.io.jsonl import JsonlWriter, iter_jsonl, open_binary
from odvgkit.io.labelmap import read_label_map, write_label_map

__all__ = [
    "AtomicGroup",
    "RecordWriter",
    "atomic_path",
    "atomic_write",
    "check_distinct",
    "ensure_parent",
    "format_of",
    "iter_records",
    "open_binary",
    "open_writer",
    "read_label_map",
    "read_records",
    "record_writer",
    "set_force",
    "sweep",
    "write_label_map",
    "write_records",
]

Record = dict[str, Any]


class RecordWriter(Protocol):
    count: int

    def write(self, record: Record) -> None: ...
    def close(self) -> None: ...


def format_of(path: str | Path) -> str:
    """``"jsonl"``, ``"jsonl.gz"`` or ``"parquet"``; anything else is a clear error."""
    name = Path(path).name.lower()
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith((".jsonl.gz", ".json.gz")):
        return "jsonl.gz"
    if name.endswith((".jsonl", ".json")):
        return "jsonl"
    raise OdvgError(f"{path}: unknown record format (use .jsonl, .json, .jsonl.gz or .parquet)")


def read_records(
    path: str | Path,
    problems: ProblemLog | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> Iterator[tuple[int, Record]]:
    """Stream ``(line_or_row, record)`` from an ODVG file of any supported format.

    With ``problems`` given, unreadable lines are counted there and skipped; without it the first
    one raises :class:`OdvgError`.
    """
    p = Path(path)
    sweep(p.parent)  # finish a commit a killed odvgkit left here before reading its outputs
    if format_of(p) == "parquet":
        from odvgkit.io.parquet import iter_parquet

        yield from iter_parquet(p)
    else:
        yield from iter_jsonl(p, problems, on_bytes)


def iter_records(path: str | Path) -> Iterator[Record]:
    """Just the records, for library users who want no line numbers."""
    for _, rec in read_records(path):
        yield rec


def open_writer(tmp: Path, target: str | Path) -> RecordWriter:
    """A writer for ``target``'s format that writes into ``tmp`` (see :class:`AtomicGroup`)."""
    fmt = format_of(target)
    if fmt == "parquet":
        from odvgkit.io.parquet import ParquetWriter

        return ParquetWriter(tmp)
    return JsonlWriter(tmp, gz=fmt == "jsonl.gz")


@contextlib.contextmanager
def record_writer(group: AtomicGroup, target: str | Path) -> Iterator[RecordWriter]:
    """Open a writer for ``target`` inside ``group`` and close it when the block ends."""
    format_of(target)  # fail before anything is created
    writer = open_writer(group.path(target), target)
    try:
        yield writer
    finally:
        writer.close()


def write_records(
    path: str | Path, records: Iterable[Record], inputs: Iterable[str | Path] = (), force: bool | None = None
) -> int:
    """Write ``records`` atomically to ``path``; refuse to overwrite one of ``inputs``, or a
    different existing file unless ``force`` (default: the command's ``--force``)."""
    check_distinct(path, inputs)
    with AtomicGroup(force=force) as group, record_writer(group, path) as writer:
        for rec in records:
            writer.write(rec)
    return writer.count
