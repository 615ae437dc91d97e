"""``odvgkit convert …``: every source format into ODVG (one subcommand per source)."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Annotated

import typer

from odvgkit.cli._common import Force, Json, LabelSpaceMap, Quiet, Strict, Synonyms, input_bytes, reporter

convert_app = typer.Typer(
    help="Convert a source dataset into ODVG records (+ label map for detection data).",
    no_args_is_help=True,
)

Output = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="Output file (.json/.jsonl[.gz] = JSON Lines, .parquet). Default: beside the input."),
]


ImageIds = Annotated[
    bool,
    typer.Option("--image-ids", help="Also write each image's source id as a record field image_id (export coco keeps it)."),
]


@convert_app.command("coco2odvg")
def coco2odvg(
    input: Annotated[Path, typer.Argument(help="COCO-style instances json (COCO, Objects365, V3Det).")],
    output: Output = None,
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset", "-d",
            help="Source flavour: coco | o365v1 | o365v2 | v3det (upstream label-map name, O365 quirks). Default: coco when "
            "the categories are COCO 2017's 80, else a custom dataset.",
        ),
    ] = None,
    label_map: LabelSpaceMap = None,
    synonyms: Synonyms = None,
    strict: Strict = False,
    force: Force = False,
    quiet: Quiet = False,
    json_mode: Json = False,
    image_ids: ImageIds = False,
) -> None:
    """COCO-style detection json → ODVG OD records + label map.

    Labels are 0-based in category-id order, boxes xywh → xyxy; crowd, ignore, zero-area, <1 px
    and outside-image boxes are dropped exactly as upstream coco2odvg.py does (and counted).
    The input is streamed: Objects365 v2 train (25M boxes) converts in a few GiB.

    Label map, by default beside the output: with -d, upstream's name (coco2017_label_map.json,
    o365v1_…, o365v2_…, v3det_2023_v1_label_map.json); without -d, coco2017_label_map.json when
    the categories are exactly COCO 2017's 80, else <output stem>_label_map.json (a custom
    export, e.g. Roboflow). --label-map EXISTING aligns the classes onto an existing label map.

    [bold]Examples[/bold]

      odvgkit convert coco2odvg annotations/instances_train2017.json

      odvgkit convert coco2odvg zhiyuan_objv2_train.json -d o365v2 -o o365v2_train_od.jsonl

      odvgkit convert coco2odvg raccoon/_annotations.coco.json -o raccoon_od.jsonl --label-map coco2017_label_map.json
    """
    from odvgkit.convert._coco80 import is_coco80
    from odvgkit.convert.base import default_output, summarise, write_conversion
    from odvgkit.convert.coco import DATASETS, coco_to_odvg
    from odvgkit.convert.labelspace import default_label_map, label_space
    from odvgkit.errors import OdvgError, ProblemLog

    if dataset is not None and dataset not in DATASETS:
        raise OdvgError(f"--dataset {dataset!r}: choose one of {', '.join(DATASETS)}", exit_code=2)
    rep = reporter(quiet, json_mode)
    problems = ProblemLog(strict=strict)
    out = output or default_output(input, "_od.json")
    size = input_bytes(input)
    if image_ids:  # the source image id as a last record field (export coco gives it back)
        coco_to_odvg = partial(coco_to_odvg, image_ids=True)
    with rep.progress(f"read {input.name}", total=size, unit="bytes") as advance:
        conv = coco_to_odvg(input, dataset=dataset or "coco", problems=problems, on_bytes=advance)
    flavour = dataset or ("coco" if is_coco80(conv.label_map or {}) else "custom")
    default_lm = out.parent / f"{DATASETS[flavour]}_label_map.json" if flavour in DATASETS else default_label_map(out)
    space = label_space(conv, label_map, default_lm, synonyms=synonyms, strict=strict, problems=problems)
    conv, lm_path = space.conversion, space.path
    with rep.progress(f"write {out.name}", total=conv.total, unit="records") as advance:
        write_conversion(conv, out, inputs=[input], label_map_path=lm_path, on_records=advance)
    rows = {"output": str(out), "label_map": str(lm_path), "dataset": flavour, **space.rows}
    summarise(rep, "coco2odvg", conv, rows, problems)
    if problems.n_errors:
        raise typer.Exit(1)


LabelMapOpt = LabelSpaceMap  # default: beside the output, named after the source (see each command)


def _finish(rep, title: str, conv, outputs: dict, problems) -> None:
    from odvgkit.convert.base import summarise

    summarise(rep, title, conv, outputs, problems)
    if problems.n_errors:
        raise typer.Exit(1)


@convert_app.command("goldg2odvg")
def goldg2odvg(
    input: Annotated[Path, typer.Argument(help="MDETR grounding json: final_mixed_train_no_coco.json, final_flickr_separateGT_*.json, …")],
    output: Output = None,
    strict: Strict = False,
    force: Force = False,
    quiet: Quiet = False,
    json_mode: Json = False,
) -> None:
    """MDETR grounding json (GoldG) → ODVG VG records (caption + regions with character spans).

    One record per image in ascending image-id order (as upstream); regions are merged by phrase
    text like upstream, but a repeated phrase keeps the spans of all its mentions. Crowd and
    invalid boxes are dropped and counted; x2/y2 are clipped to the image.

    [bold]Examples[/bold]

      odvgkit convert goldg2odvg mdetr_annotations/final_mixed_train_no_coco.json

      odvgkit convert goldg2odvg final_flickr_separateGT_train.json -o flickr_train_vg.jsonl
    """
    from odvgkit.convert.base import default_output, write_conversion
    from odvgkit.convert.goldg import goldg_to_odvg
    from odvgkit.errors import ProblemLog

    rep = reporter(quiet, json_mode)
    problems = ProblemLog(strict=strict)
    out = output or default_output(input, "_vg.json")
    size = input_bytes(input)
    with rep.progress(f"goldg2odvg {input.name}", total=size, unit="bytes") as advance:
        conv = goldg_to_odvg(input, problems=problems, on_bytes=advance)
        write_conversion(conv, out, inputs=[input])
    _finish(rep, "goldg2odvg", conv, {"output": str(out)}, problems)


@convert_app.command("refcoco2odvg")
def refcoco2odvg(
    inputs: Annotated[list[Path], typer.Argument(help="MDETR finetune_refcoco*_train.json files, or a directory holding them.")],
    out_dir: Annotated[Path | None, typer.Option("--out-dir", help="Directory for the outputs. Default: beside each input.")] = None,
    strict: Strict = False,
    force: Force = False,
    quiet: Quiet = False,
    json_mode: Json = False,
) -> None:
    """RefCOCO / RefCOCO+ / RefCOCOg (MDETR refexp files) → ODVG VG, one output per input.

    Each input becomes <name>_vg.json (one record per referring expression, deterministic
    id order). All inputs are checked before anything is written; two inputs never share an output.

    [bold]Examples[/bold]

      odvgkit convert refcoco2odvg mdetr_annotations/

      odvgkit convert refcoco2odvg finetune_refcoco_train.json finetune_refcocog_train.json --out-dir vg/
    """
    from odvgkit.convert.base import Conversion, write_conversion
    from odvgkit.convert.goldg import goldg_to_odvg
    from odvgkit.convert.refcoco import refcoco_inputs, refcoco_outputs
    from odvgkit.errors import ProblemLog

    rep = reporter(quiet, json_mode)
    problems = ProblemLog(strict=strict)
    files = refcoco_inputs(inputs)
    outs = refcoco_outputs(files, out_dir)
    total = Conversion(records=[])
    rows: dict[str, object] = {}
    convs = []
    for inp in files:  # every input read and checked (--strict included) before any output is written
        with rep.progress(f"refcoco2odvg {inp.name}", total=inp.stat().st_size, unit="bytes") as advance:
            convs.append(goldg_to_odvg(inp, problems=problems, on_bytes=advance, eager=True))
    for conv, out in zip(convs, outs, strict=True):
        with rep.progress(f"refcoco2odvg {out.name}", total=None, unit="records") as advance:
            n = write_conversion(conv, out, inputs=files, on_records=advance)
        rows[str(out)] = n
        total.stats.update(conv.stats)
    _finish(rep, "refcoco2odvg", total, rows, problems)


@convert_app.command("lvis2odvg")
def lvis2odvg(
    input: Annotated[Path, typer.Argument(help="LVIS v1 json (lvis_v1_train.json / lvis_v1_val.json).")],
    output: Output = None,
    label_map: LabelMapOpt = None,
    synonyms: Synonyms = None,
    strict: Strict = False,
    force: Force = False,
    quiet: Quiet = False,
    json_mode: Json = False,
    image_ids: ImageIds = False,
) -> None:
    """LVIS v1 json → ODVG OD records + label map (label = category_id - 1).

    Keeps LVIS's federated fields per image as 0-based label ids — neg_category_ids and
    not_exhaustive_category_ids — so negative sampling can avoid false negatives. Boxes pass
    upstream's filters (ignore, no overlap, area/size, crowd), counted in the summary.
    Label map: lvis_v1_label_map.json beside the output (--label-map NEW.json names it;
    --label-map EXISTING.json aligns the classes onto that label space).

    [bold]Examples[/bold]

      odvgkit convert lvis2odvg annotations/lvis_v1_train.json

      odvgkit convert lvis2odvg lvis_v1_val.json -o lvis_val_od.parquet --label-map lvis_v1_label_map.json
    """
    from odvgkit.convert.base import default_output, write_conversion
    from odvgkit.convert.labelspace import label_space
    from odvgkit.convert.lvis import lvis_to_odvg
    from odvgkit.errors import ProblemLog

    rep = reporter(quiet, json_mode)
    problems = ProblemLog(strict=strict)
    out = output or default_output(input, "_od.json")
    size = input_bytes(input)
    if image_ids:  # the source image id as a last record field (export coco gives it back)
        lvis_to_odvg = partial(lvis_to_odvg, image_ids=True)
    with rep.progress(f"lvis2odvg {input.name}", total=size, unit="bytes") as advance:
        conv = lvis_to_odvg(input, problems=problems, on_bytes=advance)
        space = label_space(conv, label_map, out.parent / "lvis_v1_label_map.json", synonyms=synonyms, strict=strict,
                            problems=problems)
        conv, lm_path = space.conversion, space.path
        write_conversion(conv, out, inputs=[input], label_map_path=lm_path)
    _finish(rep, "lvis2odvg", conv, {"output": str(out), "label_map": str(lm_path), **space.rows}, problems)


@convert_app.command("openimages2odvg")
def openimages2odvg(
    ann_dir: Annotated[Path, typer.Argument(help="Directory with oidv6-train-annotations-bbox.csv and class-descriptions-boxable.csv.")],
    images_root: Annotated[Path, typer.Option("--images-root", help="Directory holding <ImageID>.jpg (sizes are read from headers).")],
    output: Output = None,
    label_map: LabelMapOpt = None,
    bbox_csv: Annotated[Path | None, typer.Option("--bbox-csv", help="Box CSV. Default: ANN_DIR/oidv6-train-annotations-bbox.csv.")] = None,
    classes_csv: Annotated[Path | None, typer.Option("--classes-csv", help="Class CSV. Default: ANN_DIR/class-descriptions-boxable.csv.")] = None,
    drop_group_of: Annotated[bool, typer.Option("--drop-group-of", help="Drop IsGroupOf boxes (upstream's rule). Default: keep them, flagged.")] = False,
    no_exif: Annotated[bool, typer.Option("--no-exif", help="Ignore EXIF orientation when reading sizes.")] = False,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Threads reading image headers.")] = 16,
    synonyms: Synonyms = None,
    strict: Strict = False,
    force: Force = False,
    quiet: Quiet = False,
    json_mode: Json = False,
) -> None:
    """OpenImages v6 box CSV → ODVG OD records + label map.

    Image sizes come from the image headers (EXIF aware, in parallel) instead of decoding every
    JPEG. Every image is one record even when its CSV rows are scattered. IsGroupOf, IsOccluded,
    IsTruncated, IsDepiction and IsInside are kept per box as is_group_of … is_inside.
    Label map: openimages_label_map.json beside the output (--label-map NEW.json names it;
    --label-map EXISTING.json aligns the classes onto that label space).

    [bold]Examples[/bold]

      odvgkit convert openimages2odvg data/OpenImages/annotations --images-root data/OpenImages/train

      odvgkit convert openimages2odvg annotations/ --images-root train/ --drop-group-of -o oi_od.jsonl
    """
    from odvgkit.convert.base import write_conversion
    from odvgkit.convert.labelspace import label_space
    from odvgkit.convert.openimages import openimages_to_odvg
    from odvgkit.errors import ProblemLog

    rep = reporter(quiet, json_mode)
    problems = ProblemLog(strict=strict)
    out = output or ann_dir / "oidv6-train-annotations_od.json"
    with rep.progress("openimages2odvg", unit="rows") as advance:
        conv = openimages_to_odvg(
            ann_dir, images_root, bbox_csv=bbox_csv, classes_csv=classes_csv, drop_group_of=drop_group_of,
            exif=not no_exif, workers=workers, problems=problems, on_rows=advance,
        )
        inputs = [bbox_csv or ann_dir / "oidv6-train-annotations-bbox.csv",
                  classes_csv or ann_dir / "class-descriptions-boxable.csv"]
        space = label_space(conv, label_map, out.parent / "openimages_label_map.json", synonyms=synonyms,
                            strict=strict, problems=problems)
        conv, lm_path = space.conversion, space.path
        write_conversion(conv, out, inputs=inputs, label_map_path=lm_path)
    _finish(rep, "openimages2odvg", conv, {"output": str(out), "label_map": str(lm_path), **space.rows}, problems)


@convert_app.command("coco2ovd")
def coco2ovd(
    data_root: Annotated[Path | None, typer.Argument(help="COCO root holding annotations/instances_{train,val}2017.json.")] = None,
    train: Annotated[Path | None, typer.Option("--train", help="Train json. Default: DATA_ROOT/annotations/instances_train2017.json.")] = None,
    val: Annotated[Path | None, typer.Option("--val", help="Val json. Default: DATA_ROOT/annotations/instances_val2017.json.")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out-dir", help="Default: beside the inputs.")] = None,
    strict: Strict = False,
    force: Force = False,
    quiet: Quiet = False,
    json_mode: Json = False,
) -> None:
    """COCO → the open-vocabulary 48/17 split (COCO jsons, not ODVG).

    Writes <train>_seen_2.json (48 base classes only) and <val>_all_2.json (48 base + 17
    novel); kept categories get "split": "seen"/"unseen"; images left without annotations are
    dropped; crowd annotations are kept. Convert the results with 'convert coco2odvg'.

    [bold]Examples[/bold]

      odvgkit convert coco2ovd data/coco

      odvgkit convert coco2ovd --train instances_train2017.json --val instances_val2017.json --out-dir ovd/
    """
    from odvgkit.convert.base import default_output
    from odvgkit.convert.ovd import coco_to_ovd
    from odvgkit.errors import OdvgError, ProblemLog

    if train is None or val is None:
        if data_root is None:
            raise OdvgError("give DATA_ROOT or both --train and --val", exit_code=2)
        train = train or data_root / "annotations" / "instances_train2017.json"
        val = val or data_root / "annotations" / "instances_val2017.json"
    rep = reporter(quiet, json_mode)
    problems = ProblemLog(strict=strict)
    train_out = default_output(train, "_seen_2.json")
    val_out = default_output(val, "_all_2.json")
    if out_dir is not None:
        train_out, val_out = out_dir / train_out.name, out_dir / val_out.name
    with rep.progress("coco2ovd"):
        stats = coco_to_ovd(train, val, train_out, val_out, problems)
    rows: dict[str, object] = {"train_output": str(train_out), "val_output": str(val_out)}
    for part, counts in stats.items():
        rows.update({f"{part}:{k}": v for k, v in sorted(counts.items())})
    rep.summary("coco2ovd", rows, problems)
    if problems.n_errors:
        raise typer.Exit(1)


@convert_app.command("lvis2ovd")
def lvis2ovd(
    input: Annotated[Path, typer.Argument(help="lvis2odvg output (lvis_v1_train_od.json).")],
    lvis_json: Annotated[Path, typer.Option("--lvis-json", help="An LVIS v1 json whose categories carry 'frequency' (e.g. lvis_v1_val.json).")],
    label_map: Annotated[Path | None, typer.Option("--label-map", help="Input label map. Default: lvis_v1_label_map.json beside the input.")] = None,
    output: Output = None,
    out_label_map: Annotated[Path | None, typer.Option("--out-label-map", help="Default: <label map>_norare.json.")] = None,
    renumber: Annotated[bool, typer.Option("--renumber", help="Dense labels 0..K-1 (rewrites labels). Default: upstream's sparse keys.")] = False,
    strict: Strict = False,
    force: Force = False,
    quiet: Quiet = False,
    json_mode: Json = False,
) -> None:
    """LVIS ODVG → open-vocabulary base set: drop the instances of rare classes.

    Records are all kept (an image may end with no instances). The label map keeps upstream's
    original, sparse keys unless --renumber makes it dense (labels rewritten to match).

    [bold]Examples[/bold]

      odvgkit convert lvis2ovd annotations/lvis_v1_train_od.json --lvis-json annotations/lvis_v1_val.json

      odvgkit convert lvis2ovd lvis_v1_train_od.json --lvis-json lvis_v1_val.json --renumber
    """
    from odvgkit.convert.base import default_output, write_conversion
    from odvgkit.convert.ovd import lvis_to_ovd
    from odvgkit.errors import ProblemLog

    rep = reporter(quiet, json_mode)
    problems = ProblemLog(strict=strict)
    lm_in = label_map or input.parent / "lvis_v1_label_map.json"
    out = output or default_output(input, "_norare.json")
    lm_out = out_label_map or default_output(lm_in, "_norare.json")
    if out_label_map is None and output is not None:
        lm_out = out.parent / lm_out.name
    with rep.progress(f"lvis2ovd {input.name}") as advance:
        conv = lvis_to_ovd(input, lm_in, lvis_json, renumber=renumber, problems=problems)
        write_conversion(conv, out, inputs=[input, lm_in, lvis_json], label_map_path=lm_out)
        advance(conv.stats["images"])
    _finish(rep, "lvis2ovd", conv, {"output": str(out), "label_map": str(lm_out)}, problems)


@convert_app.command("grefcoco2odvg")
def grefcoco2odvg(
    grefs: Annotated[Path, typer.Argument(help="Official gRefCOCO grefs(unc).json.")],
    instances: Annotated[Path, typer.Argument(help="The instances.json shipped with it.")],
    output: Output = None,
    split: Annotated[str, typer.Option("--split", help="train | val | testA | testB.")] = "train",
    no_target: Annotated[str, typer.Option("--no-target", help="exclude (default, for training) | include | only (for the evaluator).")] = "exclude",
    caption_field: Annotated[str, typer.Option("--caption-field", help="sent (normalised, default) or raw.")] = "sent",
    strict: Strict = False,
    force: Force = False,
    quiet: Quiet = False,
    json_mode: Json = False,
) -> None:
    r"""gRefCOCO (official files) → ODVG VG, one record per referring sentence.

    Multi-target expressions keep all their boxes (one region, a list of boxes). No-target
    expressions become records with no regions and "no_target": true, excluded by default;
    --no-target include/only writes them for evaluation. Records carry ref_id and sent_id.

    [bold]Examples[/bold]

      odvgkit convert grefcoco2odvg grefcoco/grefs\(unc\).json grefcoco/instances.json -o grefcoco_train_vg.json

      odvgkit convert grefcoco2odvg grefs\(unc\).json instances.json --split val --no-target include -o grefcoco_val_vg.json
    """
    from odvgkit.convert.base import write_conversion
    from odvgkit.convert.grefcoco import grefcoco_to_odvg
    from odvgkit.errors import ProblemLog

    rep = reporter(quiet, json_mode)
    problems = ProblemLog(strict=strict)
    out = output or grefs.parent / f"grefcoco_{split}_vg.json"
    with rep.progress(f"grefcoco2odvg {split}"):
        conv = grefcoco_to_odvg(grefs, instances, split=split, caption_field=caption_field, no_target=no_target,
                                problems=problems)
        write_conversion(conv, out, inputs=[grefs, instances])
    _finish(rep, "grefcoco2odvg", conv, {"output": str(out)}, problems)


@convert_app.command("odinw-override")
def odinw_override(
    data_root: Annotated[Path, typer.Argument(help="ODinW root (holding ChessPieces/, CottontailRabbits/, …).")],
    table: Annotated[Path | None, typer.Option("--table", help='JSON {"relative/annotations.json": [categories]}. Default: upstream\'s three datasets.')] = None,
    output_name: Annotated[str, typer.Option("--output-name", help="File written beside each original.")] = "new_annotations_without_background.json",
    force: Force = False,
    quiet: Quiet = False,
    json_mode: Json = False,
) -> None:
    """Rewrite ODinW35 category names for prompting into new annotation files.

    Writes new_annotations_without_background.json beside each listed original (which is never
    touched), with the categories replaced; all files are checked first and appear together.

    [bold]Examples[/bold]

      odvgkit convert odinw-override data/odinw

      odvgkit convert odinw-override data/odinw --table my_overrides.json
    """
    from odvgkit.convert.odinw import load_overrides, override_categories

    rep = reporter(quiet, json_mode)
    written = override_categories(data_root, load_overrides(table), output_name)
    rep.summary("odinw-override", {path: f"{n} categories" for path, n in written.items()})


def register(app: typer.Typer) -> None:
    app.add_typer(convert_app, name="convert", rich_help_panel="Convert")
