"""What one ``odvgkit train pretrain|finetune`` does, below the CLI: check the request, build and write
the config, say what the run will be (summary rows, warnings), then run it.

The CLI (:mod:`odvgkit.cli.train`) only parses options into a :class:`TrainRequest` and prints what
:func:`plan_training` and :func:`run_training` return, so library users and other front ends
(``pseudolabel loop``, scripts) get the same checks and the same config.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from odvgkit.errors import OdvgError
from odvgkit_train import api
from odvgkit_train.data import Source, collect, count_images

LAUNCHERS = ("none", "pytorch", "slurm")
RANDOM_WEIGHTS = ("train finetune without --load-from: the model starts from RANDOM weights (nothing is "
                  "finetuned); give --load-from CHECKPOINT.pth, or use 'train pretrain' to train from scratch")


@dataclass
class TrainRequest:
    """The options of a ``train`` command, as given (paths not yet resolved)."""

    stage: str
    data: list[str]
    model: str = "swin-t"
    load_from: Path | None = None
    text_encoder: Path | None = None
    work_dir: Path = Path("work_dirs/odvgkit")
    max_iters: int | None = None
    epochs: float | None = None
    batch_size: int = 2
    lr: float | None = None
    image_root: Path | None = None
    label_map: Path | None = None
    launcher: str = "none"
    nproc: int = 1
    nnodes: int = 1
    node_rank: int = 0
    master_addr: str = "127.0.0.1"
    master_port: int = 29500
    num_workers: int = 2
    seed: int = 0
    finetune_mode: str = "closed-set"
    base_classes: str | None = None
    log_interval: int | None = None
    check_sync: bool = False
    upstream_negatives: bool = False
    vis_backend: str = "local"
    index: bool = True  # IndexedODVGDataset (False: mmdet's ODVGDataset)

    @property
    def spawns_torchrun(self) -> bool:
        return self.launcher == "none" and self.nproc * self.nnodes > 1


@dataclass
class TrainPlan:
    request: TrainRequest
    sources: list[Source]
    cfg: dict[str, Any]
    config_path: Path
    rows: dict[str, Any]  # the summary so far (what the run will be)
    warnings: list[str] = field(default_factory=list)


def plan_training(req: TrainRequest) -> TrainPlan:
    """Check ``req``, build the config and write it to ``<work_dir>/config.py``; nothing is trained yet."""
    if req.launcher not in LAUNCHERS:
        raise OdvgError(f"--launcher {req.launcher!r}: choose none, pytorch or slurm", 2)
    if req.nproc < 1 or req.nnodes < 1:
        raise OdvgError("--nproc and --nnodes must be ≥ 1", 2)
    if req.max_iters is not None and req.epochs is not None:
        raise OdvgError("give --max-iters or --epochs, not both", 2)
    if req.log_interval is not None and req.log_interval < 1:
        raise OdvgError("--log-interval must be ≥ 1", 2)
    sources = collect(req.data, req.image_root, req.label_map)
    world = world_size(req.launcher, req.nproc, req.nnodes)
    base_labels = parse_base_classes(req.base_classes, sources) if req.base_classes else None
    cfg = api.build_config(
        sources,
        stage=req.stage,
        model=req.model,
        text_encoder=str(req.text_encoder) if req.text_encoder else "",
        work_dir=req.work_dir,
        max_iters=req.max_iters,
        epochs=req.epochs,
        batch_size=req.batch_size,
        lr=req.lr,
        world_size=world,
        load_from=str(req.load_from) if req.load_from else None,
        finetune_mode=req.finetune_mode,
        base_labels=base_labels,
        num_workers=req.num_workers,
        seed=req.seed,
        log_interval=req.log_interval,
        check_sync=req.check_sync,
        upstream_negatives=req.upstream_negatives,
        vis_backend=req.vis_backend,
        indexed=req.index,
        launcher="pytorch" if req.spawns_torchrun else req.launcher,
        extra={"cuda": cuda()},
    )
    warnings = vocabulary_warnings(sources, str(cfg["model"]["language_model"]["name"]), req.stage, req.finetune_mode)
    rows: dict[str, Any] = {
        "config": str(Path(cfg["work_dir"]) / "config.py"),
        "model": req.model,
        "sources": len(sources),
        "images": count_images(sources),
        "records": sum(s.n_records for s in sources),
        "iterations": cfg["train_cfg"]["max_iters"],
        "batch_per_process": req.batch_size,
        "world_size": world,
        "lr": cfg["optim_wrapper"]["optimizer"]["lr"],
        "load_from": cfg["load_from"],
    }
    if req.stage == "finetune" and not req.load_from:
        # finetuning from nothing is almost always a forgotten flag: hours of training a random model
        warnings.append(RANDOM_WEIGHTS)
        rows["load_from"] = "none: random weights"
    return TrainPlan(req, sources, cfg, Path(cfg["work_dir"]) / "config.py", rows, warnings)


def run_training(plan: TrainPlan, info: Callable[[str], None] = print) -> dict[str, Any]:
    """Train as planned (in this process, or under torchrun for several local processes).

    Returns the plan's summary rows completed with the checkpoint (and first/last loss in-process).
    mmengine and the torchrun workers log to stdout; it is sent to stderr so that stdout stays one
    JSON object under ``--json``.
    """
    from odvgkit_train.launch import torchrun_command

    req, cfg, rows = plan.request, plan.cfg, dict(plan.rows)
    api.check_load_from(cfg)
    if req.spawns_torchrun:
        cmd = torchrun_command(plan.config_path, req.nproc, req.nnodes, req.node_rank, req.master_addr, req.master_port)
        info("running: " + " ".join(cmd))
        code = subprocess.call(cmd, stdout=sys.stderr)
        if code:
            raise OdvgError(f"distributed training failed (torchrun exit {code}); see the log above", exit_code=code)
        ckpt = api.last_checkpoint(Path(cfg["work_dir"]))
        rows.update({"checkpoint": str(ckpt) if ckpt else None})
        return rows
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1))))
    with contextlib.redirect_stdout(sys.stderr):
        result = api.train(cfg)
    rows.update(
        {
            "checkpoint": str(result.checkpoint) if result.checkpoint else None,
            "first_loss": result.losses[0] if result.losses else None,
            "last_loss": result.losses[-1] if result.losses else None,
        }
    )
    return rows


def cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def world_size(launcher: str, nproc: int, nnodes: int) -> int:
    """Processes in the run: from the launcher's environment, else ``nproc × nnodes``."""
    if launcher == "slurm":
        return int(os.environ.get("SLURM_NTASKS", "1"))
    if launcher == "pytorch":
        return int(os.environ.get("WORLD_SIZE", "1"))
    return nproc * nnodes


