"""A closed-set detector (MMDetection's RTMDet) trained on the same ODVG OD data as Grounding DINO.

Library entry points (the CLI ``odvgkit train detector`` and ``eval``/``infer`` call them; other
tools — ``explain``, ``browse pipeline`` — build on them):

==========================================  ====================================================
``detector_config(train, opts, val=None)``  ODVG OD sources + options → mmengine config dict
``load_detector(checkpoint, config=None)``  the trained RTMDet in eval mode (strict keys), ``.cfg``
``checkpoint_family(checkpoint)``           ``"detector"`` | ``"grounding-dino"`` | ``None``
``infer(images, net, ...)``                 ODVG OD records with scores (no text: trained classes)
``evaluate(items, net, ...)``               COCO mAP (pycocotools) on ODVG ground truth
==========================================  ====================================================

The model, its augmentations and its schedule come from the RTMDet config files that ship inside
the mmdet package (``mmdet/.mim/configs/rtmdet/``), read with ``Config.fromfile`` and adapted for
the user, with the MMDetection tutorial's traps handled:

* the label map's names become the dataset ``metainfo`` ``classes`` and the head's ``num_classes``;
* the learning rate is scaled by the total batch (``lr × batch × world size / 256``; RTMDet's 0.004
  was tuned at 8 GPUs × 32 images);
* the linear warm-up and the cosine half of the schedule are scaled to the run length;
* the stage-2 pipeline switch (``PipelineSwitchHook``: no Mosaic/MixUp for the last epochs) happens
  at ``max_epochs − stage2_epochs`` with ``stage2_epochs`` in RTMDet's proportion (20 of 300);
* validation (with ``--val``) keeps the best checkpoint by ``coco/bbox_mAP``;
* no ``init_cfg`` download (ImageNet backbone URLs are stripped; ``--load-from`` for weights).

The data path is :class:`odvgkit_train.detector_registry.ODVGDetectionDataset`: mmdet's own
``ODVGDataset`` in OD mode (``need_text=False``, ``metainfo=dict(classes=...)``) plus an ``img_id``
per record, which ``CocoMetric`` needs; labels are the label map's keys, which must be ``0 … C−1``.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from odvgkit.errors import OdvgError
from odvgkit_train.data import Source

MODEL_FILES = {
    "rtmdet-tiny": "rtmdet_tiny_8xb32-300e_coco.py",
    "rtmdet-s": "rtmdet_s_8xb32-300e_coco.py",
    "rtmdet-m": "rtmdet_m_8xb32-300e_coco.py",
}
BASE_LR = 0.004  # RTMDet's AdamW rate ...
BASE_BATCH = 256  # ... at 8 GPUs × 32 images
RTMDET_EPOCHS = 300
RTMDET_STAGE2_EPOCHS = 20
RTMDET_WARMUP_ITERS = 1000
RTMDET_VAL_INTERVAL = 10
DEFAULT_IMG_SIZE = 640  # RTMDet's input scale; every scale in its pipelines is relative to it
VIS_BACKENDS = {"local": "LocalVisBackend", "tensorboard": "TensorboardVisBackend"}
BEST_KEY = "coco/bbox_mAP"
FAMILY_DETECTOR = "detector"
FAMILY_GDINO = "grounding-dino"
TEST_META_KEYS = ("img_id", "img_path", "ori_shape", "img_shape", "scale_factor", "instances")


@dataclass
class DetectorOptions:
    """Everything ``odvgkit train detector`` decides; :func:`detector_config` turns it into a config."""

    model: str = "rtmdet-tiny"
    work_dir: Path = Path("work_dirs/odvgkit_detector")
    epochs: int | None = None  # default: 300 (RTMDet's schedule) when max_iters is None too
    max_iters: int | None = None
    batch_size: int = 8
    lr: float | None = None  # at BASE_BATCH images; None = RTMDet's 0.004
    img_size: int = DEFAULT_IMG_SIZE
    frozen_stages: int = -1
    load_from: str | None = None
    world_size: int = 1
    num_workers: int = 2
    seed: int = 0
    stage2_epochs: int | None = None
    val_interval: int | None = None
    vis_backend: str = "local"
    log_interval: int | None = None  # None: about 10 loss points per run (at most every 50 iterations)
    launcher: str = "none"
    cuda: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def _mmdet_config_dir() -> Path:
    import mmdet

    path = Path(mmdet.__file__).resolve().parent / ".mim" / "configs" / "rtmdet"
    if not path.is_dir():
        raise OdvgError(f"{path}: mmdet's RTMDet configs are missing (reinstall mmdet==3.3.0)")
    return path


def base_config(model: str) -> Any:
    """mmdet's shipped RTMDet config for ``--model`` (an mmengine ``Config``)."""
    from mmengine.config import Config

    if model not in MODEL_FILES:
        raise OdvgError(f"--model {model!r}: unknown detector; choose one of {', '.join(MODEL_FILES)}", 2)
    return Config.fromfile(str(_mmdet_config_dir() / MODEL_FILES[model]))


