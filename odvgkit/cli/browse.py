"""``odvgkit browse …``: look at ODVG data — rendered images, or the FiftyOne App."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from odvgkit.cli._common import Force, Json, Quiet, Strict, reporter

if TYPE_CHECKING:
    from odvgkit.browse.app import AppServer
    from odvgkit.report import Reporter

browse_app = typer.Typer(
    help="Look at ODVG data: draw boxes/phrases/captions to images, or open it in the FiftyOne App.",
    no_args_is_help=True,
)

ImagesRoot = Annotated[
    Path, typer.Option("--images-root", "-i", help="Folder that record filenames are relative to.")
]
LabelMapOpt = Annotated[
    Path | None, typer.Option("--label-map", "-m", help="Label map {\"0\": name, ...} naming OD labels.")
]
DbDir = Annotated[
    Path | None,
    typer.Option(
        "--db-dir",
        help="MongoDB directory for FiftyOne. Default: $FIFTYONE_DATABASE_DIR or ~/.fiftyone/var/lib/mongo. "
        "Ignored when FIFTYONE_DATABASE_URI is set.",
    ),
]


@browse_app.command("render")
def render(
    input: Annotated[Path, typer.Argument(help="ODVG records (.jsonl/.json[.gz]/.parquet), OD or VG.")],
    images_root: ImagesRoot,
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the rendered images.")],
    n: Annotated[int, typer.Option("-n", "--num", help="How many records to draw (0: all).")] = 50,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Draw a random sample with this seed (default: the first N).")
    ] = None,
    label_map: LabelMapOpt = None,
    predictions: Annotated[
        Path | None,
        typer.Option("--predictions", "-p", help="ODVG predictions (boxes with score), drawn beside the ground truth."),
    ] = None,
    score_thr: Annotated[
        float, typer.Option("--score-thr", help="Hide predicted boxes scoring below this.")
    ] = 0.3,
    max_side: Annotated[
        int, typer.Option("--max-side", help="Shrink images whose longer side exceeds this (0: never).")
    ] = 1333,
    fmt: Annotated[str, typer.Option("--format", help="Output image format: jpg | png.")] = "jpg",
    strict: Strict = False,
    force: Force = False,
    quiet: Quiet = False,
    json_mode: Json = False,
) -> None:
    """Draw boxes, labels (OD) or phrases (VG) and the caption onto the images, one file per record.

    Each VG region's boxes and the characters of its tokens_positive spans in the caption share
    one colour; OD boxes are coloured by label. With --predictions, ground truth (left) and
    predictions with scores (right) are drawn side by side, matched by filename. Outputs are named
    <line>_<image>.<format>. Needs only Pillow (no mmdet, no system font).

    [bold]Examples[/bold]

      odvgkit browse render coco_val_od.jsonl -i coco/val2017 -o viz -m coco_label_map.json

      odvgkit browse render flickr_vg.jsonl -i flickr30k/images -o viz -n 20 --seed 0

      odvgkit browse render val_od.jsonl -i val2017 -o viz --predictions preds.jsonl --score-thr 0.5
    """
    from odvgkit.browse.render import RenderOptions, render_file
    from odvgkit.errors import ProblemLog
    from odvgkit.io import read_label_map

    rep = reporter(quiet, json_mode)
    problems = ProblemLog(strict=strict)
    opts = RenderOptions(
        images_root=images_root,
        out_dir=output,
        label_map=read_label_map(label_map) if label_map else None,
        score_threshold=score_thr,
        max_side=max_side or None,
        ext=fmt.lower().lstrip(".").replace("jpeg", "jpg"),
    )
    with rep.progress(f"render {input.name}", total=n if n > 0 else None, unit="images") as advance:
        stats = render_file(input, opts, n=n, seed=seed, predictions=predictions, problems=problems, advance=advance)
    rows: dict[str, object] = {
        "records read": stats.records_read,
        "images written": stats.rendered,
        "boxes drawn": stats.boxes,
        "images missing": stats.images_missing,
        "records skipped (no filename)": stats.skipped,
        "output": str(output),
    }
    if predictions is not None:
        rows["prediction boxes drawn"] = stats.prediction_boxes
        rows["no prediction record"] = stats.predictions_missing
    rep.summary("browse render", rows, problems)
    if problems.n_errors:
        raise typer.Exit(1)


@browse_app.command("fiftyone")
def fiftyone(
    input: Annotated[
        Path | None, typer.Argument(help="ODVG records to load. Omit to reopen the existing dataset --name.")
    ] = None,
    images_root: Annotated[
        Path | None, typer.Option("--images-root", "-i", help="Folder that record filenames are relative to.")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Dataset name. Default: the file name.")] = None,
    port: Annotated[int, typer.Option("--port", help="Port of the App.")] = 5151,
    address: Annotated[str, typer.Option("--address", help="Loopback address the App binds to.")] = "127.0.0.1",
    label_map: LabelMapOpt = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing dataset of that name.")] = False,
    limit: Annotated[
        int | None, typer.Option("--limit", "-n", help="Load only the first N records (FiftyOne adds ~100 samples/s).")
    ] = None,
    launch: Annotated[
        bool, typer.Option("--launch/--no-launch", help="Start the App (or only load the dataset).")
    ] = True,
    db_dir: DbDir = None,
    strict: Strict = False,
    quiet: Quiet = False,
    json_mode: Json = False,
) -> None:
    """Load OD and VG records into a persistent FiftyOne dataset and open it in the App.

    Each sample has detections with their label (class or phrase), per-detection phrase and
    tokens_positive, its caption, and its source file and line. Records whose image is missing
    are reported and counted; the rest load. The App and its database listen on 127.0.0.1 only;
    Ctrl-C stops both. Tag samples or detections 'reject' in the App, then write the reviewed
    data back with 'odvgkit browse export-fiftyone'. Needs the 'browse' extra.

    [bold]Examples[/bold]

      odvgkit browse fiftyone pseudo_labels.jsonl -i images/ --name pseudo --port 5151

      odvgkit browse fiftyone --name pseudo

      odvgkit browse fiftyone val_od.jsonl -i val2017 -m coco_label_map.json --no-launch
    """
    from odvgkit.browse import app as fapp
    from odvgkit.errors import OdvgError, ProblemLog, require
    from odvgkit.io import read_label_map

    require("fiftyone", "browse")  # a one-line hint before any work
    rep = reporter(quiet, json_mode)
    problems = ProblemLog(strict=strict)
    if input is None and name is None:
        raise OdvgError("give a records FILE to load, or --name of an existing dataset to reopen", exit_code=2)
    if input is not None and images_root is None:
        raise OdvgError("--images-root is required to load a records file", exit_code=2)
    if launch:
        fapp.check_loopback(address)
        if fapp.port_in_use(address, port):
            raise OdvgError(f"port {port} on {address} is in use; choose another with --port", exit_code=2)
    lm = read_label_map(label_map) if label_map else None
    base_dir = db_dir or fapp.default_database_dir()
    rows: dict[str, object] = {}
    with fapp.interrupt_on_sigterm(), fapp.database(base_dir):
        from odvgkit.browse import fiftyone_io as fio

        if input is not None:
            ds_name = name or fio.dataset_name_for(input)
            with rep.progress(f"load {input.name}", unit="records") as advance:
                stats = fio.load_dataset(input, images_root, ds_name, label_map=lm, overwrite=overwrite,  # type: ignore[arg-type]
                                         problems=problems, advance=advance, limit=limit)
            rows = {"dataset": ds_name, "records read": stats.records_read, "samples": stats.samples,
                    "OD records": stats.od, "VG records": stats.vg, "detections": stats.detections,
                    "images missing (not loaded)": stats.images_missing}
        else:
            ds_name = str(name)
            if not fio.dataset_exists(ds_name):
                raise OdvgError(f"no FiftyOne dataset named {ds_name!r}; give a records FILE to load it")
            rows = {"dataset": ds_name}
        if launch:
            with fapp.app_server(port, address, base_dir / "log" / "app.log") as server:
                url = server.dataset_url(ds_name)
                rows["url"] = url
                rep.summary("browse fiftyone", rows, problems)  # now, not when the App stops hours later
                if not quiet:  # also with --json: stderr, so scripts and people find the App
                    rep.console.print(f"FiftyOne App: {url}   (Ctrl-C to stop)", markup=False, highlight=False)
                _wait(server, rep)
        else:
            rep.summary("browse fiftyone", rows, problems)
    if problems.n_errors:
        raise typer.Exit(1)


def _wait(server: AppServer, rep: Reporter) -> None:
    """Block until Ctrl-C / SIGTERM, or until the App server dies (an error naming its log)."""
    import time

    from odvgkit.errors import OdvgError

    try:
        while server.process.poll() is None:
            time.sleep(0.5)
        raise OdvgError(f"the FiftyOne App server stopped (exit {server.process.returncode}); log: {server.log}")
    except KeyboardInterrupt:
        rep.info("stopping the App and the database")


@browse_app.command("export-fiftyone")
def export_fiftyone(
    name: Annotated[str, typer.Argument(help="FiftyOne dataset loaded by 'browse fiftyone'.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Records file to write (.jsonl/.json[.gz]/.parquet).")],
    db_dir: DbDir = None,
    strict: Strict = False,
    force: Force = False,
    quiet: Quiet = False,
    json_mode: Json = False,
) -> None:
    """Write a (reviewed) FiftyOne dataset back to ODVG records, in source-line order.

    Samples or detections tagged 'reject' and deleted detections are left out; a VG region whose
    boxes are all gone is left out; unchanged boxes keep their exact numbers; confidence becomes
    score. Every other field of each record is kept as it was loaded. Needs the 'browse' extra.

    [bold]Examples[/bold]

      odvgkit browse export-fiftyone pseudo -o pseudo_reviewed.jsonl

      odvgkit browse export-fiftyone coco_val -o reviewed.parquet --json
    """
    from odvgkit.browse import app as fapp
    from odvgkit.errors import ProblemLog, require

    require("fiftyone", "browse")
    rep = reporter(quiet, json_mode)
    problems = ProblemLog(strict=strict)
    with fapp.interrupt_on_sigterm(), fapp.database(db_dir or fapp.default_database_dir()):
        from odvgkit.browse import fiftyone_io as fio

        stats = fio.export_dataset(name, output, problems)
    rep.summary(
        "browse export-fiftyone",
        {
            "dataset": name,
            "samples": stats.samples,
            "records written": stats.written,
            "samples rejected": stats.rejected_samples,
            "detections rejected": stats.rejected_detections,
            "boxes written": stats.boxes_written,
            "boxes moved or added": stats.boxes_moved,
            "source records never loaded": stats.not_loaded,
            "output": str(output),
        },
        problems,
    )
    if problems.n_errors:
        raise typer.Exit(1)


@browse_app.command("pipeline")
def pipeline(
    config: Annotated[Path, typer.Argument(help="Training config, or a work dir holding config.py (odvgkit train …).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for NNNN.png and samples.jsonl.")],
    n: Annotated[int, typer.Option("-n", "--num", help="How many samples to draw.")] = 8,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Seed of sampler and augmentation (default: the config's randomness.seed).")
    ] = None,
    num_workers: Annotated[
        int | None, typer.Option("--num-workers", help="Dataloader workers (default: the config's).")
    ] = None,
    force: Force = False,
    quiet: Quiet = False,
    json_mode: Json = False,
) -> None:
    """Draw the first N samples exactly as the training dataloader yields them, after augmentation.

    Builds the config's train_dataloader as mmengine's Runner does (sampler, batch sampler, seed)
    and runs the real pipeline; each sample's image is drawn at the size the model gets it, with
    its boxes and names; for Grounding DINO the text prompt is drawn underneath with each box's
    tokens_positive span in the box's colour. samples.jsonl lists every box, label and span.
    Needs the 'train' extra.

    [bold]Examples[/bold]

      odvgkit browse pipeline work_dirs/gdino_tiny -n 8 -o pipeline_viz

      odvgkit browse pipeline work_dirs/rtmdet/config.py -n 16 -o viz --seed 1
    """
    from odvgkit.errors import require

    for module in ("torch", "mmengine", "mmdet", "odvgkit_train"):
        require(module, "train")
    from odvgkit_train.pipeline_preview import preview

    rep = reporter(quiet, json_mode)
    with rep.progress("browse pipeline", total=n, unit="images") as advance:
        stats = preview(config, output, n, seed=seed, num_workers=num_workers, advance=advance)
    rep.summary("browse pipeline", {
        "images written": stats.samples,
        "boxes drawn": stats.boxes,
        "boxes past the image border": stats.boxes_outside,
        "images with a text prompt": stats.with_prompt,
        "output": str(output),
    })
    if stats.samples < n:
        rep.warn(f"the dataloader ended after {stats.samples} images (asked for {n})")


def register(app: typer.Typer) -> None:
    app.add_typer(browse_app, name="browse", rich_help_panel="Browse")
