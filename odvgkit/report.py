"""How commands talk to people and to scripts.

* On a TTY, long work shows a Rich progress bar on stderr; elsewhere nothing is drawn.
* Every command ends with a summary: a Rich table on stderr for people, or — with ``--json`` —
  one JSON object on stdout for scripts (nothing else is printed on stdout then).
* ``--quiet`` keeps only errors.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from odvgkit.errors import ProblemLog

Advance = Callable[[int], None]


def _noop(_: int) -> None:
    return None


@dataclass
class Reporter:
    quiet: bool = False
    json_mode: bool = False
    console: Console = field(default_factory=lambda: Console(stderr=True, highlight=False))

    @property
    def interactive(self) -> bool:
        return self.console.is_terminal and not self.quiet and not self.json_mode

    def info(self, message: str) -> None:
        if not self.quiet and not self.json_mode:
            self.console.print(message, markup=False, soft_wrap=True)

    def warn(self, message: str) -> None:
        if not self.quiet:
            self.console.print(f"warning: {message}", style="yellow", markup=False)

    @contextlib.contextmanager
    def progress(self, description: str, total: int | None = None, unit: str = "records") -> Iterator[Advance]:
        """Yield ``advance(n)``; draws a bar only on an interactive terminal.

        ``unit="bytes"`` shows a transfer speed, anything else a count.
        """
        if not self.interactive:
            yield _noop
            return
        columns: list[Any] = [TextColumn("[bold]{task.description}"), BarColumn()]
        if unit == "bytes":
            columns += [TaskProgressColumn(), TransferSpeedColumn()]
        else:
            columns += [MofNCompleteColumn() if total else TextColumn("{task.completed} " + unit)]
        columns += [TimeElapsedColumn(), TimeRemainingColumn()]
        with Progress(*columns, console=self.console, transient=True) as bar:
            task = bar.add_task(description, total=total)
            yield lambda n: bar.advance(task, n)

    def summary(
        self,
        title: str,
        rows: Mapping[str, Any],
        problems: ProblemLog | None = None,
        tables: Mapping[str, list[Mapping[str, Any]]] | None = None,
    ) -> None:
        """Print the closing summary: a table for people, or one JSON object with ``--json``."""
        clash = set(tables or ()) & {*rows, "command", "problems"}
        if clash:  # a table must never silently replace a summary value in --json output
            raise ValueError(f"summary table names clash with summary keys: {sorted(clash)}")
        if self.json_mode:
            payload: dict[str, Any] = {"command": title, **rows}
            if tables:
                payload.update(tables)
            if problems is not None:
                payload["problems"] = problems.as_dict()
            sys.stdout.write(json.dumps(payload, ensure_ascii=False, default=str) + "\n")
            sys.stdout.flush()
            return
        if not self.quiet:
            table = Table(title=title, show_header=False, title_justify="left")
            table.add_column(style="bold")
            table.add_column(justify="right")
            for key, value in rows.items():
                table.add_row(key, _fmt(value))
            self.console.print(table)
            for name, items in (tables or {}).items():
                self.console.print(_list_table(name, items))
        if problems is not None and problems.counts:
            self.print_problems(problems)

    def print_problems(self, problems: ProblemLog) -> None:
        if not self.quiet:
            table = Table(title="problems", title_justify="left")
            table.add_column("severity")
            table.add_column("code")
            table.add_column("count", justify="right")
            for (sev, code), n in sorted(problems.counts.items()):
                table.add_row(sev, code, str(n), style="red" if sev == "error" else "yellow")
            self.console.print(table)
        for bucket in problems.examples.values():
            for p in bucket:
                if p.severity == "error" or not self.quiet:
                    self.console.print(p.format(), markup=False, highlight=False, soft_wrap=True)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if value and abs(value) < 0.01:  # a learning rate of 1.25e-4 must not print as 0.000
            return f"{value:.3g}"
        return f"{value:,.3f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _list_table(name: str, items: list[Mapping[str, Any]]) -> Table:
    table = Table(title=name, title_justify="left")
    columns = list(items[0].keys()) if items else []
    for col in columns:
        table.add_column(col, justify="right" if isinstance(items[0][col], (int, float)) else "left")
    for item in items:
        table.add_row(*(_fmt(item.get(c, "")) for c in columns))
    return table