def class_names(source: Source) -> list[str]:
    """The label map's names in label order; keys must be 0 … C−1 (they are the head's class indices)."""
    keys = sorted(source.names, key=int)
    if [int(k) for k in keys] != list(range(len(keys))):
        raise OdvgError(
            f"{source.label_map}: a closed-set detector needs label ids 0 … {len(keys) - 1} without gaps "
            f"(found {', '.join(keys[:8])}{' …' if len(keys) > 8 else ''}); renumber with 'odvgkit labels'", 2)
    return [source.names[k] for k in keys]


def _check_sources(train: Sequence[Source], val: Source | None) -> list[str]:
    if not train:
        raise OdvgError("no training data given", 2)
    for s in [*train, *([val] if val else [])]:
        if s.kind != "od":
            raise OdvgError(
                f"{s.ann_file}: a closed-set detector needs OD (detection) data with a label map; this file "
                "holds grounding (VG) records: use 'odvgkit train finetune' for Grounding DINO", 2)
    names = class_names(train[0])
    for s in [*train[1:], *([val] if val else [])]:
        other = class_names(s)
        if other != names:
            raise OdvgError(f"{s.label_map}: classes differ from {train[0].label_map} ({len(other)} vs {len(names)}"
                            " names or another order); a closed-set detector has one class list", 2)
    return names


def _rescale(obj: Any, size: int) -> Any:
    """Replace RTMDet's 640/1280-px scales by ``size``/``2·size`` inside a pipeline (recursively)."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if k in ("img_scale", "crop_size", "size", "scale") and isinstance(v, (tuple, list)) and len(v) == 2 \
                    and all(isinstance(x, int) for x in v):
                out[k] = tuple(size * x // DEFAULT_IMG_SIZE for x in v)
            else:
                out[k] = _rescale(v, size)
        return out
    if isinstance(obj, (list, tuple)):
        return type(obj)(_rescale(v, size) for v in obj)
    return obj


def _strip_init_cfg(obj: Any) -> Any:
    """Drop every ``init_cfg`` that would download weights (``Pretrained`` with a checkpoint)."""
    if isinstance(obj, dict):
        return {k: _strip_init_cfg(v) for k, v in obj.items()
                if not (k == "init_cfg" and isinstance(v, dict) and v.get("type") == "Pretrained")}
    if isinstance(obj, list):
        return [_strip_init_cfg(v) for v in obj]
    return obj


def _sync_bn(obj: Any, norm: str) -> Any:
    if isinstance(obj, dict):
        return {k: (dict(v, type=norm) if k == "norm_cfg" and isinstance(v, dict) and v.get("type") == "SyncBN"
                    else _sync_bn(v, norm)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_sync_bn(v, norm) for v in obj]
    return obj


def _backend_args(pipeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [dict(step, backend_args=None) if "backend_args" in step else step for step in pipeline]


def _dataset(source: Source, classes: list[str], pipeline: list[dict[str, Any]], test_mode: bool) -> dict[str, Any]:
    extra = {"index_file": str(source.index_file)} if source.index_file else {}  # odvgkit_train/indexed.py
    return dict(
        type="IndexedODVGDetectionDataset" if source.index_file else "ODVGDetectionDataset",
        data_root="",
        ann_file=str(source.ann_file),
        label_map_file=str(source.label_map),
        need_text=False,
        metainfo=dict(classes=tuple(classes)),
        data_prefix=dict(img=str(source.image_root) + "/"),
        filter_cfg=dict(filter_empty_gt=False),
        pipeline=pipeline,
        return_classes=True,
        test_mode=test_mode,
        backend_args=None,
        **extra,
    )


def stage2_epochs(epochs: int, requested: int | None = None) -> int:
    """Epochs of the stage-2 pipeline: RTMDet's 20 of 300, at least 1 when the run has ≥ 2 epochs."""
    if requested is not None:
        if not 0 <= requested < max(epochs, 1):
            raise OdvgError(f"--stage2-epochs {requested}: must be ≥ 0 and < --epochs {epochs}", 2)
        return requested
    if epochs < 2:
        return 0
    return min(epochs - 1, max(1, round(epochs * RTMDET_STAGE2_EPOCHS / RTMDET_EPOCHS)))


