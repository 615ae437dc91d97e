"""Stream the big arrays of a huge COCO-style JSON document in bounded memory.

COCO, Objects365, LVIS and MDETR files are one JSON object whose members are a few arrays with
millions of elements (``images``, ``annotations``). ``json.load`` needs 5–10× the file size in RAM;
an event parser (ijson) is two orders of magnitude slower. Here the file is read in blocks and each
block is handed to msgspec, which decodes a *batch* of array elements at C speed straight into
small typed Structs (fields nobody asked for — segmentation polygons — are skipped, never
materialised).

The only trick is where to cut a block: at a ``}`` that is followed by ``,`` or ``]``. Such a cut
might fall inside a string or a nested array of objects; msgspec then fails at the very end of the
batch (the closing ``]`` we appended lands inside the string, or the brackets do not balance) and
the previous candidate is tried. An error *before* the end of the batch is a real syntax error in
the file and is reported with its line and column.
"""

from __future__ import annotations

import multiprocessing
import os
import re
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import msgspec

from odvgkit._memory import gc_paused
from odvgkit._workers import die_with_parent
from odvgkit.errors import OdvgError, ProblemLog
from odvgkit.io.jsonl import open_binary

_WS = b" \t\r\n"
_BYTE_POS = re.compile(r"\(byte (\d+)\)")
_MAX_CUT_TRIES = 64


class _Buffer:
    """A sliding window over the file: ``data[pos:]`` is what is left to parse."""

    def __init__(self, fh: IO[bytes], path: Path, block: int, on_bytes: Callable[[int], None] | None) -> None:
        self.fh = fh
        self.path = path
        self.block = block
        self.on_bytes = on_bytes
        self.data = b""
        self.pos = 0
        self.base = 0  # file offset of data[0]
        self.eof = False

    def fill(self, want: int | None = None) -> bool:
        """Read at least one more block; False at end of file."""
        if self.eof:
            return False
        chunk = self.fh.read(max(want or 0, self.block))
        if self.on_bytes is not None and chunk:
            self.on_bytes(len(chunk))
        if not chunk:
            self.eof = True
            return False
        if self.pos:
            self.base += self.pos
            self.data = b"".join((memoryview(self.data)[self.pos :], chunk))  # one copy, not two
            self.pos = 0
        else:
            self.data += chunk
        return True

    def seek(self, offset: int) -> None:
        """Re-read from a file offset (the speculative parallel reader backs up after a wrong cut)."""
        self.fh.seek(offset)
        self.data, self.pos, self.base, self.eof = b"", 0, offset, False
        self.fill()

    def skip_ws(self) -> None:
        while True:
            data, n = self.data, len(self.data)
            i = self.pos
            while i < n and data[i] in _WS:
                i += 1
            self.pos = i
            if i < n or not self.fill():
                return

    def peek(self) -> int | None:
        self.skip_ws()
        return self.data[self.pos] if self.pos < len(self.data) else None

    def expect(self, char: bytes, context: str) -> None:
        got = self.peek()
        if got != char[0]:
            found = "end of file" if got is None else repr(chr(got))
            raise self.syntax_error(self.base + self.pos, f"expected {char.decode()!r} {context}, found {found}")
        self.pos += 1

    def syntax_error(self, offset: int, message: str) -> OdvgError:
        line, col = _line_col(self.path, offset)
        return OdvgError(f"{self.path}:{line}:{col}: malformed JSON: {message} (byte {offset})")


def _line_col(path: Path, offset: int) -> tuple[int, int]:
    """1-based line and column of a byte offset (only computed when reporting an error)."""
    line, last_nl, seen = 1, -1, 0
    with open_binary(path) as fh:
        while seen < offset:
            chunk = fh.read(min(1 << 22, offset - seen))
            if not chunk:
                break
            count = chunk.count(b"\n")
            if count:
                line += count
                last_nl = seen + chunk.rfind(b"\n")
            seen += len(chunk)
    return line, offset - last_nl


def _explain(exc: msgspec.DecodeError, data: bytes, at: int) -> str:
    """msgspec's reason, or a clearer one for the usual culprits (NaN from Python's json.dump)."""
    head = data[at : at + 9]
    for token in (b"NaN", b"Infinity", b"-Infinity"):
        if head.startswith(token):
            return f"{token.decode()} is not a valid JSON number"
    reason = _BYTE_POS.sub("", str(exc)).replace("JSON is malformed: ", "").strip()
    if reason == "invalid character" and at < len(data):
        reason = f"invalid character {chr(data[at])!r}"
    return reason


