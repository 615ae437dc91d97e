"""User-facing errors and the problem log every command reports through.

Two kinds of trouble exist in odvgkit and they must never be confused:

* :class:`OdvgError` — the user asked for something impossible (missing input, unwritable output,
  malformed JSON, ``--strict`` hit a bad record). The CLI prints its message as one line and exits
  non-zero; no traceback, no partial output.
* a *problem* — one bad record in an otherwise usable input. It goes into a :class:`ProblemLog`,
  which counts it, keeps the first examples as ``file:line: field: message`` and, under
  ``--strict``, turns the first error into an :class:`OdvgError`.

Nothing is ever dropped without passing through one of the two.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Severity = Literal["error", "warning"]


class OdvgError(Exception):
    """A user mistake or unusable input; the message is one line, ready to print."""

    exit_code: int = 1

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(_original_line(message))
        self.exit_code = exit_code


def _original_line(message: str) -> str:
    """The error's own line when PyTorch re-raises it from a DataLoader worker.

    ``ExceptionWrapper.reraise`` builds ``OdvgError("Caught OdvgError in DataLoader worker process
    0.\nOriginal Traceback ...\nodvgkit.errors.OdvgError: FILE: ...")``: a worker's one-line error
    would reach the user as a traceback.
    """
    if "\nOriginal Traceback" not in message:
        return message
    last = message.rstrip().rsplit("\n", 1)[-1]
    _, sep, own = last.partition("Error: ")
    return own if sep else last


class MissingExtraError(OdvgError):
    """An optional dependency is missing; the message names the extra that provides it."""

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(
            f"{module} is not installed; install the '{extra}' extra: pip install 'odvgkit[{extra}]'",
            exit_code=3,
        )


def require(module: str, extra: str):
    """Import an optional dependency or fail with a hint naming the extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        root = module.split(".")[0]
        if exc.name is not None and exc.name.split(".")[0] != root:
            raise  # the package is there but one of *its* imports broke: show the real cause
        raise MissingExtraError(root, extra) from None


def location(path: str | Path, where: str | int | None) -> str:
    """``file:line`` (int) or ``file: annotations[3]`` (str) — the prefix of every message."""
    name = str(path)
    if where is None:
        return name
    if isinstance(where, int):
        return f"{name}:{where}"
    return f"{name}: {where}"


@dataclass(frozen=True)
class Problem:
    severity: Severity
    code: str  # short stable identifier, e.g. "bbox-outside-image"; counted per code
    path: str
    where: str | int | None  # line number (1-based) or a record locator such as "annotations[12]"
    field: str | None
    message: str

    def format(self) -> str:
        head = location(self.path, self.where)
        return f"{head}: {self.field}: {self.message}" if self.field else f"{head}: {self.message}"


@dataclass
class ProblemLog:
    """Counts problems per (severity, code) and keeps the first ``keep`` examples of each code."""

    strict: bool = False
    keep: int = 5
    counts: Counter[tuple[Severity, str]] = field(default_factory=Counter)
    examples: dict[str, list[Problem]] = field(default_factory=dict)

    def add(self, problem: Problem) -> None:
        if self.strict and problem.severity == "error":
            raise OdvgError(problem.format())
        self.counts[(problem.severity, problem.code)] += 1
        bucket = self.examples.setdefault(problem.code, [])
        if len(bucket) < self.keep:
            bucket.append(problem)

    def error(
        self, code: str, path: str | Path, where: str | int | None, field: str | None, message: str
    ) -> None:
        self.add(Problem("error", code, str(path), where, field, message))

    def warn(
        self, code: str, path: str | Path, where: str | int | None, field: str | None, message: str
    ) -> None:
        self.add(Problem("warning", code, str(path), where, field, message))

    @property
    def n_errors(self) -> int:
        return sum(n for (sev, _), n in self.counts.items() if sev == "error")

    @property
    def n_warnings(self) -> int:
        return sum(n for (sev, _), n in self.counts.items() if sev == "warning")

    def as_dict(self) -> dict[str, object]:
        return {
            "errors": self.n_errors,
            "warnings": self.n_warnings,
            "by_code": [
                {"severity": sev, "code": code, "count": n}
                for (sev, code), n in sorted(self.counts.items())
            ],
            "examples": [p.format() for ps in self.examples.values() for p in ps],
        }
