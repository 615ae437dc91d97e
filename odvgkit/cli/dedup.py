"""``odvgkit dedup …``: remove benchmark images from COCO train2017 (RefCOCO family, LVIS val)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from odvgkit.cli._common import Force, Json, Quiet, reporter

dedup_app = typer.Typer(
    help="Remove evaluation images (RefCOCO/+/g, gRefCOCO, LVIS val) from COCO train2017.",
    no_args_is_help=True,
)

CocoTrain = Annotated[
    Path,
    typer.Option("--coco-train", help="COCO train json (instances_train2017.json) or an ODVG file made from it."),
]
Output = Annotated[
    Path | None, typer.Option("--output", "-o", help="Filtered training file. Default: beside the input.")
]
Manifest = Annotated[
    Path | None,
    typer.Option("--manifest", help="Removal manifest (JSON). Default: <output stem>_removed.json."),
]


def _run(
    train: Path,
    eval_sources: list,  # list[Source]
    output: Path | None,
    manifest: Path | None,
    suffix: str,
    title: str,
    quiet: bool,
    json_mode: bool,
    skipped: list[Path] | None = None,
) -> None:
    from odvgkit.convert.base import default_output
    from odvgkit.curate.dedup import write_removal
    from odvgkit.curate.leakage import audit_source, index_eval
    from odvgkit.curate.sources import open_source
    from odvgkit.errors import ProblemLog

    rep = reporter(quiet, json_mode)
    problems = ProblemLog(strict=True)
    src = open_source(train)
    out = output or default_output(src.path, suffix)
    man = manifest or out.with_name(default_output(out, "_removed.json").name)
    with rep.progress(f"indexing {len(eval_sources)} evaluation files", total=None, unit="images") as adv:
        index = index_eval(eval_sources, ("id",), problems=problems, advance=adv)
    with rep.progress(f"auditing {src.path.name}", total=None, unit="images") as adv:
        audit = audit_source(src, index, problems=problems, advance=adv)
    counts = write_removal(audit, out, man)
    rows = {
        "input": str(src.path),
        "output": str(out),
        "manifest": str(man),
        "evaluation_files": len(eval_sources),
        "evaluation_images": len(index.images),
        "train_images": audit.images,
        "removed_images": len(audit.leaks),
        **counts,
    }
    if skipped:
        rows["skipped_files"] = ", ".join(p.name for p in skipped)
    table = [{k: v for k, v in r.items() if k not in ("train",)} for r in audit.pairs()]
    rep.summary(title, rows, tables={"leaks": table})


def _require_lvis(path: Path, kind: str) -> None:
    """``--lvis-val`` must be LVIS: given COCO train itself (or any COCO json), every training image
    "leaks" and the output is empty. LVIS names images by ``coco_url`` and has ``neg_category_ids``;
    the first batch of images is enough to tell (the rest of the file is not read here)."""
    from typing import Any

    from odvgkit.curate.sources import object_kind
    from odvgkit.errors import OdvgError
    from odvgkit.io.jsonstream import stream_members

    found = "not a JSON object with an 'images' list" if kind != "json-object" else None
    if found is None:
        found = "no images"
        for _, _, items in stream_members(path, {"images": Any}):
            if items:
                found = object_kind(path, {"images": items})
                break
        if found == "lvis":
            return
        found = f"a {found} file" if found != "no images" else found
    raise OdvgError(f"{path}: --lvis-val expects the LVIS v1 val json (images named by coco_url), got {found}")


@dedup_app.command("refcoco")
def refcoco(
    coco_train: CocoTrain,
    refexp: Annotated[
        list[Path],
        typer.Option("--refexp", help="MDETR annotation dir / files, grefs(unc).json, refs(*).p; repeatable."),
    ],
    output: Output = None,
    manifest: Manifest = None,
    force: Force = False,
    quiet: Quiet = False,
    json_mode: Json = False,
) -> None:
    """Remove every image of every RefCOCO/RefCOCO+/RefCOCOg/gRefCOCO evaluation split from COCO train.

    Reads val, testA, testB and test (upstream reads only val, so test images stay in training):
    MDETR [bold]finetune_<refcoco|refcoco+|refcocog|grefcoco>_<split>.json[/bold] (by
    images[].original_id), official [bold]grefs(unc).json[/bold] and [bold]refs(unc|umd|google).p[/bold]
    (their non-train refs, by image_id). Images are matched by COCO id, which 2014 and 2017 file names
    share. Writes the filtered json (file order, all top-level keys kept) and a removal manifest
    naming the benchmark and split behind every removed image.

    [bold]Examples[/bold]

      odvgkit dedup refcoco --coco-train annotations/instances_train2017.json --refexp mdetr_annotations/

      odvgkit dedup refcoco --coco-train instances_train2017.json --refexp mdetr/ --refexp grefcoco/grefs(unc).json -o train_clean.json
    """
    from odvgkit.curate.sources import scan_refexp

    sources, skipped = scan_refexp(refexp)
    _run(coco_train, sources, output, manifest, "_norefexp.json", "dedup refcoco", quiet, json_mode, skipped)


@dedup_app.command("lvis")
def lvis(
    coco_train: CocoTrain,
    lvis_val: Annotated[Path, typer.Option("--lvis-val", help="LVIS v1 val json (lvis_v1_val.json).")],
    output: Output = None,
    manifest: Manifest = None,
    force: Force = False,
    quiet: Quiet = False,
    json_mode: Json = False,
) -> None:
    """Remove the LVIS v1 val images (≈15k of them come from COCO train2017) from COCO train.

    LVIS images carry COCO ids (and coco_url names), so matching is by id.

    [bold]Examples[/bold]

      odvgkit dedup lvis --coco-train annotations/instances_train2017.json --lvis-val lvis_v1_val.json

      odvgkit dedup lvis --coco-train coco_train_od.jsonl --lvis-val lvis_v1_val.json -o coco_nolvis_od.jsonl
    """
    from odvgkit.curate.sources import open_source
    from odvgkit.errors import OdvgError

    src = open_source(lvis_val)
    if src.kind == "odvg":
        raise OdvgError(f"{lvis_val}: expected the LVIS v1 val json, got ODVG records")
    _require_lvis(lvis_val, src.kind)
    _run(coco_train, [src], output, manifest, "_nolvisval.json", "dedup lvis", quiet, json_mode)


def register(app: typer.Typer) -> None:
    app.add_typer(dedup_app, name="dedup", rich_help_panel="Curate")
