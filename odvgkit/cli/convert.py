"""``odvgkit convert …``: every source format into ODVG (one subcommand per source)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from odvgkit.cli._common import Json, Quiet, Strict, reporter

convert_app = typer.Typer(
    help="Convert a source dataset into ODVG records (+ label map for detection data).",
    no_args_is_help=True,
)

Output = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="Output file (.json/.jsonl[.gz] = JSON Lines, .parquet). Default: beside the input."),
]


@convert_app.command("coco2odvg")
def coco2odvg(
    input: Annotated[Path, typer.Argument(help="COCO-style instances json (COCO, Objects365, V3Det).")],
    output: Output = None,
    dataset: Annotated[
        str,
        typer.Option("--dataset", "-d", help="Source flavour: coco | o365v1 | o365v2 | v3det (label-map name, O365 quirks)."),
    ] = "coco",
    label_map: Annotated[
        Path | None, typer.Option("--label-map", help="Label map path. Default: <output dir>/<dataset>_label_map.json.")
    ] = None,
    strict: Strict = False,
    quiet: Quiet = False,
    json_mode: Json = False,
) -> None:
    """COCO-style detection json → ODVG OD records + label map.

    Labels are 0-based in category-id order, boxes xywh → xyxy; crowd, ignore, zero-area, <1 px
    and outside-image boxes are dropped exactly as upstream coco2odvg.py does (and counted).
    The input is streamed: Objects365 v2 train (25M boxes) converts in a few GiB.

    [bold]Examples[/bold]

      odvgkit convert coco2odvg annotations/instances_train2017.json

      odvgkit convert coco2odvg zhiyuan_objv2_train.json -d o365v2 -o o365v2_train_od.jsonl
    """
    from odvgkit.convert.base import default_output, summarise, write_conversion
    from odvgkit.convert.coco import DATASETS, coco_to_odvg
    from odvgkit.errors import OdvgError, ProblemLog

    if dataset not in DATASETS:
        raise OdvgError(f"--dataset {dataset!r}: choose one of {', '.join(DATASETS)}", exit_code=2)
    rep = reporter(quiet, json_mode)
    problems = ProblemLog(strict=strict)
    out = output or default_output(input, "_od.json")
    lm_path = label_map or out.parent / f"{DATASETS[dataset]}_label_map.json"
    size = input.stat().st_size if input.is_file() else None
    with rep.progress(f"coco2odvg {input.name}", total=size, unit="bytes") as advance:
        conv = coco_to_odvg(input, dataset=dataset, problems=problems, on_bytes=advance)
        write_conversion(conv, out, inputs=[input], label_map_path=lm_path)
    summarise(rep, "coco2odvg", conv, {"output": str(out), "label_map": str(lm_path)}, problems)
    if problems.n_errors:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(convert_app, name="convert", rich_help_panel="Convert")
