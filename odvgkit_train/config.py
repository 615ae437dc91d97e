"""Generate an mmdet/mmengine config for Grounding DINO from ODVG sources and a model preset.

The config is a plain dict written to ``<work_dir>/config.py`` (no ``import`` lines, so mmengine
reads it back verbatim and ``python mmdet/tools/train.py <work_dir>/config.py`` reproduces the run).
Choices that differ from mmdet's shipped configs, and why:

* ``InfiniteSampler`` + ``IterBasedTrainLoop``: the default sampler's epoch boundary sleeps 2 s per
  epoch in mmengine, which dominates short runs; ``--epochs`` is converted to iterations.
* The learning rate is written already scaled by the total batch (batch × world size) against
  ``presets.BASE_BATCH``: unscaled rates on large batches are the usual cause of NaN losses.
* ``custom_imports`` loads :mod:`odvgkit_train.mmdet_plugin` (mmcv-lite stand-in, checkpoint
  allow-list, two text transforms).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from odvgkit.errors import OdvgError
from odvgkit_train import presets
from odvgkit_train.data import Source, dataset_length

FINETUNE_MODES = ("closed-set", "open-set", "ovd")
VIS_BACKENDS = {"local": "LocalVisBackend", "tensorboard": "TensorboardVisBackend"}
META_KEYS = (
    "img_id", "img_path", "ori_shape", "img_shape", "scale_factor", "flip", "flip_direction",
    "text", "custom_entities", "tokens_positive", "dataset_mode",
)


@dataclass
class TrainOptions:
    """Everything ``odvgkit train`` decides; :func:`build_config` turns it into an mmdet config."""

    stage: str = "pretrain"  # pretrain | finetune
    model: str = "tiny"
    text_encoder: str = ""
    work_dir: Path = Path("work_dirs/odvgkit")
    max_iters: int | None = None
    epochs: float | None = None
    batch_size: int = 2
    lr: float | None = None  # at presets.BASE_BATCH images; None = preset default
    world_size: int = 1
    load_from: str | None = None
    finetune_mode: str = "open-set"
    base_labels: list[int] | None = None  # ovd: label ids kept for training
    num_workers: int = 0
    seed: int = 0
    log_interval: int | None = None  # None: min(50, max(1, iterations // 10)), ≥ ~10 loss points per run
    checkpoint_interval: int | None = None
    launcher: str = "none"
    num_negative: int = 85
    upstream_negatives: bool = False  # True: mmdet's RandomSamplingNegPos (duplicate-class bug) for parity
    check_sync: bool = False
    vis_backend: str = "local"  # local | tensorboard (mmengine's visualiser backends)
    indexed: bool = True  # IndexedODVGDataset over FILE.odvgidx (False: mmdet's ODVGDataset, records in memory)
    extra: dict[str, Any] = field(default_factory=dict)


def effective_lr(opts: TrainOptions) -> float:
    base = opts.lr if opts.lr is not None else presets.BASE_LR[opts.stage][opts.model]
    return base * opts.batch_size * opts.world_size / presets.BASE_BATCH


def total_iters(opts: TrainOptions, sources: list[Source]) -> int:
    if opts.max_iters is not None:
        if opts.max_iters < 1:
            raise OdvgError("--max-iters must be ≥ 1", 2)
        return opts.max_iters
    epochs = opts.epochs if opts.epochs is not None else 1
    per_epoch = math.ceil(dataset_length(sources) / (opts.batch_size * opts.world_size))
    return max(1, math.ceil(per_epoch * epochs))


def log_interval(opts: TrainOptions, iters: int) -> int:
    """Iterations between loss logs: the option, else about 10 points per run (at most every 50).

    A fixed default of 50 logged a 30-iteration run once, so its first and last loss were the same number.
    """
    if opts.log_interval is not None:
        return max(1, min(opts.log_interval, iters))
    return min(50, max(1, iters // 10))


def train_pipeline(opts: TrainOptions, text_encoder: str) -> list[dict[str, Any]]:
    scales = presets.TRAIN_SCALES[opts.model]
    steps: list[dict[str, Any]] = [
        dict(type="LoadImageFromFile", backend_args=None),
        dict(type="LoadAnnotations", with_bbox=True),
        dict(type="RandomFlip", prob=0.5),
    ]
    if opts.model == "tiny":
        steps.append(dict(type="RandomChoiceResize", scales=scales, keep_ratio=True))
    else:  # mmdet's Grounding DINO augmentation, unchanged
        steps.append(
            dict(
                type="RandomChoice",
                transforms=[
                    [dict(type="RandomChoiceResize", scales=scales, keep_ratio=True)],
                    [
                        dict(type="RandomChoiceResize", scales=[(400, 4200), (500, 4200), (600, 4200)], keep_ratio=True),
                        dict(type="RandomCrop", crop_type="absolute_range", crop_size=(384, 600), allow_negative_crop=True),
                        dict(type="RandomChoiceResize", scales=scales, keep_ratio=True),
                    ],
                ],
            )
        )
    steps.append(dict(type="FilterAnnotations", min_gt_bbox_wh=(1e-2, 1e-2)))
    closed = opts.stage == "finetune" and opts.finetune_mode in ("closed-set", "ovd")
    if opts.stage == "finetune" and opts.finetune_mode == "ovd":
        if not opts.base_labels:
            raise OdvgError("--finetune-mode ovd needs --base-classes (the label ids/names trained on)", 2)
        steps.append(dict(type="KeepLabels", labels=sorted(opts.base_labels)))
    if closed:  # every OD image sees all (base) class names; VG captions pass through
        steps.append(dict(type="ClosedSetPrompt"))
    else:  # sampled positives + negatives per OD image (mmdet's open-set pretraining recipe)
        steps.append(
            dict(type="RandomSamplingNegPos" if opts.upstream_negatives else "NegPosPrompt", tokenizer_name=text_encoder,
                 num_sample_negative=opts.num_negative, max_tokens=256)
        )
    steps.append(dict(type="PackDetInputs", meta_keys=META_KEYS))
    return steps


def test_pipeline(model: str) -> list[dict[str, Any]]:
    return [
        dict(type="LoadImageFromFile", backend_args=None, imdecode_backend="pillow"),
        dict(type="FixScaleResize", scale=presets.TEST_SCALE[model], keep_ratio=True, backend="pillow"),
        dict(type="LoadAnnotations", with_bbox=True),
        dict(
            type="PackDetInputs",
            meta_keys=("img_id", "img_path", "ori_shape", "img_shape", "scale_factor", "text", "custom_entities", "tokens_positive"),
        ),
    ]


def dataset_config(source: Source, pipeline: list[dict[str, Any]], seed: int = 0) -> dict[str, Any]:
    ds: dict[str, Any] = dict(
        type="IndexedODVGDataset" if source.index_file else "ODVGDataset",
        data_root="",
        ann_file=str(source.ann_file),
        label_map_file=str(source.label_map) if source.label_map else None,
        data_prefix=dict(img=str(source.image_root) + "/"),
        filter_cfg=dict(filter_empty_gt=False),
        pipeline=pipeline,
        return_classes=True,
        backend_args=None,
    )
    if source.index_file:  # same arguments as ODVGDataset plus the index (odvgkit_train/indexed.py)
        ds["index_file"] = str(source.index_file)
    if source.samples is not None or source.class_balanced_threshold is not None:
        ds = dict(
            type="MixtureSampledDataset",
            dataset=ds,
            samples=source.epoch_records,
            seed=seed,
            name=source.name,
            class_balanced_threshold=source.class_balanced_threshold,
        )
    return ds


def build_config(sources: list[Source], opts: TrainOptions) -> dict[str, Any]:
    """The full mmengine config dict for a training run."""
    if opts.stage not in ("pretrain", "finetune"):
        raise OdvgError(f"stage {opts.stage!r}: use pretrain or finetune", 2)
    if opts.finetune_mode not in FINETUNE_MODES:
        raise OdvgError(f"--finetune-mode {opts.finetune_mode!r}: choose one of {', '.join(FINETUNE_MODES)}", 2)
    if opts.batch_size < 1:
        raise OdvgError("--batch-size must be ≥ 1", 2)
    if opts.vis_backend not in VIS_BACKENDS:
        raise OdvgError(f"--vis-backend {opts.vis_backend!r}: choose local or tensorboard", 2)
    if opts.stage == "finetune" and opts.finetune_mode in ("closed-set", "ovd"):
        od = [s for s in sources if s.kind == "od"]
        if not od:
            raise OdvgError(f"--finetune-mode {opts.finetune_mode} needs OD (detection) data with a label map", 2)
    text_encoder = opts.text_encoder
    model = presets.model_config(opts.model, text_encoder)
    iters = total_iters(opts, sources)
    pipeline = train_pipeline(opts, text_encoder)
    warmup = max(1, min(1000, iters // 10))
    ckpt_interval = opts.checkpoint_interval or iters
    cfg: dict[str, Any] = dict(
        default_scope="mmdet",
        custom_imports=dict(imports=["odvgkit_train.mmdet_plugin"], allow_failed_imports=False),
        model=model,
        work_dir=str(opts.work_dir),
        train_dataloader=dict(
            batch_size=opts.batch_size,
            num_workers=opts.num_workers,
            persistent_workers=opts.num_workers > 0,
            sampler=dict(type="InfiniteSampler", shuffle=True),
            batch_sampler=dict(type="AspectRatioBatchSampler"),
            dataset=dict(type="ConcatDataset", datasets=[dataset_config(s, pipeline, opts.seed) for s in sources]),
        ),
        train_cfg=dict(type="IterBasedTrainLoop", max_iters=iters, val_interval=iters + 1),
        val_cfg=None,
        val_dataloader=None,
        val_evaluator=None,
        test_cfg=None,
        test_dataloader=None,
        test_evaluator=None,
        test_pipeline=test_pipeline(opts.model),
        optim_wrapper=dict(
            type="OptimWrapper",
            optimizer=dict(type="AdamW", lr=effective_lr(opts), weight_decay=0.0001),
            clip_grad=dict(max_norm=0.1, norm_type=2),
            paramwise_cfg=dict(
                custom_keys={
                    "absolute_pos_embed": dict(decay_mult=0.0),
                    "backbone": dict(lr_mult=0.1),
                    "language_model": dict(lr_mult=0.1),
                }
            ),
        ),
        param_scheduler=[
            dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=warmup),
            dict(type="MultiStepLR", by_epoch=False, begin=0, end=iters, milestones=[max(warmup + 1, iters * 2 // 3), max(warmup + 2, iters * 8 // 9)], gamma=0.1),
        ],
        default_hooks=dict(
            timer=dict(type="IterTimerHook"),
            logger=dict(type="LoggerHook", interval=log_interval(opts, iters), log_metric_by_epoch=False),
            param_scheduler=dict(type="ParamSchedulerHook"),
            checkpoint=dict(type="CheckpointHook", by_epoch=False, interval=ckpt_interval, max_keep_ckpts=3, save_last=True),
            sampler_seed=dict(type="DistSamplerSeedHook"),
        ),
        env_cfg=dict(
            cudnn_benchmark=False,
            mp_cfg=dict(mp_start_method="fork", opencv_num_threads=0),
            dist_cfg=dict(backend="nccl" if opts.extra.get("cuda") else "gloo"),
        ),
        vis_backends=[dict(type=VIS_BACKENDS[opts.vis_backend])],
        visualizer=dict(type="DetLocalVisualizer", vis_backends=[dict(type=VIS_BACKENDS[opts.vis_backend])], name="visualizer"),
        log_processor=dict(type="LogProcessor", window_size=1, by_epoch=False),
        custom_hooks=[dict(type="WeightSyncCheckHook")] if opts.check_sync else [],
        # CPU data parallel (gloo): DDP must not be given device ids
        model_wrapper_cfg=dict(type="MMDistributedDataParallel", broadcast_buffers=False, find_unused_parameters=False,
                               **({} if opts.extra.get("cuda") else {"device_ids": None})),
        log_level="INFO",
        load_from=opts.load_from,
        resume=False,
        launcher=opts.launcher,
        randomness=dict(seed=opts.seed, deterministic=False),
        odvgkit=dict(
            stage=opts.stage,
            model_preset=opts.model,
            finetune_mode=opts.finetune_mode if opts.stage == "finetune" else None,
            batch_size=opts.batch_size,
            world_size=opts.world_size,
            base_lr=opts.lr if opts.lr is not None else presets.BASE_LR[opts.stage][opts.model],
            base_batch=presets.BASE_BATCH,
            sources=[s.as_dict() for s in sources],
            label_maps={str(s.ann_file): s.names for s in sources if s.kind == "od"},
        ),
    )
    return cfg


def write_config(cfg: dict[str, Any], path: Path) -> Path:
    """Dump ``cfg`` as an mmengine python config (atomically)."""
    from mmengine.config import Config

    from odvgkit.io import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    text = Config(cfg).pretty_text
    with atomic_path(path, force=True) as tmp:  # the work dir's own config, rewritten per run
        Path(tmp).write_text(text, encoding="utf-8")
    return path
