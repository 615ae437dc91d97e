"""Options shared by every command, so flags mean the same thing everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from odvgkit.report import Reporter

Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print only errors.")]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON summary on stdout (for scripts).")]
Strict = Annotated[
    bool,
    typer.Option("--strict", help="Stop at the first bad record instead of skipping and counting it."),
]
# Label-space options of every converter that writes a label map (odvgkit.convert.labelspace.label_space)
LabelSpaceMap = Annotated[
    Path | None,
    typer.Option(
        "--label-map",
        help="An EXISTING label map: align this dataset's classes onto it (exact, then case-insensitive, then "
        "--synonyms; new classes are appended, or refused with --strict); the aligned map is written beside "
        "the output under the default name and the existing file is not modified. A path that does not "
        "exist: where this dataset's own label map is written.",
    ),
]
Synonyms = Annotated[
    Path | None,
    typer.Option(
        "--synonyms",
        help='With --label-map EXISTING: JSON {"new name": "existing name"} or a two-column CSV new,existing.',
    ),
]


def _set_force(value: bool) -> bool:
    from odvgkit.io.atomic import set_force

    set_force(value)
    return value


# Every command that writes outputs takes ``force: Force = False``; the check itself is in the
# atomic commit (odvgkit.io.atomic), so declaring the option is all a command has to do.
Force = Annotated[
    bool,
    typer.Option(
        "--force",
        help="Replace existing outputs (and label maps) whose content differs; without it they are kept "
        "and the command fails. Identical outputs are never an error.",
        callback=_set_force,
    ),
]


def reporter(quiet: bool, json_mode: bool) -> Reporter:
    return Reporter(quiet=quiet, json_mode=json_mode)


def input_bytes(path: Path) -> int | None:
    """Total for a byte-based progress bar: the file size, or None when progress is not in bytes.

    Parquet inputs are read by row group (no byte progress), so their bar counts nothing.
    """
    return path.stat().st_size if path.is_file() and not path.name.endswith(".parquet") else None