@dataclass(frozen=True)
class Parallel:
    """Decode the batches of some arrays in worker processes (both cores of a 2-core machine).

    The main process still reads the file and finds the batch boundaries (a cheap syntax-only
    decode); a worker re-reads that byte range from the page cache, decodes it into the typed
    elements and applies the member's transform (a picklable, module-level function) so that only
    its compact result (e.g. NumPy columns) travels back. Results come back in file order. For
    the members in ``transforms`` ``stream_members`` yields ``transform(items)`` instead of
    ``items`` — also when it falls back to decoding in-process (gzip input, small files).
    """

    transforms: Mapping[str, Callable[[list[Any]], Any]]
    workers: int = 2
    min_bytes: int = 64 << 20  # below this, forking workers costs more than it saves


def _decode_items(
    payload: bytes, key: str, index: int, etype: Any, keep_invalid: bool, raws: list[msgspec.Raw] | None = None
) -> tuple[list[Any], list[tuple[str, str, str]]]:
    """Decode ``[elements]``; elements of the wrong shape become ``(where, field, message)``."""
    if raws is None:
        try:
            return msgspec.json.decode(payload, type=list[etype]), []
        except msgspec.ValidationError:
            raws = msgspec.json.decode(payload, type=list[msgspec.Raw])
    decoder = msgspec.json.Decoder(etype)
    items: list[Any] = []
    bad: list[tuple[str, str, str]] = []
    for i, raw in enumerate(raws):
        try:
            items.append(decoder.decode(raw))
        except msgspec.ValidationError as exc:
            field, _, text = _field_message(exc).partition(": ")
            bad.append((f"{key}[{index + i}]", field, text))
            if keep_invalid:
                items.append(None)
    return items, bad


_RECHECK = -1  # the element count _decode_range returns for "some element does not fit the type"


def _decode_range(
    path: str, start: int, end: int, etype: Any, transform: Callable[[list[Any]], Any], keep_invalid: bool,
    per_item: bool = False,
) -> tuple[Any, int, list[tuple[int, str, str]]]:
    """Worker side of :class:`Parallel`: read, decode and transform one batch.

    Returns ``(transform(items), number of elements, [(relative index, field, message)])``; a
    ``msgspec.DecodeError`` tells the main process that the speculative cut was wrong. When an
    element does not fit ``etype`` it returns ``(None, _RECHECK, [])``, unless ``per_item``: then
    the elements are decoded one by one and the bad ones named.
    """
    # ``[`` + the range + ``]`` read straight into one buffer (no second 16 MB copy per batch);
    # a short read (the file shrank) leaves NUL bytes: a decode error, redone exactly in-process
    payload = bytearray(end - start + 2)
    payload[0], payload[-1] = 0x5B, 0x5D
    with open(path, "rb", buffering=0) as fh:
        fh.seek(start)
        view, got = memoryview(payload)[1:-1], 0
        while got < len(view) and (n := fh.readinto(view[got:])):
            got += n
        del view
    try:
        with gc_paused():
            items = msgspec.json.decode(payload, type=list[etype])
            return transform(items), len(items), []
    except msgspec.ValidationError:
        if not per_item:
            return None, _RECHECK, []
        raws = msgspec.json.decode(payload, type=list[msgspec.Raw])
    items, bad = _decode_items(payload, "", 0, etype, keep_invalid, raws)
    rel = [(int(where[1:-1]), field, text) for where, field, text in bad]
    return transform(items), len(raws), rel


def _record(bad: list[tuple[str, str, str]], path: Path, problems: ProblemLog | None) -> None:
    for where, field, text in bad:
        if problems is None:
            raise OdvgError(f"{path}: {where}: {field}: {text}")
        problems.error("bad-element", path, where, field, text)


