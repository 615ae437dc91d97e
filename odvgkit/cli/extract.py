"""``odvgkit extract …``: pull a subset out of a source dataset file (before converting it)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from odvgkit.cli._common import Force, Json, Quiet, Strict, input_bytes, reporter

extract_app = typer.Typer(help="Extract a subset of a source annotation file.", no_args_is_help=True)


@extract_app.command("coco-from-mixed")
def coco_from_mixed(
    input: Annotated[Path, typer.Argument(help="MDETR final_mixed_train.json.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Default: final_mixed_train_only_coco.json beside the input.")] = None,
    strict: Strict = False,
    force: Force = False,
    quiet: Quiet = False,
    json_mode: Json = False,
) -> None:
    """The COCO-2014 part of MDETR's final_mixed_train.json (images with data_source "coco").

    Images keep file order and ids; each image's annotations follow in file order (crowd
    included), copied byte for byte. Feed the result to 'odvgkit convert goldg2odvg'.

    [bold]Examples[/bold]

      odvgkit extract coco-from-mixed mdetr_annotations/final_mixed_train.json

      odvgkit extract coco-from-mixed final_mixed_train.json -o mixed_coco.json
    """
    from odvgkit.convert.goldg import extract_coco_from_mixed
    from odvgkit.errors import ProblemLog

    rep = reporter(quiet, json_mode)
    problems = ProblemLog(strict=strict)
    out = output or input.parent / "final_mixed_train_only_coco.json"
    size = input_bytes(input)
    with rep.progress(f"extract {input.name}", total=size, unit="bytes") as advance:
        stats = extract_coco_from_mixed(input, out, problems=problems, on_bytes=advance)
    rep.summary("extract coco-from-mixed", {"output": str(out), **stats}, problems)
    if problems.n_errors:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(extract_app, name="extract", rich_help_panel="Convert")
