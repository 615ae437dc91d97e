"""What the one-file-per-image importers (``voc``, ``yolo``) share: chunked work in forked workers.

A Pascal VOC or YOLO dataset is 10⁵ small files, so the cost is per file (open, parse, format),
not per byte. The file list is cut into chunks; each chunk is parsed *and* formatted into JSON
Lines bytes by :func:`~odvgkit.convert._parallel.ordered_map` workers (forked: the file list and
the image-folder listings are inherited, never pickled — a worker is sent only its chunk's bounds),
and only ``(bytes, problems, counters)`` come back, in chunk order — so the output is the same
bytes whatever the number of workers.

Problems found in a worker travel back as plain tuples and are replayed into the main process's
:class:`~odvgkit.errors.ProblemLog` in file order, so ``--strict`` stops at the first bad file and
the examples in the summary are the first ones, exactly as a single-process run would give.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from odvgkit.convert._parallel import WORKERS, ordered_map
from odvgkit.convert.base import Conversion
from odvgkit.errors import ProblemLog

T = TypeVar("T")

CHUNK_FILES = 512
PARALLEL_MIN_FILES = 4096  # fewer files: forking costs more than it saves
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".mpo", ".dng", ".pfm")


@dataclass
class FileConversion(Conversion):
    """A :class:`Conversion` plus what the summary should say about how the input was read."""

    info: dict[str, str] = field(default_factory=dict)


@dataclass
class Chunk:
    """One chunk's result: JSON Lines bytes for ``count`` records, its problems and counters."""

    data: bytes = b""
    count: int = 0
    files: int = 0  # files this chunk read (progress)
    problems: list[tuple[str, str, str, str | int | None, str | None, str]] = field(default_factory=list)
    stats: Counter[str] = field(default_factory=Counter)
    names: list[str] = field(default_factory=list)  # chunk-local class names (placeholder labels)
    seen: list[str] = field(default_factory=list)  # every class name of the records (voc)

    def error(self, code: str, path: str | Path, where: str | int | None, fld: str | None, msg: str) -> None:
        self.problems.append(("error", code, str(path), where, fld, msg))

    def warn(self, code: str, path: str | Path, where: str | int | None, fld: str | None, msg: str) -> None:
        self.problems.append(("warning", code, str(path), where, fld, msg))


def replay(chunk: Chunk, problems: ProblemLog, stats: Counter[str]) -> None:
    """Feed a worker's problems and counters into the main process (raises under ``--strict``)."""
    for severity, code, path, where, fld, msg in chunk.problems:
        if severity == "error":
            problems.error(code, path, where, fld, msg)
        else:
            problems.warn(code, path, where, fld, msg)
    stats.update(chunk.stats)


def chunked(items: Sequence[T], size: int = CHUNK_FILES) -> list[Sequence[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def map_chunks(fn: Callable[[Sequence[T]], Chunk], items: Sequence[T], workers: int | None = None) -> Iterator[Chunk]:
    """``fn`` over chunks of ``items``, in order; forked workers only when there are many files.

    A worker gets the bounds of its chunk, not the chunk: ``items`` was inherited at the fork."""
    n = WORKERS if workers is None else workers
    if workers is None and len(items) < PARALLEL_MIN_FILES:
        n = 1
    if n < 2:
        return map(fn, chunked(items))
    bounds = [(i, min(i + CHUNK_FILES, len(items))) for i in range(0, len(items), CHUNK_FILES)]
    return ordered_map(lambda b: fn(items[b[0] : b[1]]), bounds, workers=n)


def listing(folder: Path | str) -> dict[str, list[str]]:
    """Image files of one folder by stem (one ``scandir``: no ``stat`` per image)."""
    by_stem: dict[str, list[str]] = {}
    try:
        with os.scandir(folder) as it:
            names = [e.name for e in it]
    except (FileNotFoundError, NotADirectoryError):
        return by_stem
    several = []
    for name in names:
        if is_image_name(name):
            stem = name[: name.rfind(".")]
            found = by_stem.get(stem)
            if found is None:
                by_stem[stem] = [name]
            else:
                found.append(name)
                several.append(found)
    for found in several:
        found.sort(key=_ext_rank)
    return by_stem


_EXTS = frozenset(IMAGE_EXTS)


def is_image_name(name: str) -> bool:
    """``os.path.splitext(name)[1].lower() in IMAGE_EXTS``, without splitext's cost."""
    dot = name.rfind(".")
    return dot > 0 and name[dot:].lower() in _EXTS and (name[0] != "." or bool(name[:dot].strip(".")))


def without_ext(path: str) -> str:
    """``os.path.splitext(path)[0]``: a last dot starts an extension unless only dots precede it."""
    if os.altsep:
        return os.path.splitext(path)[0]
    dot = path.rfind(".")
    start = path.rfind(os.sep) + 1
    return path[:dot] if dot > start and path[start:dot].strip(".") else path


def _ext_rank(name: str) -> tuple[int, str]:
    ext = os.path.splitext(name)[1].lower()
    return (IMAGE_EXTS.index(ext) if ext in IMAGE_EXTS else len(IMAGE_EXTS), name)


def read_file(path: str, first: int = 16384) -> bytes:
    """A whole small file: ``open(path, "rb").read()`` at half the cost (no file object), the same errors."""
    fd = os.open(path, os.O_RDONLY)
    try:
        data = os.read(fd, first)
        if len(data) < first:
            return data
        parts = [data]
        while more := os.read(fd, 1 << 20):
            parts.append(more)
        return b"".join(parts)
    finally:
        os.close(fd)


def as_number(value: float) -> Any:
    """Integral floats as ints (``483`` not ``483.0``), so integer inputs give integer boxes."""
    return int(value) if value.is_integer() else value