def stream_members(
    path: str | Path,
    element_types: Mapping[str, Any],
    problems: ProblemLog | None = None,
    on_bytes: Callable[[int], None] | None = None,
    block_size: int = 16 << 20,
    keep_invalid: bool = False,
    parallel: Parallel | None = None,
    default_type: Any = None,
) -> Iterator[tuple[str, int, Any]]:
    """Yield ``(key, first_index, items)`` for the requested members of a top-level JSON object.

    ``element_types`` maps a member name to the msgspec type of *one element* of that array.
    Arrays arrive in batches, in file order; a requested member that is not an array is yielded
    once as ``(key, -1, [value])``; unrequested members are skipped without being decoded.
    An element that does not fit its type is reported to ``problems`` as
    ``FILE: key[i]: field: message`` and skipped (without ``problems``, or under ``--strict``, it
    raises); with ``keep_invalid=True`` it stays in ``items`` as ``None`` so that
    ``first_index + k`` is always the element's index in the file. ``default_type`` is the
    element type of every member not named in ``element_types`` (``msgspec.Raw`` copies a whole
    document member by member, unknown members included). Malformed JSON raises
    :class:`OdvgError` with line and column.
    """
    p = Path(path)
    fh = open_binary(p)
    pool = None
    use_pool = (
        parallel is not None
        and parallel.workers > 1
        and not p.name.endswith(".gz")
        and p.stat().st_size >= parallel.min_bytes
    )
    try:
        buf = _Buffer(fh, p, block_size, on_bytes)
        buf.fill()
        if buf.data.startswith(b"\xef\xbb\xbf"):
            buf.pos = 3
        if buf.peek() is None:
            raise OdvgError(f"{p}: empty file, expected a JSON object")
        buf.expect(b"{", "at the start of the document (a COCO-style JSON object)")
        first = True
        while True:
            nxt = buf.peek()
            if nxt == ord("}"):
                buf.pos += 1
                break
            if not first:
                buf.expect(b",", "between members of the top-level object")
            first = False
            key = _read_key(buf)
            buf.expect(b":", f"after key {key!r}")
            etype = element_types.get(key, default_type)
            transform = parallel.transforms.get(key) if parallel is not None else None
            if buf.peek() == ord("["):
                if transform is not None and use_pool:
                    if pool is None:
                        pool = ProcessPoolExecutor(parallel.workers, mp_context=multiprocessing.get_context("fork"),
                                                   initializer=die_with_parent, initargs=(os.getpid(),))
                    batches = _stream_array_parallel(
                        buf, key, etype, transform, keep_invalid, pool, parallel.workers, problems
                    )
                else:
                    batches = _stream_array(buf, key, _decoders(etype), problems, keep_invalid)
                empty = True
                for start, items in batches:
                    empty = False
                    if etype is None:
                        continue
                    if isinstance(items, _Done):
                        _record(items.bad, p, problems)
                        yield key, start, items.result
                    else:
                        yield key, start, transform(items) if transform is not None else items
                if empty and etype is not None:
                    yield key, 0, transform([]) if transform is not None else []
            else:
                raw = _read_value(buf, key)
                if etype is not None:
                    try:
                        value = msgspec.json.decode(raw, type=etype)
                    except msgspec.ValidationError as exc:
                        raise OdvgError(f"{p}: {key}: {_field_message(exc)}") from None
                    yield key, -1, [value]
        if buf.peek() is not None:
            raise buf.syntax_error(buf.base + buf.pos, "unexpected data after the top-level object")
    finally:
        fh.close()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


@dataclass
class _Done:
    result: Any
    bad: list[tuple[str, str, str]]


def _decoders(etype: Any) -> tuple[msgspec.json.Decoder, msgspec.json.Decoder, msgspec.json.Decoder | None]:
    return (
        msgspec.json.Decoder(list[etype] if etype is not None else list[msgspec.Raw]),
        msgspec.json.Decoder(list[msgspec.Raw]),
        msgspec.json.Decoder(etype) if etype is not None else None,
    )


