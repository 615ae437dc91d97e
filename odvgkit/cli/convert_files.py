"""``odvgkit convert voc2odvg|yolo2odvg``: datasets stored as one annotation file per image.

Added to the ``convert`` group defined in :mod:`odvgkit.cli.convert` (loaded before this module).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from odvgkit.cli._common import Force, Json, LabelSpaceMap, Quiet, Strict, Synonyms, reporter
from odvgkit.cli.convert import Output, convert_app


def voc2odvg(
    root: Annotated[Path, typer.Argument(help="VOC root (Annotations/, JPEGImages/, ImageSets/Main/), a flat folder of XML files, or one XML.")],
    split: Annotated[str | None, typer.Option("--split", help="train | val | test | trainval (ImageSets/Main/<split>.txt) or a file of image ids. Default: every XML.")] = None,
    classes: Annotated[str | None, typer.Option("--classes", help="Class order: a file (one name per line) or a,b,c. Default: sorted names found.")] = None,
    drop_difficult: Annotated[bool, typer.Option("--drop-difficult", help="Drop objects marked <difficult>1 (upstream's rule). Default: keep them, flagged.")] = False,
    check_sizes: Annotated[bool, typer.Option("--check-sizes", help="Read every image header and warn when <size> disagrees (slower).")] = False,
    output: Output = None,
    label_map: LabelSpaceMap = None,
    synonyms: Synonyms = None,
    strict: Strict = False,
    force: Force = False,
    quiet: Quiet = False,
    json_mode: Json = False,
) -> None:
    r"""Pascal VOC XML → ODVG OD records + label map.

    Boxes are \[xmin-1, ymin-1, xmax-1, ymax-1], the same as MMDetection's pascal_voc.py +
    coco2odvg.py and XMLDataset; zero-size boxes are dropped (counted as degenerate).
    difficult/truncated are kept per box. Filenames are relative to ROOT (JPEGImages/x.jpg).
    Default output ROOT/<split or all>_od.json, label map <output stem>_label_map.json.

    [bold]Examples[/bold]

      odvgkit convert voc2odvg data/VOC2007 --split trainval --classes voc_classes.txt

      odvgkit convert voc2odvg bccd_voc --split train -o bccd/train_od.json

      odvgkit convert voc2odvg raccoon/ -o raccoon_od.jsonl
    """
    from odvgkit.convert.base import summarise, write_conversion
    from odvgkit.convert.labelspace import default_label_map, label_space
    from odvgkit.convert.voc import parse_classes, voc_to_odvg
    from odvgkit.errors import ProblemLog

    rep = reporter(quiet, json_mode)
    problems = ProblemLog(strict=strict)
    names = parse_classes(classes) if classes is not None else None
    base = root.parent if root.is_file() else root
    tag = Path(split).stem if split is not None else "all"
    out = output or base / f"{tag}_od.json"
    with rep.progress(f"voc2odvg {root.name}", unit="files") as advance:
        conv = voc_to_odvg(root, split=split, classes=names, drop_difficult=drop_difficult,
                           check_sizes=check_sizes, problems=problems, on_files=advance)
        space = label_space(conv, label_map, default_label_map(out), synonyms=synonyms, strict=strict, problems=problems)
        write_conversion(space.conversion, out, inputs=[root], label_map_path=space.path)
    rows = {"output": str(out), "label_map": str(space.path), "images_root": str(base), **conv.info,
            "classes": len(space.conversion.label_map or {}), **space.rows}
    summarise(rep, "voc2odvg", space.conversion, rows, problems)
    if problems.n_errors:
        raise typer.Exit(1)


def yolo2odvg(
    root: Annotated[Path, typer.Argument(help="YOLO dataset root: images/ + labels/ (Ultralytics) or images with .txt beside them and classes.txt (darknet).")],
    data: Annotated[Path | None, typer.Option("--data", help="Ultralytics data.yaml (names, train/val/test). Default: ROOT/data.yaml if present, else classes.txt.")] = None,
    split: Annotated[str | None, typer.Option("--split", help="train | val | test: the data.yaml entry, else images/<split>/. Default: every image.")] = None,
    no_exif: Annotated[bool, typer.Option("--no-exif", help="Ignore EXIF orientation when reading sizes.")] = False,
    output: Output = None,
    label_map: LabelSpaceMap = None,
    synonyms: Synonyms = None,
    strict: Strict = False,
    force: Force = False,
    quiet: Quiet = False,
    json_mode: Json = False,
) -> None:
    r"""YOLO txt labels (boxes or segments) → ODVG OD records + label map.

    Normalised cx cy w h → absolute \[x1, y1, x2, y2] with sizes from image headers (no pixel
    decoding); a segment becomes its enclosing box; empty or missing label files are images
    without boxes. Filenames are relative to ROOT. Default output ROOT/<split or all>_od.json.

    [bold]Examples[/bold]

      odvgkit convert yolo2odvg datasets/coco128 --split train

      odvgkit convert yolo2odvg my_yolo --data my_yolo/data.yaml --split val -o val_od.jsonl
    """
    from odvgkit.convert.base import summarise, write_conversion
    from odvgkit.convert.labelspace import default_label_map, label_space
    from odvgkit.convert.yolo import yolo_to_odvg
    from odvgkit.errors import ProblemLog

    rep = reporter(quiet, json_mode)
    problems = ProblemLog(strict=strict)
    out = output or root / f"{split or 'all'}_od.json"
    with rep.progress(f"yolo2odvg {root.name}", unit="files") as advance:
        conv = yolo_to_odvg(root, data=data, split=split, exif=not no_exif, problems=problems, on_files=advance)
        space = label_space(conv, label_map, default_label_map(out), synonyms=synonyms, strict=strict, problems=problems)
        write_conversion(space.conversion, out, inputs=[root, *([data] if data else [])], label_map_path=space.path)
    rows = {"output": str(out), "label_map": str(space.path), "images_root": str(root), **conv.info,
            "classes": len(space.conversion.label_map or {}), **space.rows}
    summarise(rep, "yolo2odvg", space.conversion, rows, problems)
    if problems.n_errors:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    convert_app.command("voc2odvg")(voc2odvg)
    convert_app.command("yolo2odvg")(yolo2odvg)
