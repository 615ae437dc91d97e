"""Atomic output: every file odvgkit writes appears whole or not at all.

A temporary file is created *in the target directory* (so the final ``os.replace`` is a rename on
one filesystem, atomic on POSIX) and renamed only when the writer finished without an exception.
Any exception — including ``KeyboardInterrupt`` — removes the temporary file, so a crash or Ctrl-C
never leaves a half-written output and never touches an existing file of the same name.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from odvgkit.errors import OdvgError


def check_distinct(output: str | Path, inputs: Iterable[str | Path]) -> None:
    """Refuse to write over an input (same path, or the same file through a link)."""
    out = Path(output)
    for inp in inputs:
        src = Path(inp)
        same = out.resolve() == src.resolve()
        if not same and out.exists() and src.exists():
            same = os.path.samefile(out, src)
        if same:
            raise OdvgError(f"{out}: output path is the same file as input {src}; choose another -o")


def ensure_parent(path: str | Path) -> Path:
    """Create the output's directory (upstream crashes when it is missing) or fail clearly."""
    parent = Path(path).parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OdvgError(f"{parent}: cannot create output directory: {exc.strerror}") from None
    if not os.access(parent, os.W_OK):
        raise OdvgError(f"{parent}: output directory is not writable")
    return parent


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success."""
    with AtomicGroup() as group:
        yield group.path(path)


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file for writing; it replaces ``path`` only if the block succeeds."""
    with atomic_path(path) as tmp:
        encoding = None if "b" in mode else "utf-8"
        with open(tmp, mode, encoding=encoding) as fh:
            yield fh


class AtomicGroup(contextlib.ExitStack):
    """Several outputs that appear together (records + label map + manifest) or not at all.

    Each file is written to its own temporary path; all renames happen at the end, after every
    writer finished. A failure in any writer discards all temporaries.
    """

    def __init__(self) -> None:
        super().__init__()
        self._pending: list[tuple[Path, Path]] = []

    def path(self, target: str | Path) -> Path:
        tgt = Path(target)
        if tgt.is_dir():
            raise OdvgError(f"{tgt}: output path is a directory; give a file name")
        parent = ensure_parent(tgt)
        try:
            fd, tmp_name = tempfile.mkstemp(prefix=f".{tgt.name}.", suffix=".tmp", dir=parent)
        except OSError as exc:
            raise OdvgError(f"{tgt}: cannot write output: {exc.strerror}") from None
        os.close(fd)
        tmp = Path(tmp_name)
        self._pending.append((tmp, tgt))
        return tmp

    def __exit__(self, exc_type, exc, tb) -> bool:  # type: ignore[no-untyped-def]
        try:
            # close writers registered with enter_context *before* their files are renamed
            suppressed = bool(super().__exit__(exc_type, exc, tb))
            if exc_type is None or suppressed:
                umask = os.umask(0)
                os.umask(umask)
                for tmp, tgt in self._pending:
                    os.chmod(tmp, 0o666 & ~umask)
                    os.replace(tmp, tgt)
                self._pending.clear()
        except OSError as err:
            raise OdvgError(f"cannot write output: {err}") from None
        finally:
            for tmp, _ in self._pending:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
        return suppressed