def _stream_array_parallel(
    buf: _Buffer,
    key: str,
    etype: Any,
    transform: Callable[[list[Any]], Any],
    keep_invalid: bool,
    pool: ProcessPoolExecutor,
    workers: int,
    problems: ProblemLog | None,
) -> Iterator[tuple[int, _Done]]:
    """Speculative batches decoded in ``pool``; results in file order.

    The main process only cuts: at the last ``}``/``]`` followed by ``,`` in the window, without
    parsing. A wrong cut (inside a string, or past the end of the array) makes the worker's decode
    fail; then every later batch is dropped, the reader goes back to the failed batch and decodes
    it in-process with the exact procedure of :func:`_decode_batch`, and speculation resumes.

    A batch whose elements do not all fit the type comes back as ``_RECHECK`` without the
    element-by-element decoding that names the bad ones; only a batch that is really needed is
    then decoded that way (again in a worker). So the batches cut past the end of the array —
    elements of the *next* array, decoded as this one's type, and dropped anyway once the batch
    that holds the end fails — cost the workers almost nothing (checking every element of them
    cost 0.14 s at the ``images`` → ``annotations`` boundary of a GoldG file).
    """
    buf.expect(b"[", f"at the start of {key!r}")
    index = 0
    pending: deque[tuple[int, int, Future[Any]]] = deque()

    def resolve(limit: int) -> Iterator[tuple[int, _Done]]:
        nonlocal index
        while len(pending) > limit:
            start, end, fut = pending.popleft()
            try:
                result, count, bad = fut.result()
                if count == _RECHECK:  # this batch is needed: name its bad elements
                    result, count, bad = pool.submit(
                        _decode_range, str(buf.path), start, end, etype, transform, keep_invalid, True
                    ).result()
            except msgspec.DecodeError:
                for _, _, later in pending:
                    later.cancel()
                pending.clear()
                buf.seek(start)
                yield from exact()
                return
            yield index, _Done(result, [(f"{key}[{index + i}]", f, t) for i, f, t in bad])
            index += count

    def exact() -> Iterator[tuple[int, _Done]]:
        nonlocal index
        items, consumed, count = _decode_batch(buf, key, index, _decoders(etype), problems, keep_invalid)
        buf.pos += consumed
        yield index, _Done(transform(items), [])
        index += count

    while True:
        if buf.peek() == ord(",") and index + len(pending) > 0:
            buf.pos += 1  # the comma after the last batch (speculative or exact)
        if buf.peek() in (ord("]"), None):
            yield from resolve(0)  # a fallback in resolve moves the reader back: go round again
            if buf.peek() == ord(","):
                continue
            if buf.peek() == ord("]"):
                buf.pos += 1
                return
            raise buf.syntax_error(buf.base + len(buf.data), f"{key}[{index}]: unexpected end of file (truncated?)")
        if len(buf.data) - buf.pos < buf.block and not buf.eof:
            sparse = _sparse_cut(buf)
            if sparse is not None:
                start, end = sparse
                pending.append((start, end, pool.submit(_decode_range, str(buf.path), start, end, etype, transform,
                                                        keep_invalid)))
                yield from resolve(4 * workers)
                continue
            buf.fill()
        data, lo = buf.data, buf.pos
        closer = b"}" if data[lo] == ord("{") else b"]" if data[lo] == ord("[") else None
        cut = _last_element_end(data, lo, len(data), closer, before=b",") if closer else -1
        if cut == -1:
            here = buf.base + lo
            yield from resolve(0)
            if buf.base + buf.pos == here:  # nothing moved the reader: decode exactly here
                yield from exact()
            continue
        start, end = buf.base + lo, buf.base + cut + 1
        pending.append((start, end, pool.submit(_decode_range, str(buf.path), start, end, etype, transform, keep_invalid)))
        buf.pos = cut + 1
        yield from resolve(4 * workers)  # queued work covers the consumer's pauses (sorting images)


_TAIL = 1 << 20  # bytes the sparse cutter reads at the end of each speculative batch


def _sparse_cut(buf: _Buffer) -> tuple[int, int] | None:
    """The next speculative batch ``(start, end)`` found by reading only its last ``_TAIL`` bytes.

    The workers read every batch themselves, so the main process needs just the cut: the last
    element end (``}``/``]`` followed by ``,``) in the final ``_TAIL`` bytes of the next
    ``block`` — the same rule as a full-window search, so a wrong cut fails and is redone exactly
    as before. The buffer then continues right after the cut, holding the rest of the tail; the
    main process reads ~6 % of a big file instead of all of it (it shares two cores with the
    workers). None near the end of the file or when the tail holds no candidate (an element
    bigger than ``_TAIL``): the caller then reads the whole window as before.
    """
    data, lo = buf.data, buf.pos
    closer = b"}" if data[lo] == ord("{") else b"]" if data[lo] == ord("[") else None
    fileno = getattr(buf.fh, "fileno", None)
    if closer is None or fileno is None or buf.block <= 2 * _TAIL:
        return None
    start = buf.base + lo
    tail_lo = start + buf.block - _TAIL
    size = os.fstat(fileno()).st_size
    if tail_lo + 2 * _TAIL > size:
        return None
    tail = os.pread(fileno(), _TAIL, tail_lo)
    rel = _last_element_end(tail, 0, len(tail), closer, before=b",")
    if rel == -1:
        return None
    frontier = buf.base + len(buf.data)
    buf.fh.seek(tail_lo + len(tail))
    buf.data, buf.pos, buf.base = tail[rel + 1 :], 0, tail_lo + rel + 1
    if buf.on_bytes is not None:
        buf.on_bytes(max(0, tail_lo + len(tail) - frontier))
    return start, tail_lo + rel + 1


