"""Small text inputs (label maps, rename tables, manifests, CSVs): UTF-8, with or without a BOM.

Every reader of a user's text file goes through here so that they all agree: a UTF-8 byte order
mark (Excel and Notepad write one) is accepted and dropped, and bytes that are not UTF-8 (a
Latin-1 export, a binary file given by mistake) are one error naming the file, the line and the
byte — never a ``UnicodeDecodeError`` traceback, never a misleading "malformed JSON".
"""

from __future__ import annotations

import codecs
from pathlib import Path

from odvgkit.errors import OdvgError

BOM = codecs.BOM_UTF8


def not_utf8(path: str | Path, data: bytes, exc: UnicodeDecodeError, offset: int = 0) -> OdvgError:
    """The error for undecodable bytes at ``exc.start`` of ``data`` (which starts at file ``offset``)."""
    at = exc.start
    line = data.count(b"\n", 0, at) + 1
    column = at - (data.rfind(b"\n", 0, at) + 1) + 1
    where = f"{path}:{line}" if offset == 0 else f"{path}: byte {offset + at}"
    return OdvgError(f"{where}: not UTF-8 text: byte 0x{data[at]:02x} at column {column} (save the file as UTF-8)")


def strip_bom(data: bytes) -> bytes:
    """``data`` without a leading UTF-8 BOM (for readers that parse bytes: orjson, msgspec)."""
    return data[len(BOM):] if data.startswith(BOM) else data


def decode_utf8(data: bytes, path: str | Path) -> str:
    """``data`` as text: a leading BOM dropped, anything that is not UTF-8 an :class:`OdvgError`."""
    if data.startswith(BOM):
        data = data[len(BOM):]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise not_utf8(path, data, exc) from None


def read_text(path: str | Path, what: str = "file") -> str:
    """Read a small UTF-8 text file; missing/unreadable files are one-line errors naming ``what``."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise OdvgError(f"{p}: no such {what}") from None
    except IsADirectoryError:
        raise OdvgError(f"{p}: is a directory, expected a {what}") from None
    except PermissionError:
        raise OdvgError(f"{p}: permission denied") from None
    return decode_utf8(data, p)
