"""Shared streaming helpers of the converters: reading big COCO-style JSON, writing one back.

Reading goes through :func:`odvgkit.io.jsonstream.stream_members` (only the declared fields of
each element are materialised; ``default_type=msgspec.Raw`` copies every member, known or not).
Writing a COCO-style document is done member by member with :class:`JsonDocWriter`, so a converter
that rewrites a 25M-annotation file (``fix-names o365``, ``o365 fix-wh``, ``coco2ovd``) never holds
the document in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

import msgspec
import orjson

from odvgkit.errors import ProblemLog
from odvgkit.io import atomic_path
from odvgkit.io.jsonstream import _field_message, stream_members

OnBytes = Callable[[int], None] | None


class JsonDocWriter:
    """Write ``{"key": value, "key": [elements...], ...}`` member by member, elements streamed."""

    def __init__(self, fh: IO[bytes]) -> None:
        self._fh = fh
        self._members = 0
        self._in_array = False
        self._items = 0
        self._buf: list[bytes] = []
        self._size = 0
        self.keys: list[str] = []
        fh.write(b"{")

    def _key(self, key: str) -> None:
        if self._in_array:
            self.end_array()
        self._fh.write((b"," if self._members else b"") + orjson.dumps(key) + b":")
        self._members += 1
        self.keys.append(key)

    def value(self, key: str, value: Any) -> None:
        """A whole member (``msgspec.Raw`` values are copied byte for byte)."""
        self._key(key)
        self._fh.write(bytes(value) if isinstance(value, msgspec.Raw) else orjson.dumps(value))

    def begin_array(self, key: str) -> None:
        self._key(key)
        self._fh.write(b"[")
        self._in_array = True
        self._items = 0

    def item(self, value: Any) -> None:
        data = bytes(value) if isinstance(value, msgspec.Raw) else orjson.dumps(value)
        self._buf.append(b"," + data if self._items else data)
        self._items += 1
        self._size += len(data)
        if self._size > 1 << 20:
            self._flush()

    def items(self, values: Iterable[Any]) -> None:
        for v in values:
            self.item(v)

    def _flush(self) -> None:
        if self._buf:
            self._fh.write(b"".join(self._buf))
            self._buf.clear()
            self._size = 0

    def end_array(self) -> None:
        self._flush()
        self._fh.write(b"]")
        self._in_array = False

    def close(self) -> None:
        if self._in_array:
            self.end_array()
        self._fh.write(b"}\n")


def decode_raw(raw: msgspec.Raw, typ: Any) -> Any:
    """Decode one passed-through element into a small typed view (``msgspec.Struct``)."""
    return msgspec.json.decode(raw, type=typ)


def copy_document(
    path: Path, output: Path, rewrite: Callable[[str, int, msgspec.Raw], Any], problems: ProblemLog,
    on_bytes: OnBytes = None, ensure: tuple[str, ...] = (),
) -> None:
    """Copy ``path`` to ``output`` member by member; ``rewrite(key, index, raw)`` returns the element
    to write (the raw bytes, a new value, or ``None`` to drop it). Members named in ``ensure`` that
    the input lacks are written as empty arrays; every other member is copied byte for byte."""
    with atomic_path(output) as tmp, open(tmp, "wb") as fh:
        doc = JsonDocWriter(fh)
        current = None
        for key, first, items in stream_members(path, {}, problems=problems, on_bytes=on_bytes, default_type=msgspec.Raw):
            if first < 0:
                doc.value(key, items[0])
                continue
            if key != current:
                doc.begin_array(key)
                current = key
            for i, raw in enumerate(items, first):
                try:
                    new = rewrite(key, i, raw)
                except msgspec.ValidationError as exc:  # an element rewrite() cannot read: named, left out
                    field, _, message = _field_message(exc).partition(": ")
                    problems.error("bad-element", path, f"{key}[{i}]", field, message)
                    continue
                if new is not None:
                    doc.item(new)
        for key in ensure:
            if key not in doc.keys:
                doc.value(key, [])
        doc.close()
