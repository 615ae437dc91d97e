"""Per-record output paths that cannot escape their output folder.

A record's ``filename`` is data, not trusted: ``../../annotations/train.json`` or
``/etc/passwd`` joined onto an output folder names a file outside it, and copying an image there
overwrote an input. Every command that writes or copies one file per record builds its target
with :func:`inside` (fatal) or :func:`inside_or_report` (a per-record problem: skipped, named and
counted; ``--strict`` stops), so the rule lives in one place.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath, PureWindowsPath

from odvgkit.errors import OdvgError, ProblemLog, location


class UnsafePath(OdvgError):
    """A per-record name that would put an output outside its folder."""


def _why_unsafe(name: object) -> str | None:
    if not isinstance(name, str) or not name:
        return "empty or not a string"
    if "\x00" in name:
        return "contains a NUL byte"
    if PurePosixPath(name).is_absolute() or PureWindowsPath(name).is_absolute() or PureWindowsPath(name).drive:
        return "is an absolute path"
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if ".." in parts:
        return "contains '..'"
    if not parts:
        return "names no file"
    return None


def _resolve(root: Path, name: object) -> tuple[Path | None, str]:
    why = _why_unsafe(name)
    if why is None:
        target = root / str(name)
        real_root = os.path.realpath(root)
        real_parent = os.path.realpath(target.parent)
        if real_parent != real_root and not real_parent.startswith(real_root.rstrip(os.sep) + os.sep):
            why = "leads out of the folder through a symbolic link"
        else:
            return target, ""
    return None, f"{name!r} {why}; refusing to write outside {root}"


def inside(root: str | Path, name: object, *, source: str | Path, where: str | int | None,
           field: str = "filename") -> Path:
    """``root / name``, refusing a ``name`` that is absolute, climbs with ``..``, or leads out of
    ``root`` through a symlinked folder (the message names the record and the field).

    The final component is not resolved: an existing symlink there is the previous output itself
    (``split --link-images``), which the atomic commit replaces rather than writes through.
    """
    target, message = _resolve(Path(root), name)
    if target is None:
        raise UnsafePath(f"{location(source, where)}: {field}: {message}")
    return target


def inside_or_report(root: str | Path, name: object, problems: ProblemLog, *, source: str | Path,
                     where: str | int | None, field: str = "filename") -> Path | None:
    """:func:`inside`, with a refusal logged as the record's error (``unsafe-path``: skipped and
    counted, or raised under ``--strict``) instead of raised."""
    target, message = _resolve(Path(root), name)
    if target is None:
        problems.error("unsafe-path", source, where, field, message)
    return target
