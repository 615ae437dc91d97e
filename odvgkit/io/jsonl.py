"""ODVG JSON Lines: one record per line, read as a stream, written with orjson.

MMDetection names these files ``*.json`` although they are JSON Lines; both ``.json`` and
``.jsonl`` (optionally ``.gz``) are read and written as JSON Lines here. Output is UTF-8 with raw
non-ASCII characters and a newline after every record, the way ``jsonlines`` writes it.
"""

from __future__ import annotations

import codecs
import contextlib
import gzip
import io
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from odvgkit.errors import OdvgError, ProblemLog

_CHUNK = 1 << 20
_GZIP_ERRORS = (zlib.error, EOFError, gzip.BadGzipFile)


class _GzipInput(gzip.GzipFile):
    """A gzip input whose damage is one user error naming the file.

    zlib's own exceptions (``zlib.error``, ``EOFError`` for a truncated stream — which click turns
    into a bare "Aborted." —, ``BadGzipFile`` for a wrong CRC) carry no file name and are not
    :class:`OdvgError`; every reader of ``.gz`` goes through :func:`open_binary`, so converting
    them here covers all of them. Reads are block-sized (or go through a ``BufferedReader``), so
    the ``try`` costs nothing measurable.
    """

    def _damaged(self, exc: BaseException) -> OdvgError:
        what = "truncated (unexpected end of the compressed stream)" if isinstance(exc, EOFError) else str(exc)
        return OdvgError(f"{self.name or self.fileobj}: corrupt gzip data: {what}")

    def read(self, size: int | None = -1) -> bytes:
        try:
            return super().read(size)
        except _GZIP_ERRORS as exc:
            raise self._damaged(exc) from None

    def read1(self, size: int = -1) -> bytes:
        try:
            return super().read1(size)
        except _GZIP_ERRORS as exc:
            raise self._damaged(exc) from None

    def peek(self, n: int) -> bytes:
        try:
            return super().peek(n)
        except _GZIP_ERRORS as exc:
            raise self._damaged(exc) from None

    def readline(self, size: int | None = -1) -> bytes:
        try:
            return super().readline(size)
        except _GZIP_ERRORS as exc:
            raise self._damaged(exc) from None


def open_binary(path: Path) -> IO[bytes]:
    """Open an input for reading (transparently gunzipped), with a one-line error if missing."""
    try:
        raw = open(path, "rb")  # noqa: SIM115 - returned to the caller
    except FileNotFoundError:
        raise OdvgError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise OdvgError(f"{path}: is a directory, expected a file") from None
    except PermissionError:
        raise OdvgError(f"{path}: permission denied") from None
    if path.name.endswith(".gz"):
        return _GzipInput(filename=str(path), fileobj=raw, mode="rb")  # type: ignore[return-value]
    return raw


def iter_jsonl(
    path: Path,
    problems: ProblemLog | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, record)``; bad lines go to ``problems`` (or raise without one).

    Memory is one buffered chunk plus one record, whatever the file size.
    """
    fh = open_binary(path)
    raw = fh.fileobj if isinstance(fh, gzip.GzipFile) else fh  # compressed offset for progress
    last_pos = 0
    lineno = 0
    try:
        reader = io.BufferedReader(fh, _CHUNK) if isinstance(fh, gzip.GzipFile) else fh
        if reader.peek(3)[:3] == codecs.BOM_UTF8:  # accepted like every other text input (io.text)
            reader.read(3)
        for lineno, line in enumerate(reader, 1):
            if on_bytes is not None and lineno % 4096 == 0:
                pos = raw.tell()  # type: ignore[union-attr]
                on_bytes(pos - last_pos)
                last_pos = pos
            if not line.strip():
                _bad(problems, path, lineno, "blank-line", "blank line (ODVGDataset fails on it)")
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                if "UTF-8" in exc.msg:  # orjson says "surrogates not allowed" for any bad byte
                    _bad(problems, path, lineno, "not-utf8", "not UTF-8 text (save the file as UTF-8)")
                    continue
                _bad(problems, path, lineno, "malformed-json", f"malformed JSON: {exc.msg} (column {exc.colno})")
                continue
            if not isinstance(record, dict):
                _bad(problems, path, lineno, "not-an-object", f"expected a JSON object, got {type(record).__name__}")
                continue
            yield lineno, record
        if lineno == 0:  # not one line: a 0-byte file (or just a BOM) is a mistake worth naming
            raise OdvgError(f"{path}: empty file: no ODVG records")
    except (OSError, EOFError) as exc:
        raise OdvgError(f"{path}: cannot read: {exc}") from None
    finally:
        if on_bytes is not None:
            with contextlib.suppress(OSError, ValueError):
                on_bytes(raw.tell() - last_pos)  # type: ignore[union-attr]
        fh.close()


def _bad(problems: ProblemLog | None, path: Path, lineno: int, code: str, message: str) -> None:
    if problems is None:
        raise OdvgError(f"{path}:{lineno}: {message}")
    problems.error(code, path, lineno, None, message)


class JsonlWriter:
    """Buffered JSON Lines writer over an already-opened (temporary) path."""

    def __init__(self, path: Path, gz: bool = False) -> None:
        self._fh: IO[bytes] = gzip.open(path, "wb", compresslevel=6) if gz else open(path, "wb")  # noqa: SIM115 - closed in close()
        self._path = path
        self._buf: list[bytes] = []
        self._size = 0
        self.count = 0

    def write(self, record: dict[str, Any]) -> None:
        line = orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
        self._buf.append(line)
        self._size += len(line)
        self.count += 1
        if self._size >= _CHUNK:
            self.flush()

    def write_raw(self, lines: bytes, count: int) -> None:
        """Append already-serialised records (each ending in a newline)."""
        self.flush()
        self._write(lines)
        self.count += count

    def flush(self) -> None:
        if self._buf:
            data = b"".join(self._buf)
            self._buf.clear()
            self._size = 0
            self._write(data)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            try:
                self._fh.close()
            except OSError as exc:
                raise self._named(exc) from None

    def _write(self, data: bytes) -> None:
        try:
            self._fh.write(data)
        except OSError as exc:
            raise self._named(exc) from None

    def _named(self, exc: OSError) -> OSError:
        """The error with this file's name, so a full disk is reported against the right output."""
        if exc.filename is None and exc.errno is not None:
            return OSError(exc.errno, exc.strerror, str(self._path))
        return exc
