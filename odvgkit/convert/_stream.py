"""Shared streaming helpers of the converters: reading big COCO-style JSON, writing one back.

Reading goes through :func:`odvgkit.io.jsonstream.stream_members` (the project's streaming parser;
only the declared fields of each element are materialised). Writing a COCO-style document is done
member by member with :class:`JsonDocWriter`, so a converter that rewrites a 25M-annotation file
(``fix-names o365``, ``o365 fix-wh``, ``coco2ovd``) never holds the document in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import msgspec
import orjson

from odvgkit.errors import OdvgError, ProblemLog

try:  # the project's streaming reader
    from odvgkit.io.jsonstream import stream_members as _stream_members
except ImportError:  # pragma: no cover - only before odvgkit.io.jsonstream exists
    _stream_members = None

OnBytes = Callable[[int], None] | None


def stream_members(
    path: str | Path,
    element_types: Mapping[str, Any],
    problems: ProblemLog | None = None,
    on_bytes: OnBytes = None,
    block_size: int | None = None,
) -> Iterator[tuple[str, int, list[Any]]]:
    """``(key, first_index, items)`` batches of the requested top-level members, in file order.

    ``block_size`` trades speed for memory: a batch holds one block's elements as Structs.
    """
    if _stream_members is not None:
        extra = {"block_size": block_size} if block_size else {}
        yield from _stream_members(path, element_types, problems=problems, on_bytes=on_bytes, **extra)
        return
    yield from _fallback_stream(Path(path), element_types, problems, on_bytes)  # pragma: no cover


def _fallback_stream(  # pragma: no cover - stand-in until odvgkit.io.jsonstream lands
    path: Path, element_types: Mapping[str, Any], problems: ProblemLog | None, on_bytes: OnBytes
) -> Iterator[tuple[str, int, list[Any]]]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise OdvgError(f"{path}: no such file") from None
    try:
        doc = msgspec.json.decode(data, type=dict[str, msgspec.Raw])
    except msgspec.DecodeError as exc:
        raise OdvgError(f"{path}: malformed JSON: {exc}") from None
    if on_bytes is not None:
        on_bytes(len(data))
    for key, raw in doc.items():
        typ = element_types.get(key)
        if typ is None:
            continue
        try:
            elems = msgspec.json.decode(raw, type=list[msgspec.Raw])
        except msgspec.ValidationError:
            yield key, -1, [msgspec.json.decode(raw, type=typ)]
            continue
        batch: list[Any] = []
        first = 0
        for i, el in enumerate(elems):
            try:
                batch.append(el if typ is msgspec.Raw else msgspec.json.decode(el, type=typ))
            except msgspec.ValidationError as exc:
                msg = str(exc)
                field = None
                if "at `$." in msg:
                    msg, _, loc = msg.partition(" - at `$.")
                    field = loc.rstrip("`")
                if problems is None:
                    raise OdvgError(f"{path}: {key}[{i}]: {field + ': ' if field else ''}{msg}") from None
                problems.error("bad-element", path, f"{key}[{i}]", field, msg)
            if len(batch) >= 8192:
                yield key, first, batch
                first = i + 1
                batch = []
        if batch:
            yield key, first, batch


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
