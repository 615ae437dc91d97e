"""Atomic output: every file odvgkit writes appears whole or not at all, and never replaces a
different file unless asked to.

A temporary file is created *in the target directory* (so the final ``os.replace`` is a rename on
one filesystem, atomic on POSIX) and renamed only when the writer finished without an exception.
Any exception — including ``KeyboardInterrupt`` — removes the temporary file, so a crash or Ctrl-C
never leaves a half-written output and never touches an existing file of the same name.

Four more guarantees, because users lost data to their absence:

* **No silent overwrite.** At commit, an existing target whose bytes differ from the new output is
  refused (one line naming the file and ``--force``), for every target of the group before any
  rename; identical bytes are left untouched (a rerun succeeds quietly). With ``--force`` the new
  file takes the old one's permission bits. The comparison is cheap: sizes first, then a streamed
  compare that stops at the first differing block (no hashing, no second copy in memory).
* **kill -9 leaves nothing behind for long.** Temporaries are named
  ``.<name>.odvgkit-<pid>-<start>-<random>.tmp`` (``start`` = the process's start time, so a
  reused pid is not mistaken for the owner). The next odvgkit run that writes into (or reads from)
  the folder removes those whose owner is dead.
* **A group commits as one unit.** Before renaming two or more files, a small journal listing
  every ``temporary → target`` pair is written (atomically) into each target folder; it is removed
  after the last rename. A process killed between renames leaves the journal; the next run that
  touches the folder finds it with its owner dead and finishes the renames (roll forward: every
  temporary was complete before the journal was written). So records and label map of two
  different runs never end up side by side for an odvgkit reader.
* **Disk full names the file.** ``ENOSPC``/``EDQUOT``/``EFBIG`` while writing becomes one line
  naming the output being written.

Protection is against process death (kill -9, OOM killer, Ctrl-C), not power loss: nothing is
fsynced, which would cost seconds on multi-GB outputs. Tests widen the window between renames with
``ODVGKIT_TEST_COMMIT_PAUSE=SECONDS`` to kill a run inside it.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import json
import os
import re
import secrets
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from odvgkit.errors import OdvgError

_FORCE: contextvars.ContextVar[bool] = contextvars.ContextVar("odvgkit_force", default=False)
_TMP_RE = re.compile(r"^\..*\.odvgkit-(\d+)-(\d+)-[0-9a-f]+\.tmp$")
_JOURNAL_RE = re.compile(r"^\.odvgkit-commit-(\d+)-(\d+)-[0-9a-f]+\.journal$")
_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_BLOCK = 1 << 20
_swept: set[tuple[int, str]] = set()  # (pid, folder): swept once per process and folder


def set_force(value: bool) -> None:
    """Let every later commit in this context replace outputs whose content differs (``--force``)."""
    _FORCE.set(bool(value))


def force_enabled() -> bool:
    return _FORCE.get()


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


# --- owners: which process a temporary or journal belongs to -------------------------------------


def _start_of(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (Linux), 0 where unknown, None if no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except FileNotFoundError:
        return None
    except OSError:
        return 0
    try:
        return int(stat.rsplit(b")", 1)[1].split()[19])
    except (IndexError, ValueError):
        return 0


def _owner() -> str:
    """``pid-start`` of this process (computed per call: a forked child is another owner)."""
    pid = os.getpid()
    start = _start_of(pid) if os.path.isdir("/proc") else 0
    return f"{pid}-{start or 0}"


def _alive(pid: int, start: int) -> bool:
    """Whether the process that named a file ``pid-start`` still runs (conservative: unsure → alive)."""
    if os.path.isdir("/proc"):
        now = _start_of(pid)
        if now is None:
            return False
        if now == 0 or start == 0:
            return True
        return now == start  # a different start time: the pid was reused, the owner is dead
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def temp_name(target_name: str) -> str:
    """The recognisable temporary name for ``target_name`` (kept under the 255-byte name limit)."""
    stem = target_name
    while len(os.fsencode(stem)) > 160:
        stem = stem[: len(stem) // 2]
    return f".{stem}.odvgkit-{_owner()}-{secrets.token_hex(4)}.tmp"


# --- recovery: finish interrupted group commits, remove dead processes' temporaries -------------


def _roll_forward(journal: Path) -> None:
    """Finish the renames a dead process journaled, then remove its journal copies."""
    try:
        doc = json.loads(journal.read_text(encoding="utf-8"))
        pairs = [(journal.parent / t, journal.parent / g) for t, g in doc["pairs"]]
        copies = [journal.parent / j for j in doc["journals"]]
    except FileNotFoundError:
        return  # another process finished it
    except (ValueError, KeyError, TypeError):
        raise OdvgError(f"{journal}: unreadable odvgkit commit journal; remove it by hand") from None
    for tmp, tgt in pairs:
        with contextlib.suppress(FileNotFoundError):
            os.replace(tmp, tgt)
    for copy in copies:
        with contextlib.suppress(FileNotFoundError):
            copy.unlink()


def sweep(folder: str | Path) -> None:
    """Recover ``folder`` once per process: roll interrupted group commits forward, delete the
    temporaries of dead odvgkit processes. Live processes' files are never touched.

    Writers call it for every output folder, readers for the folder they read from. Temporaries
    that cannot be deleted are left; an interrupted commit that cannot be finished is an error
    (its files would be read half-updated).
    """
    d = Path(folder)
    key = (os.getpid(), os.path.abspath(d))
    if key in _swept:
        return
    _swept.add(key)
    try:
        names = [e.name for e in os.scandir(d) if e.name.startswith(".") and ".odvgkit-" in e.name]
    except OSError:
        return
    journals = [n for n in names if _JOURNAL_RE.match(n)]
    temps = [n for n in names if _TMP_RE.match(n)]
    for name in sorted(journals):
        m = _JOURNAL_RE.match(name)
        assert m is not None
        if _alive(int(m[1]), int(m[2])):
            continue
        try:
            _roll_forward(d / name)
        except OSError as exc:
            raise OdvgError(
                f"{d / name}: an odvgkit run was killed while committing its outputs here and the commit "
                f"cannot be finished ({exc.strerror}); rerun with write access to this folder"
            ) from None
    for name in temps:
        m = _TMP_RE.match(name)
        assert m is not None
        if _alive(int(m[1]), int(m[2])):
            continue
        with contextlib.suppress(OSError):  # not ours to delete (another user's): leave it
            (d / name).unlink()


# --- writing --------------------------------------------------------------------------------------


def same_content(a: Path, b: Path) -> bool:
    """Byte equality, cheap when they differ: sizes first, then blocks until the first difference."""
    try:
        if a.stat().st_size != b.stat().st_size:
            return False
        with open(a, "rb") as fa, open(b, "rb") as fb:
            while True:
                x = fa.read(_BLOCK)
                if x != fb.read(_BLOCK):
                    return False
                if not x:
                    return True
    except (FileNotFoundError, IsADirectoryError):
        return False


@contextlib.contextmanager
def atomic_path(path: str | Path, force: bool | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success."""
    with AtomicGroup(force=force) as group:
        yield group.path(path)


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "wb", force: bool | None = None) -> Iterator[IO]:
    """Open a temporary file for writing; it replaces ``path`` only if the block succeeds."""
    with atomic_path(path, force=force) as tmp:
        encoding = None if "b" in mode else "utf-8"
        with open(tmp, mode, encoding=encoding) as fh:
            yield fh


