"""Library entry points of odvgkit_train (what the CLI and pseudo-label loops call).

=================================  ==========================================================
``build_config(data, ...)``        ODVG sources + preset → mmengine config dict (+ written file)
``train(cfg)``                     run mmengine's Runner; returns work dir, checkpoint, losses
``load_model(checkpoint, ...)``    a Grounding DINO model in eval mode, weights loaded strictly
``infer(images, checkpoint, ...)`` ODVG records with scored boxes for a text prompt
``evaluate(data, checkpoint, ...)`` metrics (coco, lvis, refexp, grefcoco, flickr30k, odinw)
=================================  ==========================================================

All of them import torch/mmdet lazily and run :mod:`odvgkit_train.mmdet_plugin` first. This module
sits on top of the package: it imports :mod:`.config`, :mod:`.data`, :mod:`.inference` and
:mod:`.evaluation`, none of which imports it back.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from odvgkit.errors import OdvgError
from odvgkit_train import evaluation as _evaluation
from odvgkit_train import inference as _inference
from odvgkit_train.config import TrainOptions, write_config
from odvgkit_train.config import build_config as _build_config
from odvgkit_train.data import Source, collect
from odvgkit_train.runtime import prepare
from odvgkit_train.runtime import torch_threads as _threads

__all__ = [
    "TrainOptions",
    "TrainResult",
    "build_config",
    "evaluate",
    "infer",
    "load_model",
    "prepare",
    "train",
]


def build_config(
    data: Sequence[str | Path | Source],
    *,
    image_root: str | Path | None = None,
    label_map: str | Path | None = None,
    write: bool = True,
    **options: Any,
) -> dict[str, Any]:
    """Config for ``data`` (ODVG files/specs, manifests, or :class:`Source` objects).

    ``options`` are :class:`TrainOptions` fields (``stage``, ``model``, ``text_encoder``,
    ``work_dir``, ``max_iters``, ``epochs``, ``batch_size``, ``lr``, ``load_from`` …). The config is
    written to ``<work_dir>/config.py`` unless ``write=False``.
    """
    from odvgkit_train.text_encoder import resolve

    specs = [d for d in data if not isinstance(d, Source)]
    sources = [d for d in data if isinstance(d, Source)] + collect(
        [str(s) for s in specs], Path(image_root) if image_root else None, Path(label_map) if label_map else None
    ) if specs else [d for d in data if isinstance(d, Source)]
    opts = TrainOptions(**options)
    opts.text_encoder = str(resolve(opts.text_encoder or None))
    opts.work_dir = Path(opts.work_dir).resolve()
    if opts.load_from and not Path(opts.load_from).is_file():
        raise OdvgError(f"--load-from {opts.load_from}: checkpoint not found")
    if opts.load_from:  # every path in the written config absolute: it must run from any directory
        opts.load_from = str(Path(opts.load_from).resolve())
    sources = [_plain_jsonl(s, opts.work_dir / "data") for s in sources]
    cfg = _build_config(sources, opts)  # checks first: no index is written for a refused run
    if opts.indexed:
        sources = [_with_index(s, opts.work_dir / "data") for s in sources]
        cfg = _build_config(sources, opts)
    if write:
        write_config(cfg, opts.work_dir / "config.py")
    return cfg


def _plain_jsonl(source: Source, out_dir: Path) -> Source:
    """mmdet's ODVGDataset reads plain JSON Lines only: gzip/Parquet sources get a copy in the work dir."""
    import dataclasses

    from odvgkit.io import read_records, write_records

    name = source.ann_file.name.lower()
    if name.endswith((".jsonl", ".json")):
        return source
    target = out_dir / f"{source.name}.jsonl"
    write_records(target, (rec for _, rec in read_records(source.ann_file)), inputs=[source.ann_file], force=True)
    return dataclasses.replace(source, ann_file=target)


def _with_index(source: Source, out_dir: Path) -> Source:
    """The source with a current ``FILE.odvgidx`` (``IndexedODVGDataset``), built when missing or stale.

    The index lives beside the file (shared by every run on it); when that folder is not writable,
    in the work dir. A stale index of the same file is a cache odvgkit owns: it is rebuilt.
    """
    import dataclasses
    import hashlib

    from odvgkit.index import build_index, fresh_index, index_path

    beside = index_path(source.ann_file)
    local = out_dir / f"{source.name}-{hashlib.sha1(str(source.ann_file.resolve()).encode()).hexdigest()[:8]}.odvgidx"
    for candidate in (beside, local):
        if candidate.is_file() and fresh_index(source.ann_file, candidate):
            return dataclasses.replace(source, index_file=candidate.resolve())
    try:
        built = build_index(source.ann_file, beside, force=True)
    except OSError:  # folder not writable
        built = build_index(source.ann_file, local, force=True)
    return dataclasses.replace(source, index_file=built.index.resolve())


def indexed_source(source: Source, out_dir: Path) -> Source:
    """:func:`_with_index` for a plain JSON Lines source; other sources unchanged (mmdet's own dataset)."""
    if not source.ann_file.name.lower().endswith((".jsonl", ".json")):
        return source
    return _with_index(source, out_dir)


@dataclass
class TrainResult:
    work_dir: Path
    checkpoint: Path | None
    losses: list[float] = field(default_factory=list)
    iterations: int = 0


def train(cfg: dict[str, Any] | str | Path) -> TrainResult:
    """Run mmengine's Runner on a config dict or config file; returns what it produced."""
    prepare()
    _threads()
    from mmengine.config import Config
    from mmengine.runner import Runner

    config = Config.fromfile(str(cfg)) if isinstance(cfg, (str, Path)) else Config(cfg)
    _init_cpu_dist(config.get("launcher", "none"))
    runner = Runner.from_cfg(config)
    runner.train()
    work_dir = Path(runner.work_dir)
    return TrainResult(
        work_dir=work_dir,
        checkpoint=last_checkpoint(work_dir),
        losses=read_losses(Path(runner.log_dir)),
        iterations=runner.iter,
    )


