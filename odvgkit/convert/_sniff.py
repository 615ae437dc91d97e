"""Name the format of an input a JSON converter was given by mistake, instead of "malformed JSON".

The most common first try is ``coco2odvg`` on a Pascal VOC ``.xml`` or a YOLO ``.txt``; the JSON
reader would answer "expected '{'" — true, and useless. A peek at the first bytes says what the
file is and which command reads it.
"""

from __future__ import annotations

import re
from pathlib import Path

from odvgkit.errors import OdvgError

_YOLO_LINE = re.compile(rb"^\d+(\s+[-+0-9.eE]+){4,}\s*$")


def refuse_foreign(path: str | Path, command: str) -> None:
    """Raise a one-line :class:`OdvgError` when ``path`` is clearly VOC XML, other XML or YOLO txt."""
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return  # missing/unreadable: the reader's own message says so
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"<"):
        if re.search(rb"<annotation[\s>]", text):
            raise OdvgError(f"{p}: a Pascal VOC XML annotation, not the JSON {command} reads; "
                            f"use 'odvgkit convert voc2odvg' on its folder (or on the file)")
        raise OdvgError(f"{p}: an XML file, not the JSON {command} reads (odvgkit reads Pascal VOC XML with 'convert voc2odvg')")
    first = text.split(b"\n", 1)[0]
    if _YOLO_LINE.match(first):
        raise OdvgError(f"{p}: looks like a YOLO label file (class cx cy w h), not the JSON {command} reads; "
                        f"use 'odvgkit convert yolo2odvg' on the dataset folder")
