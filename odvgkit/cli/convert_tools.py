"""``odvgkit convert labelme2odvg | cvat2odvg | cityscapes2odvg | fiftyone2odvg``: annotation tools → ODVG.

These add subcommands to the ``convert`` group of :mod:`odvgkit.cli.convert` (imported, so the
group exists first); they live in their own module so each importer stays one small edit away
from the others. Every one writes ``<output>`` and ``<output stem>_label_map.json`` together.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from odvgkit.cli._common import Force, Json, LabelSpaceMap, Quiet, Strict, Synonyms, reporter
from odvgkit.cli.convert import Output, convert_app

if TYPE_CHECKING:
    from odvgkit.convert.base import Conversion
    from odvgkit.errors import ProblemLog
    from odvgkit.report import Reporter

Classes = Annotated[
    str | None,
    typer.Option("--classes", help="Class order: a file with one name per line (labels.txt) or 'a,b,c'. Default: the format's own class list, else the labels used, sorted by name."),
]


def _write(
    rep: Reporter, title: str, conv: Conversion, out: Path, label_map: Path | None, synonyms: Path | None,
    inputs: list[Path], rows: dict[str, Any], problems: ProblemLog,
) -> None:
    """Records and label map together (atomically), then the summary; exit 1 if records were bad.

    ``label_map``/``synonyms`` are the shared ``--label-map``/``--synonyms`` options: an existing
    map is aligned onto (:func:`odvgkit.convert.labelspace.label_space`).
    """
    from odvgkit.convert.base import summarise, write_conversion
    from odvgkit.convert.labelspace import default_label_map, label_space

    space = label_space(conv, label_map, default_label_map(out), synonyms=synonyms, strict=problems.strict,
                        problems=problems)
    with rep.progress(f"{title} → {out.name}", total=conv.total, unit="images") as advance:
        write_conversion(space.conversion, out, inputs=inputs, label_map_path=space.path, on_records=advance)
    summarise(rep, title, space.conversion, {"output": str(out), "label_map": str(space.path), **rows, **space.rows},
              problems)
    if problems.n_errors:
        raise typer.Exit(1)


def _class_order(classes: str | None, default: str, names: list[str]) -> str:
    return f"--classes ({len(names)})" if classes else f"{default} ({len(names)})"


@convert_app.command("labelme2odvg")
def labelme2odvg(
    root: Annotated[Path, typer.Argument(help="Folder of LabelMe / X-AnyLabeling .json files (searched recursively).")],
    output: Output = None,
    label_map: LabelSpaceMap = None,
    synonyms: Synonyms = None,
    classes: Classes = None,
    images_root: Annotated[Path | None, typer.Option("--images-root", help="Folder record filenames are relative to (your data_prefix). Default: ROOT.")] = None,
    no_images: Annotated[bool, typer.Option("--no-images", help="Do not open images: trust imageWidth/imageHeight (no size check, no missing-image check).")] = False,
    strict: Strict = False,
    force: Force = False,
    quiet: Quiet = False,
    json_mode: Json = False,
) -> None:
    """LabelMe / X-AnyLabeling JSON → ODVG OD records + label map.

    Rectangles → boxes; polygons, rotated boxes and circles → their enclosing box; lines and
    points are counted and skipped. Image sizes come from the image headers and are checked
    against imageWidth/imageHeight. group_id, description and difficult are kept per box.
    Classes are --classes in that order, else every label used, sorted by name.

    [bold]Examples[/bold]

      odvgkit convert labelme2odvg data/labelme

      odvgkit convert labelme2odvg data/labels --images-root data --classes labels.txt -o train_od.jsonl
    """
    from odvgkit.convert._importer import read_classes
    from odvgkit.convert.base import default_output
    from odvgkit.convert.labelme import labelme_to_odvg
    from odvgkit.convert.labelspace import default_label_map
    from odvgkit.errors import ProblemLog

    rep = reporter(quiet, json_mode)
    problems = ProblemLog(strict=strict)
    out = output or default_output(root, "_od.json")
    names = read_classes(classes) if classes else None
    conv = labelme_to_odvg(root, classes=names, images_root=images_root, read_images=not no_images,
                           exclude=[out, default_label_map(out), *([label_map] if label_map else [])], problems=problems)
    order = _class_order(classes, "sorted by name", list(conv.label_map or {}))
    _write(rep, "labelme2odvg", conv, out, label_map, synonyms, [root], {"class_order": order}, problems)


@convert_app.command("cvat2odvg")
def cvat2odvg(
    input: Annotated[Path, typer.Argument(help="annotations.xml of a 'CVAT for images 1.1' export.")],
    output: Output = None,
    label_map: LabelSpaceMap = None,
    synonyms: Synonyms = None,
    classes: Classes = None,
    images_root: Annotated[Path | None, typer.Option("--images-root", help="Check every image exists here and its header size matches the XML. Default: no image is read.")] = None,
    strict: Strict = False,
    force: Force = False,
    quiet: Quiet = False,
    json_mode: Json = False,
) -> None:
    """CVAT for images 1.1 XML → ODVG OD records + label map (streamed, bounded memory).

    Boxes (rotated ones → enclosing box) and polygons (→ enclosing box); occluded is kept as
    is_occluded, <attribute>s as attributes; other shapes are counted and skipped. Classes are
    --classes, else the labels declared in <meta> in CVAT's order, else the used ones sorted.

    [bold]Examples[/bold]

      odvgkit convert cvat2odvg task_12/annotations.xml

      odvgkit convert cvat2odvg annotations.xml --classes car,person -o train_od.jsonl
    """
    from odvgkit.cli._common import input_bytes
    from odvgkit.convert._importer import read_classes
    from odvgkit.convert.base import summarise, write_conversion
    from odvgkit.convert.cvat import cvat_classes, cvat_to_odvg
    from odvgkit.convert.labelspace import default_label_map, label_space
    from odvgkit.errors import ProblemLog

    rep = reporter(quiet, json_mode)
    problems = ProblemLog(strict=strict)
    out = output or input.with_name(input.name.removesuffix(".xml") + "_od.json")
    names, source = cvat_classes(input, read_classes(classes) if classes else None)
    rows = {"class_order": f"{source} ({len(names)})"}
    with rep.progress(f"cvat2odvg {input.name}", total=input_bytes(input), unit="bytes") as advance:
        conv = cvat_to_odvg(input, classes=names, images_root=images_root, problems=problems, on_bytes=advance)
        space = label_space(conv, label_map, default_label_map(out), synonyms=synonyms, strict=strict, problems=problems)
        write_conversion(space.conversion, out, inputs=[input], label_map_path=space.path)
    summarise(rep, "cvat2odvg", space.conversion, {"output": str(out), "label_map": str(space.path), **rows, **space.rows},
              problems)
    if problems.n_errors:
        raise typer.Exit(1)


@convert_app.command("cityscapes2odvg")
def cityscapes2odvg(
    root: Annotated[Path, typer.Argument(help="Cityscapes root holding gtFine/ and leftImg8bit/.")],
    split: Annotated[str, typer.Option("--split", help="train | val.")] = "train",
    output: Output = None,
    label_map: LabelSpaceMap = None,
    synonyms: Synonyms = None,
    no_images: Annotated[bool, typer.Option("--no-images", help="Do not check leftImg8bit/ image sizes (trust imgWidth/imgHeight).")] = False,
    strict: Strict = False,
    force: Force = False,
    quiet: Quiet = False,
    json_mode: Json = False,
) -> None:
    """Cityscapes gtFine polygons → ODVG OD for the 8 instance classes (MMDetection's boxes).

    The polygons are painted as cityscapesScripts paints gtFine_instanceIds.png and each box is
    the extent of an object's visible pixels, as MMDetection's cityscapes.py + coco2odvg give;
    groups (crowd), caravan and trailer are left out and counted. Filenames are
    <city>/<name>_leftImg8bit.png (data_prefix: leftImg8bit/<split>/).

    [bold]Examples[/bold]

      odvgkit convert cityscapes2odvg data/cityscapes --split train

      odvgkit convert cityscapes2odvg data/cityscapes --split val -o cityscapes_val_od.jsonl
    """
    from odvgkit.convert.cityscapes import cityscapes_to_odvg
    from odvgkit.errors import ProblemLog

    rep = reporter(quiet, json_mode)
    problems = ProblemLog(strict=strict)
    out = output or root / f"cityscapes_{split}_od.json"
    conv = cityscapes_to_odvg(root, split, read_images=not no_images, problems=problems)
    _write(rep, "cityscapes2odvg", conv, out, label_map, synonyms, [root], {"split": split}, problems)


@convert_app.command("fiftyone2odvg")
def fiftyone2odvg(
    root: Annotated[Path, typer.Argument(help="Dataset folder in a format FiftyOne reads.")],
    type_name: Annotated[str, typer.Option("--type", help="FiftyOne dataset type: KITTIDetectionDataset, VOCDetectionDataset, YOLOv5Dataset, OpenLABELImageDataset, CVATImageDataset, …")],
    output: Output = None,
    label_map: LabelSpaceMap = None,
    synonyms: Synonyms = None,
    classes: Classes = None,
    field: Annotated[str | None, typer.Option("--field", help="Detections field to convert when the dataset has several.")] = None,
    images_root: Annotated[Path | None, typer.Option("--images-root", help="Folder record filenames are relative to. Default: ROOT.")] = None,
    arg: Annotated[list[str] | None, typer.Option("--arg", help="KEY=VALUE passed to FiftyOne's importer, e.g. split=train (YOLOv5). Repeatable.")] = None,
    skip_class: Annotated[list[str] | None, typer.Option("--skip-class", help="Leave this class's boxes out, counted (e.g. KITTI's DontCare). Repeatable.")] = None,
    db_dir: Annotated[Path | None, typer.Option("--db-dir", help="FiftyOne database folder (default: FiftyOne's own). A temporary dataset is made and deleted.")] = None,
    strict: Strict = False,
    force: Force = False,
    quiet: Quiet = False,
    json_mode: Json = False,
) -> None:
    """Any detection format FiftyOne reads → ODVG OD records + label map (extra 'browse').

    FiftyOne's relative boxes become absolute xyxy with the image size from the header. Classes
    are --classes, else the dataset's declared classes, else every label used sorted by name.

    [bold]Examples[/bold]

      odvgkit convert fiftyone2odvg data/kitti/training --type KITTIDetectionDataset --skip-class DontCare

      odvgkit convert fiftyone2odvg data/yolo --type YOLOv5Dataset --arg split=train -o yolo_train_od.jsonl
    """
    from odvgkit.convert._importer import read_classes
    from odvgkit.convert.base import default_output
    from odvgkit.errors import ProblemLog, require

    require("fiftyone", "browse")  # the one-line hint before any work
    from odvgkit.browse import app as fapp
    from odvgkit.convert.fiftyone_dir import fiftyone_to_odvg, parse_importer_args

    rep = reporter(quiet, json_mode)
    problems = ProblemLog(strict=strict)
    out = output or default_output(root, "_od.json")
    names = read_classes(classes) if classes else None
    importer_args = parse_importer_args(arg or [])
    with fapp.interrupt_on_sigterm(), fapp.database(db_dir or fapp.default_database_dir()):
        conv, source = fiftyone_to_odvg(root, type_name, classes=names, field=field, images_root=images_root,
                                        skip_classes=skip_class or (), importer_args=importer_args, problems=problems)
        order = f"{source} ({len(conv.label_map or {})})"
        _write(rep, "fiftyone2odvg", conv, out, label_map, synonyms, [root], {"type": type_name, "class_order": order}, problems)