def effective_lr(opts: DetectorOptions) -> float:
    base = opts.lr if opts.lr is not None else BASE_LR
    return base * opts.batch_size * opts.world_size / BASE_BATCH


def detector_config(train: Sequence[Source], opts: DetectorOptions, val: Source | None = None) -> dict[str, Any]:
    """The full mmengine config dict of an RTMDet run on ODVG OD ``train`` (and ``val``) sources.

    Every path is absolute, nothing is downloaded, and the only odvgkit pieces referenced are the
    ``custom_imports`` plugin (mmcv-lite ``nms``, safe checkpoint loading) and, for ``--max-iters``
    runs or several sources, :class:`odvgkit_train.detector_registry.StagedPipelineSwitchHook`.
    """
    train = list(train)
    classes = _check_sources(train, val)
    if opts.batch_size < 1:
        raise OdvgError("--batch-size must be ≥ 1", 2)
    if opts.img_size < 32 or opts.img_size % 32:
        raise OdvgError(f"--img-size {opts.img_size}: must be a multiple of 32 (RTMDet's largest stride), ≥ 32", 2)
    if opts.vis_backend not in VIS_BACKENDS:
        raise OdvgError(f"--vis-backend {opts.vis_backend!r}: choose local or tensorboard", 2)
    if opts.epochs is not None and opts.max_iters is not None:
        raise OdvgError("give --max-iters or --epochs, not both", 2)
    if opts.epochs is not None and opts.epochs < 1:
        raise OdvgError("--epochs must be ≥ 1", 2)
    if opts.max_iters is not None and opts.max_iters < 1:
        raise OdvgError("--max-iters must be ≥ 1", 2)
    base = base_config(opts.model)
    if not -1 <= opts.frozen_stages <= 4:
        raise OdvgError(f"--frozen-stages {opts.frozen_stages}: CSPNeXt has stages 1-4 (-1 or 0 = none frozen)", 2)

    norm = "SyncBN" if opts.world_size > 1 and opts.cuda else "BN"
    model = _sync_bn(_strip_init_cfg(copy.deepcopy(base.to_dict()["model"])), norm)
    model["bbox_head"]["num_classes"] = len(classes)
    model["backbone"]["frozen_stages"] = opts.frozen_stages

    size = opts.img_size
    train_pipeline = _rescale(_backend_args(copy.deepcopy(base.to_dict()["train_pipeline"])), size)
    stage2_pipeline = _rescale(_backend_args(copy.deepcopy(base.to_dict()["train_pipeline_stage2"])), size)
    test_pipeline = _rescale(_backend_args(copy.deepcopy(base.to_dict()["test_pipeline"])), size)
    for step in test_pipeline:
        if step["type"] == "PackDetInputs":
            step["meta_keys"] = TEST_META_KEYS  # + instances: CocoMetric builds the ground truth from them

    images_per_iter = opts.batch_size * opts.world_size
    n_train = sum(s.epoch_records for s in train)
    iters_per_epoch = max(1, math.ceil(n_train / images_per_iter))
    by_iter = opts.max_iters is not None
    if by_iter:
        total = int(opts.max_iters)
        epochs = max(1, math.ceil(total / iters_per_epoch))
        # RTMDet's proportion counted in iterations; --stage2-epochs is converted with the epoch length
        s2_iters = (opts.stage2_epochs * iters_per_epoch if opts.stage2_epochs is not None
                    else max(1, round(total * RTMDET_STAGE2_EPOCHS / RTMDET_EPOCHS)) if total >= 2 else 0)
        s2_iters = min(s2_iters, total - 1)
        s2 = s2_iters / iters_per_epoch
        switch_iter = total - s2_iters if s2_iters > 0 else None
        switch_epoch = None
    else:
        epochs = int(opts.epochs if opts.epochs is not None else RTMDET_EPOCHS)
        total = epochs * iters_per_epoch
        s2 = stage2_epochs(epochs, opts.stage2_epochs)
        switch_epoch = epochs - s2 if s2 else None
        switch_iter = None
    lr = effective_lr(opts)
    # mmengine's LinearLR reaches the full rate at its last step: a 1-step window would never leave start_factor
    warmup = max(2, min(RTMDET_WARMUP_ITERS, total // 10))
    # RTMDet's cosine covers the second half of the run (150 → 300 epochs), down to 5 % of the rate
    cosine_begin = total // 2 if by_iter else epochs // 2
    cosine_end = total if by_iter else epochs
    scheduler = [
        dict(type="LinearLR", start_factor=1.0e-5, by_epoch=False, begin=0, end=warmup),
        dict(type="CosineAnnealingLR", eta_min=lr * 0.05, begin=cosine_begin, end=cosine_end,
             T_max=max(1, cosine_end - cosine_begin), by_epoch=not by_iter,
             **({} if by_iter else {"convert_to_iter_based": True})),
    ]

    datasets = [_dataset(s, classes, train_pipeline, False) for s in train]
    train_dataset = datasets[0] if len(datasets) == 1 else dict(type="ConcatDataset", datasets=datasets)
    val_interval = opts.val_interval or max(1, math.ceil(epochs / (RTMDET_EPOCHS // RTMDET_VAL_INTERVAL)))
    if by_iter:
        val_interval_iters = (opts.val_interval or 1) * iters_per_epoch if opts.val_interval else \
            max(1, math.ceil(total / (RTMDET_EPOCHS // RTMDET_VAL_INTERVAL)))
        train_cfg: dict[str, Any] = dict(type="IterBasedTrainLoop", max_iters=total,
                                         val_interval=val_interval_iters if val else total + 1)
        sampler = dict(type="InfiniteSampler", shuffle=True)
        ckpt_interval = val_interval_iters if val else total
    else:
        train_cfg = dict(type="EpochBasedTrainLoop", max_epochs=epochs, val_interval=val_interval if val else epochs + 1)
        if val and switch_epoch is not None:
            train_cfg["dynamic_intervals"] = [(switch_epoch, 1)]  # RTMDet validates every stage-2 epoch
        sampler = dict(type="DefaultSampler", shuffle=True)
        ckpt_interval = val_interval if val else epochs

    custom_hooks: list[dict[str, Any]] = [
        dict(type="EMAHook", ema_type="ExpMomentumEMA", momentum=0.0002, update_buffers=True, priority=49),
    ]
    if switch_epoch is not None and len(datasets) == 1:
        custom_hooks.append(dict(type="PipelineSwitchHook", switch_epoch=switch_epoch, switch_pipeline=stage2_pipeline))
    elif switch_epoch is not None or switch_iter is not None:
        # mmdet's hook only sets ``dataset.pipeline`` (a no-op on a ConcatDataset) and only counts epochs
        custom_hooks.append(dict(type="StagedPipelineSwitchHook", switch_epoch=switch_epoch, switch_iter=switch_iter,
                                 switch_pipeline=stage2_pipeline))
    custom_hooks.append(dict(type="TrainSampleVisHook", interval=max(1, iters_per_epoch)))

    checkpoint = dict(type="CheckpointHook", by_epoch=not by_iter, interval=ckpt_interval, max_keep_ckpts=3,
                      save_last=True)
    if val:
        checkpoint.update(save_best=BEST_KEY, rule="greater")
    vis = [dict(type=VIS_BACKENDS[opts.vis_backend])]
    n_val = val.n_records if val else 0
    cfg: dict[str, Any] = dict(
        default_scope="mmdet",
        custom_imports=dict(imports=["odvgkit_train.mmdet_plugin"], allow_failed_imports=False),
        model=model,
        work_dir=str(Path(opts.work_dir).resolve()),
        train_dataloader=dict(
            batch_size=opts.batch_size,
            num_workers=opts.num_workers,
            persistent_workers=opts.num_workers > 0,
            pin_memory=bool(opts.cuda),
            sampler=sampler,
            batch_sampler=None,
            dataset=train_dataset,
        ),
        train_cfg=train_cfg,
        train_pipeline=train_pipeline,
        train_pipeline_stage2=stage2_pipeline,
        test_pipeline=test_pipeline,
        optim_wrapper=dict(
            type="OptimWrapper",
            optimizer=dict(type="AdamW", lr=lr, weight_decay=0.05),
            paramwise_cfg=dict(norm_decay_mult=0, bias_decay_mult=0, bypass_duplicate=True),
        ),
        param_scheduler=scheduler,
        default_hooks=dict(
            timer=dict(type="IterTimerHook"),
            logger=dict(type="LoggerHook", interval=max(1, min(opts.log_interval, total)) if opts.log_interval else min(50, max(1, total // 10)), log_metric_by_epoch=not by_iter),
            param_scheduler=dict(type="ParamSchedulerHook"),
            checkpoint=checkpoint,
            sampler_seed=dict(type="DistSamplerSeedHook"),
            visualization=dict(type="DetVisualizationHook", draw=bool(val), interval=max(1, n_val // 4)),
        ),
        custom_hooks=custom_hooks,
        env_cfg=dict(
            cudnn_benchmark=False,
            mp_cfg=dict(mp_start_method="fork", opencv_num_threads=0),
            dist_cfg=dict(backend="nccl" if opts.cuda else "gloo"),
        ),
        vis_backends=vis,
        visualizer=dict(type="DetLocalVisualizer", vis_backends=vis, name="visualizer"),
        log_processor=dict(type="LogProcessor", window_size=1, by_epoch=not by_iter),
        log_level="INFO",
        load_from=opts.load_from,
        resume=False,
        launcher=opts.launcher,
        randomness=dict(seed=opts.seed, deterministic=False),
        odvgkit=dict(
            family=FAMILY_DETECTOR,
            model_preset=opts.model,
            mmdet_config=MODEL_FILES[opts.model],
            classes=list(classes),
            img_size=size,
            batch_size=opts.batch_size,
            world_size=opts.world_size,
            base_lr=opts.lr if opts.lr is not None else BASE_LR,
            base_batch=BASE_BATCH,
            epochs=epochs,
            iters_per_epoch=iters_per_epoch,
            max_iters=total,
            stage2_epochs=s2,
            switch_epoch=switch_epoch,
            switch_iter=switch_iter,
            sources=[s.as_dict() for s in train],
            val=val.as_dict() if val else None,
        ),
    )
    if val:
        cfg.update(
            val_dataloader=dict(batch_size=1, num_workers=min(opts.num_workers, 2), persistent_workers=False,
                                drop_last=False, sampler=dict(type="DefaultSampler", shuffle=False),
                                dataset=_dataset(val, classes, test_pipeline, True)),
            val_cfg=dict(type="ValLoop"),
            val_evaluator=dict(type="CocoMetric", ann_file=None, metric="bbox", format_only=False,
                               proposal_nums=(100, 1, 10), backend_args=None),
        )
        cfg.update(test_dataloader=cfg["val_dataloader"], test_cfg=dict(type="TestLoop"),
                   test_evaluator=cfg["val_evaluator"])
    else:
        cfg.update(val_dataloader=None, val_cfg=None, val_evaluator=None,
                   test_dataloader=None, test_cfg=None, test_evaluator=None)
    return cfg


def best_checkpoint(work_dir: Path) -> Path | None:
    """``best_coco_bbox_mAP_*.pth`` that mmengine's ``save_best`` kept, if any."""
    found = sorted(Path(work_dir).glob("best_coco_bbox_mAP_*.pth"))
    return found[-1] if found else None


# --------------------------------------------------------------------------- checkpoints and families
def family_of(ckpt: dict[str, Any]) -> str | None:
    """Which model family a loaded checkpoint dict holds: from its stored config, else its keys."""
    meta = ckpt.get("meta") or {}
    text = meta.get("cfg") if isinstance(meta, dict) else None
    if isinstance(text, str):
        m = re.search(r"\bfamily\s*=\s*['\"]([\w-]+)['\"]", text)
        if m:
            return m.group(1)
        if re.search(r"type\s*=\s*['\"]RTMDet['\"]", text):
            return FAMILY_DETECTOR
        if re.search(r"type\s*=\s*['\"]GroundingDINO['\"]", text):
            return FAMILY_GDINO
    state = ckpt.get("state_dict", ckpt)
    keys = state.keys() if isinstance(state, dict) else ()
    if any(k.startswith(("bbox_head.rtm_cls", "module.bbox_head.rtm_cls")) for k in keys):
        return FAMILY_DETECTOR
    if any(k.startswith(("language_model.", "module.language_model.")) for k in keys):
        return FAMILY_GDINO
    return None


def checkpoint_family(checkpoint: str | Path) -> str | None:
    """``"detector"`` (RTMDet), ``"grounding-dino"`` or ``None`` for a checkpoint file."""
    from odvgkit_train.checkpoint import read_checkpoint, restricted_pickle

    try:  # memory-mapped: only the pickle is read, tensors stay on disk
        import torch

        ckpt = torch.load(str(checkpoint), map_location="cpu", weights_only=False, pickle_module=restricted_pickle,
                          mmap=True)
    except Exception:
        ckpt = read_checkpoint(checkpoint)  # legacy (non-zip) files, or a one-line error for a bad one
    return family_of(ckpt) if isinstance(ckpt, dict) else None


def require_family(checkpoint: str | Path, family: str, what: str) -> None:
    """One-line error when ``checkpoint`` belongs to the other model family."""
    found = checkpoint_family(checkpoint)
    if found is not None and found != family:
        other = "a closed-set detector (RTMDet)" if found == FAMILY_DETECTOR else "Grounding DINO"
        fix = "odvgkit train detector" if found == FAMILY_DETECTOR else "odvgkit train pretrain|finetune"
        raise OdvgError(f"{checkpoint}: this is {other} checkpoint; {what} needs a "
                        f"{'closed-set detector' if family == FAMILY_DETECTOR else 'Grounding DINO'} one (use {fix})", 2)


def is_detector(model_or_checkpoint: Any) -> bool:
    """True for a loaded RTMDet (or any model built by :func:`load_detector`) or a detector checkpoint file."""
    if hasattr(model_or_checkpoint, "test_step"):
        return getattr(model_or_checkpoint, "odvgkit_family", None) == FAMILY_DETECTOR or \
            type(model_or_checkpoint).__name__ == "RTMDet"
    if model_or_checkpoint is None or not Path(model_or_checkpoint).is_file():
        return False
    return checkpoint_family(model_or_checkpoint) == FAMILY_DETECTOR


def check_load_from(cfg: dict[str, Any]) -> list[str]:
    """Before training: ``load_from`` must be an RTMDet of this architecture; only the class head may differ.

    Returns the class-head keys that will be re-initialised (fine-tuning a COCO checkpoint on other
    classes, as the tutorial does); any other missing, unexpected or mis-shaped key is a one-line error.
    """
    path = cfg.get("load_from")
    if not path:
        return []
    from odvgkit_train import checkpoint as ck

    if not Path(path).is_file():
        raise OdvgError(f"--load-from {path}: checkpoint not found")
    require_family(path, FAMILY_DETECTOR, "'train detector --load-from'")
    net = build_model(cfg["model"])
    diff = ck.compare_keys(net.state_dict(), ck.read_state_dict(path))
    head = [k for k in diff["shape_mismatch"] if k.startswith("bbox_head.rtm_cls.")]
    rest = {k: [x for x in v if x not in head] for k, v in diff.items()}
    if any(rest.values()):
        raise OdvgError(ck.describe_mismatch(path, rest).replace("--model / --text-encoder", "--model"))
    return head


def _prepare() -> None:
    """odvgkit's mmdet plugin before mmdet builds anything (stand-in kernels, checkpoint allow-list, registrations)."""
    import odvgkit_train.mmdet_plugin  # noqa: F401


def build_model(model_cfg: dict[str, Any]) -> Any:
    """The mmdet model of a config's ``model`` dict (after odvgkit's mmdet plugin, never via the API module)."""
    _prepare()
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import ConfigDict

    register_all_modules(init_default_scope=True)
    return MODELS.build(ConfigDict(copy.deepcopy(dict(model_cfg))))  # heads read test_cfg.attr


def load_detector(checkpoint: str | Path | None, *, config: str | Path | dict[str, Any] | None = None,
                  device: str = "cpu") -> Any:
    """RTMDet from a checkpoint of ``odvgkit train detector`` (config from the checkpoint unless given).

    Weights load strictly (any key or shape difference is a one-line error). The returned model is
    in eval mode and carries ``.cfg`` (the mmengine config), ``.dataset_meta`` (``classes``) and
    ``.odvgkit_family == "detector"``.
    """

    from odvgkit_train import checkpoint as ck
    from odvgkit_train.inference import config_from_checkpoint, given_config, init_weights_quietly

    ckpt_path = Path(checkpoint) if checkpoint is not None else None
    if ckpt_path is not None and not ckpt_path.is_file():
        raise OdvgError(f"{ckpt_path}: checkpoint not found")
    cfg = given_config(config)
    if cfg is None and ckpt_path is not None:
        require_family(ckpt_path, FAMILY_DETECTOR, "a closed-set detector command")
        cfg = config_from_checkpoint(ckpt_path)
        if cfg is None:
            raise OdvgError(f"{ckpt_path}: checkpoint carries no config; pass the run's config.py with --config")
    if cfg is None:
        raise OdvgError("load_detector needs a checkpoint or a config")
    if cfg.model.get("type") != "RTMDet":
        raise OdvgError(f"{ckpt_path or config}: not a closed-set detector (model type {cfg.model.get('type')!r})", 2)
    net = build_model(cfg.to_dict()["model"])
    if ckpt_path is not None:
        ck.load_strict(net, ckpt_path)
    else:
        init_weights_quietly(net)  # a config alone: defined weights, as the Runner gives them
    classes = list((cfg.get("odvgkit") or {}).get("classes") or [])
    if not classes:
        classes = list(cfg.train_dataloader.dataset.get("metainfo", {}).get("classes", []))
    net.cfg = cfg
    net.dataset_meta = {"classes": tuple(classes)}
    net.odvgkit_family = FAMILY_DETECTOR
    net.to(device)
    net.eval()
    return net


# --------------------------------------------------------------------------- prediction and evaluation
def _test_pipeline(net: Any) -> Any:
    from mmcv.transforms import Compose

    steps = [s for s in copy.deepcopy(list(net.cfg.test_pipeline)) if s["type"] != "LoadAnnotations"]
    for s in steps:
        if s["type"] == "PackDetInputs":
            s["meta_keys"] = tuple(k for k in s.get("meta_keys", TEST_META_KEYS) if k != "instances")
    return Compose(steps)


def predict_one(net: Any, image: str | Path, pipeline: Any = None) -> Any:
    """Raw ``pred_instances`` (boxes in original pixels, labels = class indices) for one image."""
    import warnings

    import torch

    pipeline = pipeline or _test_pipeline(net)
    try:
        packed = pipeline({"img_path": str(image), "img_id": 0})
    except Exception as exc:  # cv2/PIL decode failures: name the file, no traceback
        raise OdvgError(f"{image}: image does not decode ({_first_line(exc)})") from None
    if packed is None:
        raise OdvgError(f"{image}: image does not decode")
    batch = {"inputs": [packed["inputs"]], "data_samples": [packed["data_samples"]]}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = net.test_step(batch)
    return out[0].pred_instances


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def to_record(image: Path, name: str, pred: Any, classes: Sequence[str], score_thr: float) -> dict[str, Any]:
    from odvgkit.images import image_size

    w, h = image_size(image)
    boxes = pred.bboxes.cpu().tolist()
    scores = pred.scores.cpu().tolist()
    labels = pred.labels.cpu().tolist()
    order = [i for i in sorted(range(len(scores)), key=lambda i: -scores[i]) if scores[i] >= score_thr]
    return {
        "filename": name, "height": h, "width": w,
        "detection": {"instances": [
            {"bbox": [round(v, 2) for v in boxes[i]], "label": int(labels[i]), "category": classes[labels[i]],
             "score": round(float(scores[i]), 5)}
            for i in order if 0 <= labels[i] < len(classes)
        ]},
    }


def infer(images: Sequence[str | Path], checkpoint: str | Path | Any, *, score_thr: float = 0.3,
          image_root: str | Path | None = None, on_image: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
    """One ODVG OD record per image; ``label`` = index in the trained class list, boxes sorted by score."""
    net = checkpoint if hasattr(checkpoint, "test_step") else load_detector(checkpoint)
    classes = list(net.dataset_meta["classes"])
    pipeline = _test_pipeline(net)
    root = Path(image_root) if image_root else None
    out = []
    for image in images:
        p = Path(image)
        if not p.is_file():
            raise OdvgError(f"{p}: image not found")
        pred = predict_one(net, p, pipeline)
        out.append(to_record(p, str(p.relative_to(root)) if root else p.name, pred, classes, score_thr))
        if on_image is not None:
            on_image(1)
    return out


def evaluate(items: list[dict[str, Any]], checkpoint: str | Path | Any, metric: str = "coco", *,
             predictions_out: str | Path | None = None, show_dir: str | Path | None = None,
             on_image: Callable[[int], None] | None = None) -> dict[str, Any]:
    """COCO mAP (pycocotools) of a detector on ODVG OD ground truth; undefined stays pycocotools' −1 (:data:`metrics.NA`).

    The evaluation label map's names are matched to the model's classes by name (the ids may differ);
    a ground-truth class the model does not know is a one-line error.
    """
    from odvgkit.io import read_label_map, read_records, write_records
    from odvgkit_train import metrics as M
    from odvgkit_train.evaluation import _items

    if metric not in ("coco", "odinw"):
        raise OdvgError(f"--metric {metric}: a closed-set detector has no text input; use --metric coco", 2)
    items = _items(items)
    if metric == "coco" and len(items) != 1:
        raise OdvgError(f"--metric coco takes one ODVG file ({len(items)} given)", 2)
    net = checkpoint if hasattr(checkpoint, "test_step") else load_detector(checkpoint)
    classes = list(net.dataset_meta["classes"])
    pipeline = _test_pipeline(net)
    results: dict[str, Any] = {"metric": metric, "model": "detector"}
    all_preds: list[dict[str, Any]] = []
    per_dataset = []
    for item in items:
        if item["label_map"] is None:
            raise OdvgError(f"{item['path']}: --metric {metric} needs a label map (--label-map or ',label_map=FILE')", 2)
        lm = read_label_map(item["label_map"])
        by_name = {v: int(k) for k, v in lm.items()}
        unknown = sorted(set(by_name) - set(classes))
        if unknown:
            raise OdvgError(f"{item['label_map']}: classes the detector was not trained on: {', '.join(unknown[:8])}"
                            f" (it knows {', '.join(classes[:8])}{' …' if len(classes) > 8 else ''})", 2)
        gts = []
        preds = []
        for line, rec in read_records(item["path"]):
            if "detection" not in rec:
                raise OdvgError(f"{item['path']}:{line}: detection: --metric {metric} needs OD records")
            image = item["images"] / rec["filename"]
            if not image.is_file():
                raise OdvgError(f"{item['path']}:{line}: filename: image {image} not found (give ',images=DIR' or --image-root)")
            try:
                pred = predict_one(net, image, pipeline)
            except OdvgError as exc:
                raise OdvgError(f"{item['path']}:{line}: filename: {exc}") from None
            out = to_record(image, rec["filename"], pred, classes, 0.0)
            kept = []
            for inst in out["detection"]["instances"]:  # model class index → this label map's id
                if inst["category"] in by_name:
                    kept.append(dict(inst, label=by_name[inst["category"]]))
            out["detection"]["instances"] = kept
            gts.append(rec)
            preds.append(out)
            if on_image is not None:
                on_image(1)
        if show_dir is not None:
            from odvgkit_train.showdir import write_pairs

            target = Path(show_dir) if len(items) == 1 else Path(show_dir) / item["path"].name.split(".")[0]
            results["shown"] = results.get("shown", 0) + write_pairs(gts, preds, item["images"], target, lm)
        scores = M.coco_map(gts, preds, lm)
        if metric == "coco":
            results.update(scores)
        else:
            per_dataset.append({"dataset": item["path"].name, "mAP": scores["mAP"], "AP50": scores["AP50"]})
        results["images"] = results.get("images", 0) + len(gts)
        all_preds += preds
    if metric == "odinw":
        results["mean_mAP"] = M.mean_defined([d["mAP"] for d in per_dataset])
        results["datasets"] = per_dataset
    if predictions_out is not None:
        write_records(predictions_out, all_preds, inputs=[i["path"] for i in items])
        results["predictions"] = str(predictions_out)
    return results
