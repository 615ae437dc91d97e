"""``odvgkit validate``: find what loaders would silently drop or misread."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from odvgkit.cli._common import Json, Quiet, Strict, input_bytes, reporter


def validate(
    file: Annotated[Path, typer.Argument(help="ODVG file (.json/.jsonl[.gz]/.parquet).")],
    label_map: Annotated[Path | None, typer.Option("--label-map", "-m", help="Label map of an OD file: labels are checked against it.")] = None,
    images_root: Annotated[
        Path | None,
        typer.Option("--images-root", help="Check that every image exists and its header size (EXIF aware) matches height/width."),
    ] = None,
    workers: Annotated[int, typer.Option(help="Threads reading image headers.")] = 8,
    strict: Strict = False,
    quiet: Quiet = False,
    json_mode: Json = False,
) -> None:
    """Check an ODVG file against what MMDetection's ODVGDataset and Open-GroundingDino read.

    Schema; boxes (x2>x1, y2>y1, ≥1 px, overlapping the image — the boxes ODVGDataset silently
    drops); labels present in the label map and its keys contiguous from "0"; tokens_positive
    inside the caption and non-empty; phrase equal to its caption span (warning); duplicate
    filenames; with --images-root, each image exists and its size matches (headers only, never
    decoding pixels). Prints counts per problem and the first examples as file:line: field: message.
    Exit status 1 when any error is found.

    [bold]Examples[/bold]

      odvgkit validate instances_train2017_od.json -m coco2017_label_map.json

      odvgkit validate goldg_vg.jsonl --images-root data/gqa/images --json
    """
    from odvgkit.errors import ProblemLog
    from odvgkit.io import read_label_map
    from odvgkit.validate import validate_file

    rep = reporter(quiet, json_mode)
    problems = ProblemLog(strict=strict)
    lm = read_label_map(label_map) if label_map is not None else None
    size = input_bytes(file)
    with rep.progress(f"validate {file.name}", total=size, unit="bytes") as advance:
        summary = validate_file(file, problems, lm, label_map, images_root, on_bytes=advance, workers=workers)
    rows = {"file": str(file), **summary.rows(), "errors": problems.n_errors, "warnings": problems.n_warnings}
    rep.summary("validate", rows, problems)
    if problems.n_errors:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("validate", rich_help_panel="Curate")(validate)
