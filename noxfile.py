"""Developer sessions: ``nox -s tests lint schemas bench demo``.

CI runs the same test command as the README's quick start (see .ci/run); nox is for working on
odvgkit itself, each session in a fresh virtual environment.
"""

from __future__ import annotations

import os
import shutil

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True


def _ensure_chromium(session: nox.Session) -> None:
    """The FiftyOne App end-to-end test screenshots the App with Debian's headless chromium."""
    if shutil.which("chromium"):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        session.warn("chromium is missing: install it (apt-get install chromium) or the App e2e test fails")
        return
    session.run("apt-get", "update", "-qq", external=True)
    session.run("apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium", external=True)


@nox.session(python="3.11")
def tests(session: nox.Session) -> None:
    """The whole suite with every extra installed — the README's test command and CI's."""
    _ensure_chromium(session)
    session.install("-e", ".[dev]")
    session.run("python", "-m", "pytest", *session.posargs, env={"OMP_NUM_THREADS": "1"})


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.5")
    session.run("ruff", "check", "odvgkit", "odvgkit_train", "tests", "benchmarks", "noxfile.py")


@nox.session(python="3.11")
def schemas(session: nox.Session) -> None:
    """Regenerate schemas/*.schema.json from the record model (tests fail when they drift)."""
    session.install("-e", ".")
    session.run("odvgkit", "schema", "--write", "schemas", "--force")  # regenerating means replacing


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """Throughput and peak memory against reference implementations (see docs/benchmarks.md)."""
    session.install("-e", ".[dev]")
    session.run("python", "benchmarks/bench_coco2odvg.py", *session.posargs)


@nox.session(python="3.11")
def demo(session: nox.Session) -> None:
    """The README's first command: install and run the bundled sample end to end."""
    session.install(".")
    session.run("odvgkit", "demo", "-o", str(session.create_tmp()))