def _init_cpu_dist(launcher: str) -> None:
    """Join the process group on gloo when there is no GPU.

    mmengine's ``pytorch`` launcher calls ``torch.cuda.set_device`` unconditionally, which a CPU
    build of torch does not have; an already initialised group makes mmengine skip that step.
    """
    import torch
    import torch.distributed as dist

    if launcher == "pytorch" and not torch.cuda.is_available() and not dist.is_initialized():
        dist.init_process_group(backend="gloo")


def check_load_from(cfg: dict[str, Any]) -> None:
    """Fail before training when ``load_from`` does not match the model (lists the keys).

    mmengine only warns about mismatched keys and trains a half-initialised model; for Grounding DINO a
    mismatch always means the wrong ``--model`` preset or ``--text-encoder``.
    """
    if not cfg.get("load_from"):
        return
    prepare()
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules

    from odvgkit_train import checkpoint as ck
    from odvgkit_train.detector import FAMILY_GDINO, require_family

    require_family(cfg["load_from"], FAMILY_GDINO, "'train pretrain|finetune --load-from'")
    register_all_modules(init_default_scope=True)
    model = MODELS.build(copy.deepcopy(cfg["model"]))
    diff = ck.compare_keys(model.state_dict(), ck.read_state_dict(cfg["load_from"]))
    if any(diff.values()):
        raise OdvgError(ck.describe_mismatch(cfg["load_from"], diff))


def last_checkpoint(work_dir: Path) -> Path | None:
    marker = work_dir / "last_checkpoint"
    if marker.is_file():
        p = Path(marker.read_text().strip())
        return p if p.is_file() else None
    return None


def read_losses(log_dir: Path) -> list[float]:
    """Total loss per logged iteration, from mmengine's ``vis_data/scalars.json``."""
    path = log_dir / "vis_data" / "scalars.json"
    losses = []
    if path.is_file():
        for line in path.read_text().splitlines():
            row = json.loads(line)
            if "loss" in row:
                losses.append(float(row["loss"]))
    return losses


def load_model(checkpoint: str | Path | None, *, config: str | Path | dict[str, Any] | None = None,
               model: str | None = None, text_encoder: str | Path | None = None, device: str = "cpu") -> Any:
    """Grounding DINO from a checkpoint (config from the checkpoint's run or a preset), eval mode."""
    return _inference.load_model(checkpoint, config=config, model=model, text_encoder=text_encoder, device=device)


def _with_config(checkpoint: str | Path | Any, config: str | Path | None, kwargs: dict[str, Any]) -> Any:
    """``--config``: the model built from a config file and loaded with ``checkpoint`` (strictly).

    For checkpoints that carry no config (a plain ``torch.save`` of the weights, or a state dict
    from elsewhere); the family is the config's model type.
    """
    if config is None or hasattr(checkpoint, "test_step"):
        return checkpoint
    from odvgkit_train import detector

    path = Path(config)
    if not path.is_file():
        raise OdvgError(f"--config {path}: no such file", 2)
    if detector.family_of({"meta": {"cfg": path.read_text(encoding="utf-8", errors="replace")}}) == detector.FAMILY_DETECTOR:
        return detector.load_detector(checkpoint, config=path)
    return _inference.load_model(checkpoint, config=path, model=kwargs.get("model"), text_encoder=kwargs.get("text_encoder"))


def infer(images: Sequence[str | Path], checkpoint: str | Path | Any, texts: str | Sequence[str] | None = None,
          *, config: str | Path | None = None, **kwargs: Any) -> list[dict[str, Any]]:
    """ODVG records (with ``score`` on every box) for ``images`` and a prompt; see :mod:`.inference`.

    A closed-set detector checkpoint (``odvgkit train detector``) takes no prompt: it predicts its
    trained classes (:func:`odvgkit_train.detector.infer`). ``config`` builds the model for a
    checkpoint that carries none.
    """
    from odvgkit_train import detector

    checkpoint = _with_config(checkpoint, config, kwargs)
    if detector.is_detector(checkpoint):
        if texts:
            raise OdvgError("--texts: a closed-set detector (RTMDet) takes no text prompt; it predicts the classes "
                            "it was trained on", 2)
        keep = {k: kwargs[k] for k in ("score_thr", "image_root", "on_image") if k in kwargs}
        return detector.infer(images, checkpoint, **keep)
    if not texts:
        raise OdvgError("--texts is required for a Grounding DINO checkpoint ('cat . dog', '$: coco' or a caption)", 2)
    return _inference.infer(images, checkpoint, texts, **kwargs)


def evaluate(data: str | Path, checkpoint: str | Path | Any, metric: str, *, config: str | Path | None = None,
             **kwargs: Any) -> dict[str, Any]:
    """Metrics of a checkpoint on an ODVG file with ground truth; see :mod:`.evaluation`.

    The model family is detected from the checkpoint (or ``config``): a closed-set detector is
    scored by :func:`odvgkit_train.detector.evaluate` (COCO mAP, no text).
    """
    from odvgkit_train import detector

    checkpoint = _with_config(checkpoint, config, kwargs)
    if detector.is_detector(checkpoint):
        keep = {k: kwargs[k] for k in ("predictions_out", "show_dir", "on_image") if k in kwargs}
        return detector.evaluate(data if isinstance(data, list) else [data], checkpoint, metric, **keep)
    return _evaluation.evaluate(data, checkpoint, metric, **kwargs)
