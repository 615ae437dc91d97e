"""The pseudo-label loop: round k labels with checkpoint k−1, (review), finetunes, evaluates.

Every round lives in ``W/round_k/`` (see :mod:`.rounds`) and is completed atomically; a re-run of
the same command resumes after the last complete round. Round 0 is the unlabeled ODVG file built by
:mod:`.init`. Round k (1 ≤ k ≤ N):

1. label round 0's records with the previous checkpoint (the ``--checkpoint`` for k = 1) →
   ``labels.jsonl`` (kept in the partial dir, so an interrupted round does not label again);
2. with ``review``: stop until ``reviewed.jsonl`` is put into ``W/.round_k.partial/`` (exported from
   FiftyOne), then train on it instead of ``labels.jsonl``;
3. finetune from the previous weights (``load_from``, never ``resume``) at ``lr_scale`` × the
   preset's finetune learning rate, plus optional replay sources drawn at a ratio;
4. evaluate the new checkpoint on ``labeled`` (ground truth) when given → ``metrics.json``;
5. write ``round.json`` (provenance) and rename the partial dir to ``round_k``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from odvgkit.errors import OdvgError
from odvgkit.io import read_label_map, read_records, write_label_map, write_records
from odvgkit.pseudolabel import init as init_mod
from odvgkit.pseudolabel import rounds
from odvgkit.pseudolabel.label import check_unit, label_records, parse_class_thr, sha256_file

# options that must be equal when resuming (changing them mid-loop would mix incompatible rounds)
_FIXED = ("images", "classes", "label_map", "captions", "checkpoint", "score_thr", "class_thr", "nms",
          "model", "finetune_mode", "replay", "labeled")


@dataclass
class LoopOptions:
    rounds: int
    images: Path
    work_dir: Path
    checkpoint: Path
    classes: list[str] | None = None
    label_map: Path | None = None
    captions: Path | None = None
    labeled: Path | None = None
    replay: list[str] = field(default_factory=list)  # "SPEC:RATIO"
    score_thr: float = 0.3
    class_thr: list[str] = field(default_factory=list)
    nms: float | None = 0.5
    chunked_size: int = -1
    review: bool = False
    model: str | None = None  # None: the preset recorded in the checkpoint
    text_encoder: str | None = None
    max_iters: int | None = None
    epochs: float | None = None
    batch_size: int = 2
    lr: float | None = None
    lr_scale: float = 0.1
    finetune_mode: str = "open-set"
    seed: int = 0

    def fixed(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: (str(d[k]) if isinstance(d[k], Path) else d[k]) for k in _FIXED}


@dataclass
class LoopResult:
    work_dir: Path
    done: list[int]
    skipped: list[int]
    waiting_review: int | None = None
    rounds: list[dict[str, Any]] = field(default_factory=list)


def parse_replay(spec: str) -> tuple[str, float]:
    """``'FILE[,images=DIR,label_map=F]:RATIO'`` → (training spec, ratio of replay to pseudo-label records)."""
    head, sep, ratio = spec.rpartition(":")
    if not sep or not head:
        raise OdvgError(f"--replay {spec!r}: expected FILE:RATIO (e.g. pretrain.jsonl:0.5)", 2)
    try:
        r = float(ratio)
    except ValueError:
        raise OdvgError(f"--replay {spec!r}: ratio {ratio!r} is not a number", 2) from None
    if not r > 0:
        raise OdvgError(f"--replay {spec!r}: ratio must be > 0", 2)
    if not Path(head.split(",")[0]).is_file():
        raise OdvgError(f"--replay {head.split(',')[0]}: no such file")
    return head, r


def validate(opts: LoopOptions) -> None:
    """Fail on bad options before anything is written."""
    init_mod.list_images(opts.images)  # empty or missing folder: fail before anything is written
    if opts.rounds < 1:
        raise OdvgError("--rounds must be ≥ 1", 2)
    given = [x for x in (opts.classes, opts.label_map, opts.captions) if x]
    if len(given) != 1:
        raise OdvgError("give exactly one of --classes, --label-map, --captions", 2)
    check_unit("--score-thr", opts.score_thr)
    check_unit("--nms", opts.nms)
    if not 0 < opts.lr_scale <= 1:
        raise OdvgError("--lr-scale must be in (0, 1]", 2)
    if not opts.checkpoint.is_file():
        raise OdvgError(f"--checkpoint {opts.checkpoint}: checkpoint not found")
    if opts.labeled is not None and not opts.labeled.is_file():
        raise OdvgError(f"--labeled {opts.labeled}: no such file")
    for spec in opts.replay:
        parse_replay(spec)


def _check_resume(opts: LoopOptions) -> None:
    import json

    path = opts.work_dir / "loop.json"
    if path.is_file() and rounds.last_complete(opts.work_dir) is not None:
        old = json.loads(path.read_text(encoding="utf-8"))
        changed = [k for k in _FIXED if old.get(k) != opts.fixed()[k]]
        if changed:
            k = changed[0]
            raise OdvgError(f"{opts.work_dir}: this loop was started with {k}={old.get(k)!r}, now {opts.fixed()[k]!r}; "
                            "use the same options to resume, or another --work-dir")
    else:
        rounds.write_json(path, opts.fixed())


def make_round0(opts: LoopOptions) -> dict[str, Any]:
    """Unlabeled records (+ label map) into ``round_0`` (atomic)."""
    start = time.time()
    part = rounds.partial_dir(opts.work_dir, 0)
    shutil.rmtree(part, ignore_errors=True)
    part.mkdir(parents=True)
    images = opts.images
    if opts.captions is not None:
        records = init_mod.vg_records(images, opts.captions)
        lm = None
    else:
        records = init_mod.od_records(images)
        lm = _label_map(opts)
    write_records(part / "records.jsonl", records, force=True)  # the loop owns its work dir
    if lm is not None:
        write_label_map(part / "label_map.json", lm, force=True)
    manifest = {"round": 0, "kind": "vg" if lm is None else "od", "images": str(images.resolve()),
                "records": len(records), "label_map": lm,
                "sources": {k: str(v) for k, v in (("captions", opts.captions), ("label_map", opts.label_map)) if v},
                "seconds": round(time.time() - start, 3)}
    rounds.complete(opts.work_dir, 0, manifest)
    return manifest


def _label_map(opts: LoopOptions) -> dict[str, str]:
    if opts.label_map is not None:
        lm = read_label_map(opts.label_map)
        if not lm:
            raise OdvgError(f"--label-map {opts.label_map}: empty label map")
        return lm
    return {str(i): n for i, n in enumerate(opts.classes or [])}


def _boxes(records: list[dict[str, Any]]) -> int:
    return sum(len((r.get("detection") or {}).get("instances") or []) + len((r.get("grounding") or {}).get("regions") or [])
               for r in records)


def _train_specs(opts: LoopOptions, train_file: Path, lm_file: Path | None, n_records: int) -> list[str]:
    spec = f"{train_file},images={opts.images.resolve()}" + (f",label_map={lm_file}" if lm_file else "")
    specs = [spec]
    for rep in opts.replay:
        head, ratio = parse_replay(rep)
        specs.append(f"{head},samples={max(1, round(ratio * n_records))}")
    return specs


def checkpoint_preset(path: Path) -> str:
    """The odvgkit model preset recorded in a checkpoint's config; else a one-line error."""
    from odvgkit_train.inference import config_from_checkpoint

    cfg = config_from_checkpoint(path)
    preset = (cfg.get("odvgkit") or {}).get("model_preset") if cfg is not None else None
    if not preset:
        raise OdvgError(f"{path}: checkpoint records no odvgkit model preset; pass --model tiny|swin-t|swin-b|swin-l", 2)
    return str(preset)


