"""Label maps: ``{"0": "person", "1": "bicycle", ...}`` beside every OD file."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from odvgkit.errors import OdvgError
from odvgkit.io.atomic import AtomicGroup, atomic_path, sweep


def read_label_map(path: str | Path) -> dict[str, str]:
    """Read and shape-check a label map: a JSON object of string keys to string names."""
    p = Path(path)
    sweep(p.parent)  # finish a commit a killed odvgkit left here before reading its outputs
    try:
        data = _decode(p)
    except FileNotFoundError:
        raise OdvgError(f"{p}: no such label map") from None
    except json.JSONDecodeError as exc:
        raise OdvgError(f"{p}:{exc.lineno}: malformed JSON label map: {exc.msg} (column {exc.colno})") from None
    if not isinstance(data, dict):
        raise OdvgError(f"{p}: label map must be a JSON object {{\"0\": name, ...}}")
    for key, name in data.items():
        if not isinstance(name, str):
            raise OdvgError(f"{p}: label {key!r}: name must be a string, got {type(name).__name__}")
    return data


def write_label_map(
    path: str | Path, label_map: Mapping[str | int, str], group: AtomicGroup | None = None,
    force: bool | None = None,
) -> None:
    """Write a label map atomically (UTF-8, string keys in label order).

    With ``group`` the file appears together with the group's other outputs.
    """
    payload = json.dumps({str(k): v for k, v in label_map.items()}, ensure_ascii=False) + "\n"
    if group is not None:
        group.path(path).write_text(payload, encoding="utf-8")
        group.precheck(path)  # a conflicting label map stops the run before the records are converted
        return
    with atomic_path(path, force=force) as tmp:
        tmp.write_text(payload, encoding="utf-8")


def _decode(path: Path) -> Any:
    """The label map's JSON value: UTF-8 with or without a BOM (``odvgkit.io.text``), and a key
    given twice refused — ``json.loads`` would keep the last one and silently drop a class."""
    from odvgkit.io.text import decode_utf8

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise OdvgError(f"{path}: label {key!r} appears twice (names {out[key]!r} and {value!r})")
            out[key] = value
        return out

    return json.loads(decode_utf8(path.read_bytes(), path), object_pairs_hook=unique)
