"""``odvgkit pseudolabel init|label|diff|loop``: versioned rounds of label → review → finetune.

``init`` and ``diff`` are pure Python; ``label`` and ``loop`` need the ``train`` extra and print a
one-line hint naming it when it is missing. Heavy imports live inside the command bodies.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from odvgkit.cli._common import Json, Quiet, _set_force, reporter
from odvgkit.errors import OdvgError, require

PANEL = "Train"

pl_app = typer.Typer(
    help="Pseudo-label loops: build unlabeled ODVG, label it with Grounding DINO, diff rounds, loop with finetuning.",
    no_args_is_help=True,
)

ScoreThr = Annotated[float, typer.Option("--score-thr", help="Keep boxes scoring at least this (0–1).")]
ClassThr = Annotated[list[str] | None, typer.Option("--class-thr", help="Per-class threshold NAME=THR (repeatable or comma-separated).")]
Nms = Annotated[float, typer.Option("--nms", help="NMS IoU per class/phrase (0–1); 1 disables it.")]
Chunked = Annotated[int, typer.Option("--chunked-size", help="Classes per prompt chunk (label maps over 256 tokens).")]
TextEncoder = Annotated[Path | None, typer.Option("--text-encoder", help="Local BERT directory (default: the checkpoint's).")]
Overwrite = Annotated[
    bool, typer.Option("--overwrite", "--force", help="Replace an existing output file.", callback=_set_force)
]


def _need_train() -> None:
    for mod in ("torch", "mmengine", "mmdet", "odvgkit_train"):
        require(mod, "train")


def _no_clobber(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise OdvgError(f"{path}: already exists; a finished round is never overwritten (choose another -o or pass --overwrite)")


@pl_app.command("init")
def init_cmd(
    images: Annotated[Path, typer.Option("--images", "-i", help="Image folder (searched recursively).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Unlabeled ODVG file (.jsonl/.jsonl.gz/.parquet).")],
    classes: Annotated[str | None, typer.Option("--classes", help="Class names, 'cat, dog' (OD).")] = None,
    label_map: Annotated[Path | None, typer.Option("--label-map", help="Label map JSON {\"0\": name} (OD).")] = None,
    captions: Annotated[
        Path | None,
        typer.Option("--captions", help="Captions (VG): JSONL {filename, caption[, phrases | tokens_positive]} or TSV filename<TAB>caption."),
    ] = None,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
    json_mode: Json = False,
) -> None:
    """Build the unlabeled round-0 ODVG file: image sizes from headers, classes or captions.

    OD (--classes / --label-map): one record per image with no instances, and the label map beside
    the output (round0.jsonl → round0_label_map.json). VG (--captions): one record per caption with a
    region per phrase at the placeholder box [0, 0, 1, 1]; phrases from 'tokens_positive', from
    'phrases' (found in the caption), or extracted by an offline noun-phrase heuristic.

    [bold]Examples[/bold]

      odvgkit pseudolabel init --images photos/ --classes 'cat, dog' -o round0.jsonl

      odvgkit pseudolabel init --images photos/ --captions captions.jsonl -o round0_vg.jsonl
    """
    from odvgkit.io import AtomicGroup, read_label_map, record_writer, write_label_map
    from odvgkit.pseudolabel import init as pl

    rep = reporter(quiet, json_mode)
    given = [x for x in (classes, label_map, captions) if x]
    if len(given) != 1:
        raise OdvgError("give exactly one of --classes, --label-map, --captions", 2)
    _no_clobber(output, overwrite)
    lm: dict[str, str] | None = None
    if captions is not None:
        records = pl.vg_records(images, captions)
    else:
        if label_map is not None:
            lm = read_label_map(label_map)
            bad = [k for k in lm if not k.isdigit()]
            if bad or not lm:
                raise OdvgError(f"{label_map}: label map keys must be label ids '0', '1', … (got {bad[:3] or 'none'})")
        else:
            lm = {str(i): n for i, n in enumerate(pl.parse_classes(classes or ""))}
        records = pl.od_records(images)
    with AtomicGroup() as group:
        with record_writer(group, output) as w:
            for rec in records:
                w.write(rec)
        if lm is not None:
            write_label_map(pl.label_map_path(output), lm, group)
    # an image may carry several captions (one VG record each): count both, never records as images
    rows: dict[str, Any] = {"output": str(output), "kind": "vg" if lm is None else "od",
                            "images": len({r["filename"] for r in records}), "records": len(records)}
    if lm is not None:
        rows.update(label_map=str(pl.label_map_path(output)), classes=len(lm))
    else:
        rows["phrases"] = sum(len(r["grounding"]["regions"]) for r in records)
    rep.summary("pseudolabel init", rows)


@pl_app.command("label")
def label_cmd(
    data: Annotated[Path, typer.Argument(help="ODVG file to label (e.g. from 'pseudolabel init').", show_default=False)],
    checkpoint: Annotated[Path, typer.Option("--checkpoint", help="Grounding DINO checkpoint (.pth).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Labelled ODVG file.")],
    image_root: Annotated[Path | None, typer.Option("--image-root", help="Image root (default: the input's folder).")] = None,
    label_map: Annotated[Path | None, typer.Option("--label-map", help="Label map (default: <input>_label_map.json).")] = None,
    score_thr: ScoreThr = 0.3,
    class_thr: ClassThr = None,
    nms: Nms = 0.5,
    chunked_size: Chunked = -1,
    round_no: Annotated[int | None, typer.Option("--round", help="Round number for the provenance (default: input's + 1).")] = None,
    text_encoder: TextEncoder = None,
    model: Annotated[str | None, typer.Option("--model", help="Preset, when the checkpoint carries no config.")] = None,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
    json_mode: Json = False,
) -> None:
    """Label an ODVG file with a checkpoint: scored boxes, thresholds, NMS, provenance.

    OD records are prompted with the label map's classes, VG records with their caption spans.
    Writes the output, its label map (OD) and OUTPUT.provenance.json (checkpoint sha256,
    thresholds, round) together; every record gets 'pseudolabel': {round, checkpoint}.

    [bold]Examples[/bold]

      odvgkit pseudolabel label round0.jsonl --checkpoint gdino.pth --score-thr 0.3 -o round1.jsonl

      odvgkit pseudolabel label round0.jsonl --checkpoint gdino.pth --class-thr cat=0.4 --nms 0.5 -o round1.jsonl
    """
    from odvgkit.pseudolabel.label import check_unit

    check_unit("--score-thr", score_thr)
    check_unit("--nms", nms)
    _need_train()
    from odvgkit.pseudolabel.label import label_file

    rep = reporter(quiet, json_mode)
    _no_clobber(output, overwrite)
    os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))
    with rep.progress("label", unit="images") as advance, contextlib.redirect_stdout(sys.stderr):
        prov = label_file(data, output, checkpoint, image_root=image_root, label_map=label_map, score_thr=score_thr,
                          class_thr=class_thr or [], nms_thr=nms, chunked_size=chunked_size, round_no=round_no,
                          text_encoder=text_encoder, model=model, on_image=advance, warn=rep.warn)
    rep.summary("pseudolabel label", {"output": str(output), **{k: v for k, v in prov.items() if not isinstance(v, dict)}})


@pl_app.command("diff")
def diff_cmd(
    a: Annotated[Path, typer.Argument(help="Earlier labels (ODVG).", show_default=False)],
    b: Annotated[Path, typer.Argument(help="Later labels (ODVG).", show_default=False)],
    match_iou: Annotated[float, typer.Option("--match-iou", help="IoU at which two boxes of one class/phrase are the same object.")] = 0.5,
    same_iou: Annotated[float, typer.Option("--same-iou", help="IoU at or above which a matched box counts as unchanged, not moved.")] = 0.95,
    quiet: Quiet = False,
    json_mode: Json = False,
) -> None:
    """Per class / phrase: boxes added, removed, moved (IoU) and score shifts between two label files.

    Records pair by filename; boxes match greedily by IoU within one image and class (OD) or
    phrase (VG), highest IoU first. See docs/pseudolabel.md for the exact rule.

    [bold]Examples[/bold]

      odvgkit pseudolabel diff round1.jsonl round2.jsonl

      odvgkit pseudolabel diff W/round_1/labels.jsonl W/round_2/labels.jsonl --json
    """
    from odvgkit.io import read_records
    from odvgkit.pseudolabel.diff import diff_records
    from odvgkit.pseudolabel.label import check_unit

    check_unit("--match-iou", match_iou)
    check_unit("--same-iou", same_iou)
    if match_iou <= 0:
        raise OdvgError("--match-iou must be > 0", 2)
    for p in (a, b):
        if not p.is_file():
            raise OdvgError(f"{p}: no such file")
    rep = reporter(quiet, json_mode)
    res = diff_records((r for _, r in read_records(a)), (r for _, r in read_records(b)), match_iou=match_iou,
                       same_iou=same_iou).as_dict()
    rows = {"a": str(a), "b": str(b), **{k: v for k, v in res.items() if k not in ("total", "per_key")}}
    rows.update({f"boxes_{k}": v for k, v in res["total"].items() if k != "key"})
    rep.summary("pseudolabel diff", rows, tables={"per_key": res["per_key"]})


@pl_app.command("loop")
def loop_cmd(
    rounds: Annotated[int, typer.Option("--rounds", help="Rounds of label → (review) → finetune.")],
    images: Annotated[Path, typer.Option("--images", "-i", help="Image folder.")],
    checkpoint: Annotated[Path, typer.Option("--checkpoint", help="Initial Grounding DINO checkpoint.")],
    work_dir: Annotated[Path, typer.Option("--work-dir", help="Loop directory: W/round_k/ per round; re-run to resume.")],
    classes: Annotated[str | None, typer.Option("--classes", help="Class names 'cat, dog' (OD).")] = None,
    label_map: Annotated[Path | None, typer.Option("--label-map", help="Label map (OD).")] = None,
    captions: Annotated[Path | None, typer.Option("--captions", help="Captions file (VG), as for 'init'.")] = None,
    labeled: Annotated[Path | None, typer.Option("--labeled", help="Ground-truth ODVG of (some of) the images: metrics per round.")] = None,
    replay: Annotated[list[str] | None, typer.Option("--replay", help="FILE[,images=DIR,label_map=F]:RATIO replayed beside the pseudo-labels.")] = None,
    score_thr: ScoreThr = 0.3,
    class_thr: ClassThr = None,
    nms: Nms = 0.5,
    chunked_size: Chunked = -1,
    review: Annotated[bool, typer.Option("--review", help="Stop after labelling each round until W/.round_k.partial/reviewed.jsonl exists.")] = False,
    model: Annotated[str | None, typer.Option("--model", help="Model preset: tiny | swin-t | swin-b | swin-l (default: the checkpoint's).")] = None,
    text_encoder: TextEncoder = None,
    max_iters: Annotated[int | None, typer.Option("--max-iters", help="Finetuning iterations per round.")] = None,
    epochs: Annotated[float | None, typer.Option("--epochs", help="Finetuning epochs per round (default 1).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Images per batch.")] = 2,
    lr: Annotated[float | None, typer.Option("--lr", help="Learning rate at batch 16 (default: preset finetune lr × --lr-scale).")] = None,
    lr_scale: Annotated[float, typer.Option("--lr-scale", help="Scale of the preset finetune lr when --lr is not given.")] = 0.1,
    finetune_mode: Annotated[str, typer.Option("--finetune-mode", help="open-set | closed-set | ovd.")] = "open-set",
    seed: Annotated[int, typer.Option("--seed", help="Training seed.")] = 0,
    quiet: Quiet = False,
    json_mode: Json = False,
) -> None:
    """Run (or resume) versioned pseudo-label rounds: label, optionally review, finetune, evaluate.

    Round k labels the images with checkpoint k−1, trains from it (load_from, lower lr) and keeps
    labels, config, checkpoint, metrics and round.json (provenance) in W/round_k/, which appears only
    when the round is complete. Re-running the same command resumes after the last complete round;
    finished rounds are never overwritten. With --review the loop stops after labelling: review
    W/.round_k.partial/labels.jsonl with 'odvgkit browse fiftyone', export it to
    W/.round_k.partial/reviewed.jsonl ('odvgkit browse export-fiftyone'), and run the loop again.

    [bold]Examples[/bold]

      odvgkit pseudolabel loop --rounds 3 --images photos/ --classes 'cat, dog' --checkpoint gdino.pth --work-dir W

      odvgkit pseudolabel loop --rounds 2 --images photos/ --classes 'cat, dog' --checkpoint gdino.pth --work-dir W --labeled gt.jsonl --replay o365.jsonl,images=o365/,label_map=o365_lm.json:0.5 --review
    """
    from odvgkit.pseudolabel.label import check_unit

    check_unit("--score-thr", score_thr)
    check_unit("--nms", nms)
    _need_train()
    from odvgkit.pseudolabel import init as pl
    from odvgkit.pseudolabel.loop import LoopOptions, run_loop

    rep = reporter(quiet, json_mode)
    os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))
    opts = LoopOptions(
        rounds=rounds, images=images, work_dir=work_dir, checkpoint=checkpoint,
        classes=pl.parse_classes(classes) if classes else None, label_map=label_map, captions=captions, labeled=labeled,
        replay=replay or [], score_thr=score_thr, class_thr=class_thr or [], nms=nms, chunked_size=chunked_size,
        review=review, model=model, text_encoder=str(text_encoder) if text_encoder else None, max_iters=max_iters,
        epochs=epochs, batch_size=batch_size, lr=lr, lr_scale=lr_scale, finetune_mode=finetune_mode, seed=seed,
    )
    with rep.progress("pseudolabel", unit="images") as advance:
        result = run_loop(opts, log=rep.info, on_image=advance, warn=rep.warn)
    rows: dict[str, Any] = {"work_dir": str(work_dir), "rounds_done": result.done, "rounds_skipped": result.skipped}
    if result.waiting_review is not None:
        part = work_dir / f".round_{result.waiting_review}.partial"
        rows["waiting_review"] = result.waiting_review
        rep.info(f"round {result.waiting_review} is labelled: review {part / 'labels.jsonl'} "
                 f"(odvgkit browse fiftyone {part / 'labels.jsonl'} -i {images}), export it to "
                 f"{part / 'reviewed.jsonl'} and run this command again")
    last = result.rounds[-1] if result.rounds else None
    if last is not None and last.get("round", 0) > 0:
        rows.update(last_round=last["round"], boxes=last["boxes"], checkpoint=str(work_dir / f"round_{last['round']}" / "checkpoint.pth"))
        for key, value in (last.get("metrics") or {}).items():
            if isinstance(value, (int, float)) and key in ("mAP", "AP50", "R@1", "R@5", "P@1"):
                rows[key] = value
    rep.summary("pseudolabel loop", rows)


def register(app: typer.Typer) -> None:
    app.add_typer(pl_app, name="pseudolabel", rich_help_panel=PANEL)