def checkpoint_text_encoder(path: Path) -> str:
    """The BERT directory recorded in a checkpoint's config (``""`` when it has none)."""
    from odvgkit_train.inference import config_from_checkpoint

    cfg = config_from_checkpoint(path)
    try:
        return str(cfg.model.language_model.name) if cfg is not None else ""
    except AttributeError:
        return ""


def run_round(opts: LoopOptions, k: int, log: Callable[[str], None], on_image: Callable[[int], None] | None = None,
              warn: Callable[[str], None] | None = None) -> dict[str, Any] | None:
    """Build round ``k`` (≥ 1); ``None`` when it stops to wait for review."""
    from odvgkit_train import api
    from odvgkit_train.config import write_config

    work = opts.work_dir
    r0 = rounds.round_dir(work, 0)
    prev_ckpt = opts.checkpoint if k == 1 else rounds.round_dir(work, k - 1) / "checkpoint.pth"
    part = rounds.partial_dir(work, k)
    part.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    ckpt_sha = sha256_file(prev_ckpt)
    lm_src = r0 / "label_map.json"
    lm = read_label_map(lm_src) if lm_src.is_file() else None
    class_thr = parse_class_thr(opts.class_thr, list(lm.values())) if lm else {}
    if opts.class_thr and lm is None:
        raise OdvgError("--class-thr applies to classes (OD); VG rounds use --score-thr", 2)
    thresholds = {"score_thr": opts.score_thr, "class_thr": class_thr, "nms": opts.nms}
    labels = part / "labels.jsonl"
    lm_file = part / "label_map.json" if lm else None
    # 1. label (reused when an interrupted run already wrote them with the same checkpoint)
    t = time.time()
    if not (labels.is_file() and (part / "labels.sha256").is_file()
            and (part / "labels.sha256").read_text().strip() == ckpt_sha):
        log(f"round {k}: labelling with {prev_ckpt.name}")
        source = r0 / "records.jsonl"
        net = api.load_model(prev_ckpt, text_encoder=opts.text_encoder)
        tag = {"round": k, "checkpoint": ckpt_sha[:16]}
        recs = label_records(list(read_records(source)), source, net, opts.images, lm, score_thr=opts.score_thr,
                             class_thr=class_thr, nms_thr=opts.nms, chunked_size=opts.chunked_size, tag=tag,
                             on_image=on_image, warn=warn)
        write_records(labels, recs, force=True)  # relabelled with another checkpoint: replaced
        if lm is not None:
            write_label_map(part / "label_map.json", lm, force=True)
        rounds.write_json(part / "labels.provenance.json", {"round": k, "checkpoint": str(prev_ckpt),
                                                           "checkpoint_sha256": ckpt_sha, **thresholds})
        (part / "labels.sha256").write_text(ckpt_sha + "\n")
    timings["label_s"] = round(time.time() - t, 3)
    # 2. review
    reviewed = part / "reviewed.jsonl"
    train_file = labels
    if opts.review:
        if not reviewed.is_file():
            return None
        train_file = reviewed
    records = [rec for _, rec in read_records(train_file)]
    n_boxes = _boxes(records)
    if n_boxes == 0:
        raise OdvgError(f"{train_file}: round {k} has no box above the thresholds; lower --score-thr / --class-thr")
    # 3. finetune
    t = time.time()
    train_dir = part / "train"
    shutil.rmtree(train_dir, ignore_errors=True)
    from odvgkit_train import presets

    encoder = opts.text_encoder or checkpoint_text_encoder(prev_ckpt)
    lr = opts.lr if opts.lr is not None else presets.BASE_LR["finetune"][str(opts.model)] * opts.lr_scale
    cfg = api.build_config(_train_specs(opts, train_file, lm_file, len(records)), stage="finetune", model=opts.model,
                           text_encoder=encoder, work_dir=train_dir, max_iters=opts.max_iters,
                           epochs=opts.epochs, batch_size=opts.batch_size, lr=lr, load_from=str(prev_ckpt.resolve()),
                           finetune_mode=opts.finetune_mode, seed=opts.seed, log_interval=1, write=False)
    cfg["experiment_name"] = f"pseudolabel_round{k}"
    cfg["visualizer"]["name"] = f"pseudolabel_round{k}_{time.time_ns()}"
    write_config(cfg, train_dir / "config.py")
    api.check_load_from(cfg)
    log(f"round {k}: finetuning on {train_file.name} ({len(records)} images, {n_boxes} boxes)")
    with contextlib.redirect_stdout(sys.stderr):
        result = api.train(cfg)
    if result.checkpoint is None:
        raise OdvgError(f"round {k}: training produced no checkpoint in {train_dir}")
    ckpt = part / "checkpoint.pth"
    os.replace(result.checkpoint, ckpt)  # one copy: train/last_checkpoint now points at nothing
    timings["train_s"] = round(time.time() - t, 3)
    # 4. metrics
    metrics = None
    if opts.labeled is not None:
        t = time.time()
        metric = "coco" if lm else "flickr30k"
        item = {"path": opts.labeled, "images": opts.images, "label_map": (opts.label_map or lm_file) if lm else None}
        metrics = api.evaluate(item, ckpt, metric, text_encoder=opts.text_encoder)
        metrics = {k2: v for k2, v in metrics.items() if not isinstance(v, (list, dict))}
        rounds.write_json(part / "metrics.json", metrics)
        timings["eval_s"] = round(time.time() - t, 3)
    manifest = {
        "round": k,
        "checkpoint_in": str(prev_ckpt.resolve()),
        "checkpoint_in_sha256": ckpt_sha,
        "checkpoint": "checkpoint.pth",
        "checkpoint_sha256": sha256_file(ckpt),
        **thresholds,
        "sources": {"records": str((r0 / "records.jsonl").resolve()), "labels": "labels.jsonl",
                    "trained_on": train_file.name, "replay": list(opts.replay), "labeled": str(opts.labeled) if opts.labeled else None},
        "images": len(records),
        "boxes": n_boxes,
        "train": {"iterations": result.iterations, "lr": lr, "first_loss": result.losses[0] if result.losses else None,
                  "last_loss": result.losses[-1] if result.losses else None, "config": "train/config.py"},
        "metrics": metrics,
        "timings": timings,
    }
    rounds.complete(work, k, manifest)
    return manifest


def run_loop(opts: LoopOptions, log: Callable[[str], None] = lambda _: None,
             on_image: Callable[[int], None] | None = None, warn: Callable[[str], None] | None = None) -> LoopResult:
    """Run (or resume) the loop up to ``opts.rounds``; complete rounds are skipped, never rewritten."""
    validate(opts)
    if opts.model is None:
        opts.model = checkpoint_preset(opts.checkpoint)
    opts.work_dir.mkdir(parents=True, exist_ok=True)
    _check_resume(opts)
    last = rounds.last_complete(opts.work_dir)
    result = LoopResult(opts.work_dir, [], list(range(0, (last if last is not None else -1) + 1)))
    if last is None:
        log("round 0: building the unlabeled records")
        result.rounds.append(make_round0(opts))
        result.done.append(0)
        last = 0
    elif last >= opts.rounds:
        return result
    for k in range(last + 1, opts.rounds + 1):
        manifest = run_round(opts, k, log, on_image, warn)
        if manifest is None:
            result.waiting_review = k
            return result
        result.rounds.append(manifest)
        result.done.append(k)
    return result
