"""``odvgkit export …``: ODVG back into other formats."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from odvgkit.cli._common import Force, Json, Quiet, Strict, reporter

export_app = typer.Typer(help="Export ODVG records to other formats.", no_args_is_help=True)


@export_app.command("coco")
def coco(
    input: Annotated[Path, typer.Argument(help="ODVG file (.jsonl/.json[.gz]/.parquet), OD or VG.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="COCO json to write.")],
    label_map: Annotated[Path | None, typer.Option("--label-map", help="Label map of an OD file (names of the categories). Default: the instances' category fields.")] = None,
    category_ids: Annotated[str, typer.Option("--category-ids", help="label+1 (default) or coco80 (original COCO ids for the 80 COCO labels).")] = "label+1",
    reference: Annotated[Path | None, typer.Option("--reference", help="The original COCO json: image ids by file name and category ids by name come from it, so predictions line up with it.")] = None,
    strict: Strict = False,
    force: Force = False,
    quiet: Quiet = False,
    json_mode: Json = False,
) -> None:
    """ODVG → COCO detection json that pycocotools, FiftyOne and COCO evaluators read.

    OD: one category per label, one annotation per box (score and flags copied). VG: one
    category per distinct phrase, the caption on each image and tokens_positive on each
    annotation. Boxes round-trip exactly: coco2odvg of the export gives the same boxes.

    [bold]Examples[/bold]

      odvgkit export coco instances_val2017_od.json --label-map coco2017_label_map.json -o val_coco.json

      odvgkit export coco flickr_train_vg.jsonl -o flickr_train_coco.json
    """
    from odvgkit.convert.export_coco import export_coco
    from odvgkit.errors import ProblemLog
    from odvgkit.io import read_label_map

    rep = reporter(quiet, json_mode)
    problems = ProblemLog(strict=strict)
    from odvgkit.curate.labels import check_keys

    lm = read_label_map(label_map) if label_map else None
    if lm is not None and label_map is not None:
        check_keys(lm, label_map)  # category ids are computed from the keys
    with rep.progress(f"export {input.name}") as advance:
        stats = export_coco(input, output, label_map=lm, category_ids=category_ids, reference=reference,
                            problems=problems, on_record=advance)
    rows: dict[str, object] = {"output": str(output), **stats}
    rows["image ids"] = "records' image_id, else --reference" if reference else "records' image_id, else 1..N"
    rows["not exported (not in ODVG)"] = "crowd boxes, segmentation; area = box w*h"
    rep.summary("export coco", rows, problems)
    if problems.n_errors:
        raise typer.Exit(1)


@export_app.command("odvg")
def odvg(
    input: Annotated[Path, typer.Argument(help="ODVG file (.jsonl/.json[.gz]/.parquet), OD or VG.")],
    output: Annotated[Path, typer.Argument(help="ODVG file to write, in the dialect's layout.")],
    dialect: Annotated[str, typer.Option("--dialect", help="mmdet (as is) | ogd (Open-GroundingDino) | tao (NVIDIA TAO).")] = "mmdet",
    strict: Strict = False,
    force: Force = False,
    quiet: Quiet = False,
    json_mode: Json = False,
) -> None:
    """ODVG → the ODVG dialect another reader loads: MMDetection, Open-GroundingDino or NVIDIA TAO.

    ogd: one box per VG region (a region with several boxes becomes several regions, same
    phrase and tokens_positive) and string phrases. tao: the same, with file_name instead of
    filename. OD records are the same for all three (the label map is used as is).

    [bold]Examples[/bold]

      odvgkit export odvg flickr_train_vg.json flickr_train_ogd.jsonl --dialect ogd

      odvgkit export odvg train_od.json train_tao.jsonl --dialect tao
    """
    from odvgkit.convert.export_odvg import export_odvg
    from odvgkit.errors import ProblemLog

    rep = reporter(quiet, json_mode)
    problems = ProblemLog(strict=strict)
    with rep.progress(f"export {input.name}") as advance:
        stats = export_odvg(input, output, dialect, problems=problems, on_record=advance)
    rows = {k: v for k, v in sorted(stats.items()) if v or ":" not in k}
    rep.summary(f"export odvg --dialect {dialect}", {"output": str(output), **rows}, problems)
    if problems.n_errors:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(export_app, name="export", rich_help_panel="Convert")