def _read_key(buf: _Buffer) -> str:
    if buf.peek() != ord('"'):
        got = buf.peek()
        raise buf.syntax_error(
            buf.base + buf.pos, "expected a member name" + ("" if got is None else f", found {chr(got)!r}")
        )
    end = buf.pos + 1
    while True:
        end = buf.data.find(b'"', end)
        if end == -1:
            if not buf.fill():
                raise buf.syntax_error(buf.base + buf.pos, "unterminated member name (truncated file?)")
            end = buf.pos + 1
            continue
        backslashes = 0
        while buf.data[end - 1 - backslashes] == ord("\\"):
            backslashes += 1
        if backslashes % 2 == 0:
            break
        end += 1
    try:
        key = msgspec.json.decode(buf.data[buf.pos : end + 1], type=str)
    except msgspec.DecodeError as exc:
        if _UTF8 in str(exc):
            raise _utf8_error(buf, buf.pos, buf.data[buf.pos : end + 1]) from None
        raise buf.syntax_error(buf.base + buf.pos, f"malformed member name: {exc}") from None
    buf.pos = end + 1
    return key


def _read_value(buf: _Buffer, key: str) -> bytes:
    """Bytes of one (small) member value: cut at the first ``,``/``}`` that leaves valid JSON."""
    start = buf.pos
    search = start + 1
    while True:
        cut = _next_member_end(buf.data, search)
        if cut == -1:
            if buf.fill():
                start, search = buf.pos, max(buf.pos + 1, search - (start - buf.pos))
                continue
            raise buf.syntax_error(buf.base + len(buf.data), f"{key}: unexpected end of file (truncated?)")
        candidate = buf.data[start:cut]
        try:
            msgspec.json.decode(candidate)
        except msgspec.DecodeError as exc:
            if _UTF8 in str(exc):
                raise _utf8_error(buf, start, candidate) from None
            at = _error_at(exc)
            if at is not None and at < len(candidate.rstrip()) - 1:
                raise buf.syntax_error(buf.base + start + at, _explain(exc, candidate, at)) from None
            search = cut + 1
            continue
        buf.pos = cut
        return candidate


def _next_member_end(data: bytes, start: int) -> int:
    """Next index of ``,`` or ``}`` at or after ``start`` (a candidate end of a member value)."""
    a = data.find(b",", start)
    b = data.find(b"}", start)
    if a == -1:
        return b
    if b == -1:
        return a
    return min(a, b)


def _error_at(exc: msgspec.DecodeError) -> int | None:
    m = _BYTE_POS.search(str(exc))
    return int(m.group(1)) if m else None


def _field_message(exc: msgspec.ValidationError) -> str:
    """msgspec's ``Expected `int`, got `str` - at `$[3].category_id``` → ``category_id: expected int, got str``."""
    text = str(exc)
    message, _, path = text.rpartition(" - at `")
    if not message:
        message, path = text, ""
    field = re.sub(r"^\$(\[\d+\])?\.?", "", path.rstrip("`"))
    missing = re.match(r"Object missing required field `([^`]+)`", message)
    if missing:
        field = f"{field}.{missing.group(1)}" if field else missing.group(1)
        message = "missing required field"
    message = message[0].lower() + message[1:]
    return f"{field or '(element)'}: {message}".replace("`", "")


def _stream_array(
    buf: _Buffer,
    key: str,
    decoders: tuple[msgspec.json.Decoder, msgspec.json.Decoder, msgspec.json.Decoder | None],
    problems: ProblemLog | None,
    keep_invalid: bool,
    ranges: bool = False,
) -> Iterator[tuple[int, Any]]:
    """Yield ``(index of first element, items)`` batch by batch; with ``ranges`` the batch's file
    byte range ``(start, end)`` instead of its items."""
    buf.expect(b"[", f"at the start of {key!r}")
    index = 0
    while True:
        if buf.peek() == ord("]"):
            buf.pos += 1
            return
        if index:
            buf.expect(b",", f"between elements of {key!r}")
            buf.skip_ws()
        if len(buf.data) - buf.pos < buf.block and not buf.eof:
            buf.fill()  # keep a full block ahead of pos (or the rest of the file)
        items, consumed, count = _decode_batch(buf, key, index, decoders, problems, keep_invalid)
        if ranges:
            yield index, (buf.base + buf.pos, buf.base + buf.pos + consumed)
        else:
            yield index, items
        buf.pos += consumed
        index += count