class AtomicGroup(contextlib.ExitStack):
    """Several outputs that appear together (records + label map + manifest) or not at all.

    Each file is written to its own temporary path; all renames happen at the end, after every
    writer finished, journaled when there are several (see the module docstring). A failure in any
    writer discards all temporaries. ``force=None`` follows ``--force`` (:func:`set_force`);
    ``force=True`` is for files odvgkit itself owns and updates (state, manifests of a resumable
    job), never for a user's outputs.
    """

    def __init__(self, force: bool | None = None) -> None:
        super().__init__()
        self._pending: list[tuple[Path, Path]] = []
        self._force = force

    def path(self, target: str | Path) -> Path:
        tgt = Path(target)
        if tgt.is_dir():
            raise OdvgError(f"{tgt}: output path is a directory; give a file name")
        parent = ensure_parent(tgt)
        sweep(parent)
        tmp = parent / temp_name(tgt.name)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise OdvgError(f"{tgt}: cannot write output: {exc.strerror}") from None
        os.close(fd)
        self._pending.append((tmp, tgt))
        return tmp

    def precheck(self, target: str | Path) -> None:
        """Refuse now, not hours later at the commit, when a *finished* small output (a label map)
        would replace a different existing file without --force."""
        tgt = Path(target)
        force = _FORCE.get() if self._force is None else self._force
        for tmp, pending in self._pending:
            if pending == tgt and not force and os.path.lexists(tgt) and not same_content(tmp, tgt):
                raise OdvgError(f"{tgt}: exists with different content; not replaced (pass --force to replace it)")

    def _target_of(self, exc: OSError) -> str:
        """The output an ``OSError`` while writing belongs to, as well as it can be told."""
        for tmp, tgt in self._pending:
            if exc.filename is not None and os.fspath(exc.filename) == os.fspath(tmp):
                return str(tgt)
        if exc.filename is not None:
            return os.fsdecode(exc.filename)
        return ", ".join(str(t) for _, t in self._pending) or "output"

    def __exit__(self, exc_type, exc, tb) -> bool:  # type: ignore[no-untyped-def]
        try:
            try:
                # close writers registered with enter_context *before* their files are renamed
                suppressed = bool(super().__exit__(exc_type, exc, tb))
            except OSError as err:
                if err.errno in _FULL:
                    raise OdvgError(f"{self._target_of(err)}: cannot write: {os.strerror(err.errno)}") from None
                raise
            if exc_type is not None and issubclass(exc_type, OSError) and exc.errno in _FULL and not suppressed:
                raise OdvgError(f"{self._target_of(exc)}: cannot write: {os.strerror(exc.errno)}") from None
            if exc_type is None or suppressed:
                self._commit()
        except OSError as err:
            if err.errno in _FULL:
                raise OdvgError(f"{self._target_of(err)}: cannot write: {os.strerror(err.errno)}") from None
            raise OdvgError(f"cannot write output: {err}") from None
        finally:
            for tmp, _ in self._pending:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
        return suppressed

    def _commit(self) -> None:
        force = _FORCE.get() if self._force is None else self._force
        moves: list[tuple[Path, Path]] = []
        conflicts: list[Path] = []
        umask = os.umask(0)
        os.umask(umask)
        for tmp, tgt in self._pending:
            try:
                old_mode = os.stat(tgt).st_mode & 0o7777 if os.path.isfile(tgt) else None
            except OSError:
                old_mode = None
            if os.path.lexists(tgt):
                if same_content(tmp, tgt):
                    continue  # identical: keep the existing file (and its mode and time) untouched
                if not force:
                    conflicts.append(tgt)
                    continue
            os.chmod(tmp, old_mode if old_mode is not None else 0o666 & ~umask)
            moves.append((tmp, tgt))
        if conflicts:
            more = f" (and {len(conflicts) - 1} more)" if len(conflicts) > 1 else ""
            raise OdvgError(
                f"{conflicts[0]}: exists with different content{more}; not replaced (pass --force to replace it)"
            )
        journals = self._write_journals(moves) if len(moves) > 1 else []
        pause = float(os.environ.get("ODVGKIT_TEST_COMMIT_PAUSE", "0") or 0)  # test hook: widen the window
        done = 0
        try:
            for tmp, tgt in moves:
                if done and pause:
                    time.sleep(pause)
                os.replace(tmp, tgt)
                done += 1
        except BaseException:
            if done and journals:  # Ctrl-C between renames: the journal promised all of them
                try:
                    for tmp, tgt in moves[done:]:
                        os.replace(tmp, tgt)
                except OSError:
                    raise  # the journal stays: the next run finishes the commit
                for j in journals:
                    with contextlib.suppress(FileNotFoundError):
                        j.unlink()
            raise
        for j in journals:
            with contextlib.suppress(FileNotFoundError):
                j.unlink()

    def _write_journals(self, moves: list[tuple[Path, Path]]) -> list[Path]:
        """One journal per target folder, each listing every pair (paths relative to itself)."""
        folders = list(dict.fromkeys(os.path.abspath(t.parent) for _, t in moves))
        name = f".odvgkit-commit-{_owner()}-{secrets.token_hex(4)}.journal"
        journals = [Path(f) / name for f in folders]
        for j in journals:
            here = j.parent
            doc = {
                "pairs": [[_rel(t, here), _rel(g, here)] for t, g in moves],
                "journals": [_rel(x, here) for x in journals],
            }
            tmp = j.parent / temp_name(j.name)
            try:
                try:
                    tmp.write_text(json.dumps(doc), encoding="utf-8")
                except OSError as exc:
                    raise OSError(exc.errno, exc.strerror, str(j)) from None
                os.replace(tmp, j)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
                for done in journals:
                    with contextlib.suppress(FileNotFoundError):
                        done.unlink()
                raise
        return journals


def _rel(path: Path, folder: Path) -> str:
    """``path`` relative to ``folder``: a journal stays valid when the whole tree is moved."""
    return os.path.relpath(os.path.abspath(path), folder)