def parse_base_classes(spec: str, sources: list[Source]) -> list[int]:
    """``--base-classes``: comma-separated ids/names, or a file with one name per line."""
    names: dict[str, str] = {}
    for s in sources:
        names.update(s.names)
    by_name = {v: int(k) for k, v in names.items()}
    path = Path(spec)
    items = path.read_text(encoding="utf-8").splitlines() if path.is_file() else spec.split(",")
    out = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        if item.isdigit() and item in names:
            out.append(int(item))
        elif item in by_name:
            out.append(by_name[item])
        else:
            raise OdvgError(f"--base-classes: {item!r} is not a label id or name of the label maps", 2)
    return sorted(set(out))


def vocabulary_warnings(sources: list[Source], text_encoder: str, stage: str, mode: str) -> list[str]:
    """Label maps whose full class prompt exceeds the text encoder's token limit.

    Closed-set finetuning prompts every class at once, so there it is an error; sampled prompts
    only see a subset per image, so it is a warning.
    """
    from odvgkit.tokenizer import MAX_TOKENS
    from odvgkit_train.inference import prompt_tokens

    out = []
    for s in sources:
        if s.kind != "od" or not s.names:
            continue
        n = prompt_tokens([s.names[k] for k in sorted(s.names, key=int)], text_encoder)
        if n > MAX_TOKENS:
            if stage == "finetune" and mode == "closed-set":
                raise OdvgError(
                    f"{s.label_map}: the closed-set prompt of {len(s.names)} classes is {n} tokens, over the "
                    f"{MAX_TOKENS}-token limit; use --finetune-mode open-set (samples classes per image)"
                )
            out.append(
                f"{s.label_map}: {len(s.names)} classes are {n} tokens (> {MAX_TOKENS}): training samples a subset "
                "per image; evaluate/infer with --chunked-size N"
            )
    return out
