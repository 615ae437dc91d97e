"""``odvgkit train detector``: a closed-set RTMDet baseline on the same ODVG OD data as Grounding DINO.

Registered into the ``train`` command group of :mod:`odvgkit.cli.train`; everything heavy lives in
:mod:`odvgkit_train.detector` (the ``train`` extra) and is imported inside the command body.
"""

from __future__ import annotations

import contextlib
import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from odvgkit.cli._common import Json, Quiet, reporter
from odvgkit.errors import OdvgError

_DECODE = re.compile(r"failed to load image: (\S+)")


def _image_error(exc: BaseException, sources: list[Any]) -> OdvgError | None:
    """mmcv's ``failed to load image: PATH`` (also inside a DataLoader worker's message) → one line."""
    m = _DECODE.search(str(exc))
    if not m:
        return None
    path = Path(m.group(1))
    from odvgkit.io import read_records

    for s in sources:
        for line, rec in read_records(s.ann_file):
            if (s.image_root / str(rec.get("filename", ""))).resolve() == path.resolve():
                return OdvgError(f"{s.ann_file}:{line}: filename: image {path} does not decode (not a readable image)")
    return OdvgError(f"{path}: image does not decode (not a readable image)")


def detector_cmd(
    data: Annotated[list[str], typer.Argument(help="ODVG OD files, each optionally FILE,images=DIR,label_map=FILE.",
                                              show_default=False)],
    model: Annotated[str, typer.Option("--model", help="rtmdet-tiny | rtmdet-s | rtmdet-m (mmdet's RTMDet configs).")] = "rtmdet-tiny",
    val: Annotated[str | None, typer.Option("--val", help="Validation ODVG OD file (same spec syntax): COCO mAP during training, best checkpoint kept.")] = None,
    load_from: Annotated[Path | None, typer.Option("--load-from", help="RTMDet checkpoint to start from (a different class head is re-initialised).")] = None,
    frozen_stages: Annotated[int, typer.Option("--frozen-stages", help="Freeze the stem and the first N backbone stages (-1: none).")] = -1,
    epochs: Annotated[int | None, typer.Option("--epochs", help="Epochs (default 300, RTMDet's schedule).")] = None,
    max_iters: Annotated[int | None, typer.Option("--max-iters", help="Train for N iterations instead of epochs.")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Images per iteration.")] = 8,
    lr: Annotated[float | None, typer.Option("--lr", help="Learning rate at a batch of 256 (RTMDet: 0.004); scaled by the batch.")] = None,
    img_size: Annotated[int, typer.Option("--img-size", help="Input size (RTMDet: 640; multiple of 32).")] = 640,
    stage2_epochs: Annotated[int | None, typer.Option("--stage2-epochs", help="Last epochs without Mosaic/MixUp (default: RTMDet's 20/300 of the run).")] = None,
    val_interval: Annotated[int | None, typer.Option("--val-interval", help="Validate every N epochs (default: 30 times per run, every epoch in stage 2).")] = None,
    work_dir: Annotated[Path, typer.Option("--work-dir", help="Run directory (config, logs, checkpoints).")] = Path("work_dirs/odvgkit_detector"),
    vis_backend: Annotated[str, typer.Option("--vis-backend", help="local | tensorboard (losses and sample images).")] = "local",
    image_root: Annotated[Path | None, typer.Option("--image-root", help="Default image root (default: each file's folder).")] = None,
    label_map: Annotated[Path | None, typer.Option("--label-map", help="Default label map for the OD files.")] = None,
    num_workers: Annotated[int, typer.Option("--num-workers", help="Data-loading workers.")] = 2,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    log_interval: Annotated[int | None, typer.Option("--log-interval", min=1, help="Log the losses every N iterations (default: about 10 points per run, at most every 50).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Write the config and stop.")] = False,
    index: Annotated[
        bool, typer.Option("--index/--no-index", help="Read each JSON Lines source through FILE.odvgidx "
                           "(IndexedODVGDetectionDataset, built when missing or stale); --no-index: records in memory.")
    ] = True,
    quiet: Quiet = False,
    json_mode: Json = False,
) -> None:
    """Train a closed-set detector (MMDetection's RTMDet) on ODVG OD data, beside Grounding DINO.

    The label map's classes become the model's classes; the learning rate is scaled by the batch
    (lr × batch / 256), warm-up and cosine schedule by the run length, and the stage-2 pipeline
    switch (no Mosaic/MixUp) comes at the end as in RTMDet. With --val the best checkpoint by COCO
    mAP is kept. WORK_DIR/config.py reproduces the run with plain mmdet tools/train.py.
    Nothing is downloaded (no ImageNet backbone): start from your own checkpoint with --load-from.

    [bold]Examples[/bold]

      odvgkit train detector bccd_train_od.jsonl,images=JPEGImages --label-map bccd_label_map.json --val bccd_val_od.jsonl,images=JPEGImages --model rtmdet-tiny --epochs 40 --batch-size 12

      odvgkit train detector coco_od.jsonl --label-map coco2017_label_map.json --model rtmdet-s --load-from rtmdet_s_coco.pth --frozen-stages 2 --vis-backend tensorboard
    """
    from odvgkit.cli.train import _need_extra, _threads

    _need_extra()
    from odvgkit_train import api
    from odvgkit_train import detector as D
    from odvgkit_train.config import write_config
    from odvgkit_train.data import collect, count_images

    rep = reporter(quiet, json_mode)
    if model not in D.MODEL_FILES:
        raise OdvgError(f"--model {model!r}: unknown detector; choose one of {', '.join(D.MODEL_FILES)}", 2)
    if vis_backend == "tensorboard":
        from odvgkit.errors import require

        require("tensorboard", "train")
    sources = collect(data, image_root, label_map)
    val_source = collect([val], image_root, label_map)[0] if val else None
    opts = D.DetectorOptions(
        model=model, work_dir=work_dir.resolve(), epochs=epochs, max_iters=max_iters, batch_size=batch_size, lr=lr,
        img_size=img_size, frozen_stages=frozen_stages, load_from=str(load_from.resolve()) if load_from else None,
        num_workers=num_workers, seed=seed, stage2_epochs=stage2_epochs, val_interval=val_interval,
        vis_backend=vis_backend, log_interval=log_interval, cuda=_cuda(),
    )
    if load_from is not None and not load_from.is_file():
        raise OdvgError(f"--load-from {load_from}: checkpoint not found")
    cfg = D.detector_config(sources, opts, val_source)  # checks first: no index is written for a refused run
    if index:  # IndexedODVGDetectionDataset over FILE.odvgidx
        sources = [api.indexed_source(s, opts.work_dir / "data") for s in sources]
        val_source = api.indexed_source(val_source, opts.work_dir / "data") if val_source else None
        cfg = D.detector_config(sources, opts, val_source)
    config_path = Path(cfg["work_dir"]) / "config.py"
    info = cfg["odvgkit"]
    rows: dict[str, Any] = {
        "config": str(config_path),
        "model": model,
        "classes": len(info["classes"]),
        "images": count_images(sources),
        "records": sum(s.n_records for s in sources),
        "val_images": count_images([val_source]) if val_source else 0,
        "epochs": info["epochs"] if max_iters is None else None,
        "iterations": info["max_iters"],
        # 1-based, as mmengine's log counts them (the config's switch_epoch/switch_iter are 0-based indices)
        "stage2_from": (f"epoch {info['switch_epoch'] + 1}" if info["switch_epoch"] is not None
                        else f"iteration {info['switch_iter'] + 1}" if info["switch_iter"] is not None else "never"),
        "batch": batch_size,
        "lr": cfg["optim_wrapper"]["optimizer"]["lr"],
        "load_from": str(load_from.resolve()) if load_from else "none: from scratch (no pretrained backbone offline)",
    }
    reinit = D.check_load_from(cfg)
    if reinit:
        rep.warn(f"{load_from}: class head re-initialised for {len(info['classes'])} classes ({', '.join(reinit)})")
    write_config(cfg, config_path)
    if dry_run:
        rep.summary("train detector (config only)", rows)
        return
    _threads()
    try:
        with contextlib.redirect_stdout(sys.stderr):  # mmengine logs to stdout; keep it for --json
            result = api.train(cfg)
    except Exception as exc:
        err = _image_error(exc, [*sources, *([val_source] if val_source else [])])
        if err is not None:
            raise err from None
        raise
    best = D.best_checkpoint(result.work_dir)
    rows.update({
        "checkpoint": str(result.checkpoint) if result.checkpoint else None,
        "best_checkpoint": str(best) if best else None,
        "first_loss": result.losses[0] if result.losses else None,
        "last_loss": result.losses[-1] if result.losses else None,
    })
    rep.summary("train detector", rows)


def _cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def register(app: typer.Typer) -> None:
    from odvgkit.cli.train import train_app

    train_app.command("detector")(detector_cmd)