def _decode_batch(
    buf: _Buffer,
    key: str,
    index: int,
    decoders: tuple[msgspec.json.Decoder, msgspec.json.Decoder, msgspec.json.Decoder | None],
    problems: ProblemLog | None,
    keep_invalid: bool,
) -> tuple[list[Any], int, int]:
    """Decode as many whole elements as the window holds: ``(items, bytes consumed, elements)``."""
    decoder, raw_decoder, item_decoder = decoders
    item_decoder_type = item_decoder.type if item_decoder is not None else msgspec.Raw
    data = buf.data
    start = buf.pos
    if start >= len(data):  # the file ends right after a ',' between elements
        raise buf.syntax_error(buf.base + start, f"{key}[{index}]: unexpected end of file (truncated?)")
    opener = data[start]
    closer = b"}" if opener == ord("{") else b"]" if opener == ord("[") else None
    hi = len(data)
    tries = 0
    while True:
        cut = _last_element_end(data, start, hi, closer)
        if cut == -1:
            # no complete element in the window: grow it (one element bigger than a block)
            if not buf.fill(len(buf.data)):
                raise buf.syntax_error(buf.base + len(buf.data), f"{key}[{index}]: unexpected end of file (truncated?)")
            data, start, hi = buf.data, buf.pos, len(buf.data)
            continue
        payload = b"[" + data[start : cut + 1] + b"]"
        try:
            try:
                with gc_paused():
                    items = decoder.decode(payload)
            except msgspec.ValidationError:
                raws = raw_decoder.decode(payload)  # syntax first: the cut may still be wrong
                items, bad = _decode_items(payload, key, index, item_decoder_type, keep_invalid, raws)
                _record(bad, buf.path, problems)
                return items, cut + 1 - start, len(raws)
        except msgspec.DecodeError as exc:
            if _UTF8 in str(exc):  # msgspec gives no position: find the byte (error path only)
                raise _utf8_error(buf, start, data[start : cut + 1]) from None
            at = _error_at(exc)
            if "trailing characters" in str(exc) and at is not None:
                # our '[' was closed early: the array ends inside the window. msgspec reports one
                # past the first trailing byte, so the array's ']' is payload[at - 2].
                hi = start + at - 3
                continue
            if at is not None and at < len(payload) - 2 and not _is_truncation(exc):
                raise buf.syntax_error(buf.base + start + at - 1, _explain(exc, payload, at)) from None
            hi, tries = cut, tries + 1
            if tries > _MAX_CUT_TRIES:
                # pathological: many '}' followed by ',' inside strings; fall back to a bigger window
                if not buf.fill(len(buf.data)):
                    raise buf.syntax_error(
                        buf.base + start, f"{key}[{index}]: cannot find the end of this element"
                    ) from None
                data, start, hi, tries = buf.data, buf.pos, len(buf.data), 0
            continue
        return items, cut + 1 - start, len(items)


_UTF8 = "Invalid UTF-8"


def _utf8_error(buf: _Buffer, start: int, chunk: bytes) -> OdvgError:
    """Invalid UTF-8 inside ``chunk`` (which starts at ``buf.data[start]``), named by line and column.

    A wrong cut can never split a UTF-8 sequence (cuts fall on ASCII ``}``), so the invalid byte
    is in the file, not an artefact of batching: it is reported, not retried as "truncated".
    """
    try:
        bytes(chunk).decode("utf-8")
    except UnicodeDecodeError as exc:
        return buf.syntax_error(buf.base + start + exc.start, f"invalid UTF-8 byte 0x{chunk[exc.start]:02x} (the file is not UTF-8 text)")
    return buf.syntax_error(buf.base + start, "invalid UTF-8")


def _is_truncation(exc: msgspec.DecodeError) -> bool:
    return "truncated" in str(exc)


def _last_element_end(data: bytes, lo: int, hi: int, closer: bytes | None, before: bytes = b",]") -> int:
    """Last index in [lo, hi) of an element's closing char followed by ``,`` or ``]`` (``before``)."""
    if closer is None:  # scalar elements: cut before the last ',' or ']' (data[hi] may be the array's ']')
        pos = max(data.rfind(b",", lo, hi + 1), data.rfind(b"]", lo, hi + 1))
        return pos - 1 if pos > lo else -1
    while True:
        pos = data.rfind(closer, lo, hi)
        if pos == -1:
            return -1
        j = pos + 1
        n = len(data)
        while j < n and data[j] in _WS:
            j += 1
        if j < n and data[j] in before:
            return pos
        hi = pos
