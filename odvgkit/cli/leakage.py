"""``odvgkit leakage audit``: any training sets against any evaluation sets (ids, names, hashes)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from odvgkit.cli._common import Force, Json, Quiet, Strict, reporter

leakage_app = typer.Typer(
    help="Find (and remove) training images that also occur in evaluation sets.", no_args_is_help=True
)


@leakage_app.command("audit")
def audit(
    train: Annotated[
        list[str], typer.Argument(help="Training files: ODVG or COCO-style json, each optionally FILE@IMAGE_ROOT.")
    ],
    against: Annotated[
        list[str],
        typer.Option("--against", "-a", help="Evaluation file (COCO/LVIS/MDETR/ODVG/grefs/refs) as FILE[@IMAGE_ROOT], or a directory of RefCOCO-family files; repeatable."),
    ],
    by: Annotated[
        str, typer.Option("--by", help="Tests, comma separated: id, name, content, phash (content/phash need image roots).")
    ] = "id,name",
    phash_threshold: Annotated[
        int, typer.Option("--phash-threshold", help="Max Hamming distance (of 64 bits) for a perceptual match.")
    ] = 4,
    remove: Annotated[
        bool, typer.Option("--remove", help="Write each training file without its leaking images (+ a removal manifest) into -o DIR.")
    ] = False,
    output_dir: Annotated[
        Path | None, typer.Option("--output-dir", "-o", help="Directory for filtered files, manifests and leakage_report.json.")
    ] = None,
    cache: Annotated[
        Path | None, typer.Option("--cache", help="Hash cache (SQLite). Default: ~/.cache/odvgkit/image-hashes.sqlite.")
    ] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not read or write the hash cache.")] = False,
    workers: Annotated[int, typer.Option("--workers", "-j", help="Threads decoding/hashing images.")] = 8,
    strict: Strict = False,
    force: Force = False,
    quiet: Quiet = False,
    json_mode: Json = False,
) -> None:
    """Audit training data against evaluation data and report every leak per (train, benchmark, split).

    Tests: [bold]id[/bold] (COCO image id across 2014/2017 names, MDETR original_id, LVIS ids),
    [bold]name[/bold] (file basename), [bold]content[/bold] (identical bytes) and [bold]phash[/bold]
    (perceptual hash within --phash-threshold bits: re-encoded or resized copies across sources such as
    Objects365/OpenImages/GRIT vs COCO/LVIS/ODinW). Hashes are cached, so a second audit reads no
    image. Unreadable images are counted and reported, never fatal. With --remove, each training
    file is written to -o DIR without its leaking images, with a manifest of what went and why.

    [bold]Examples[/bold]

      odvgkit leakage audit coco_train_od.jsonl --against lvis_v1_val.json --against mdetr_annotations/

      odvgkit leakage audit o365_od.jsonl@/data/o365/images -a coco_val_od.jsonl@/data/coco/val2017 --by content,phash

      odvgkit leakage audit instances_train2017.json -a lvis_v1_val.json --remove -o clean/
    """
    import orjson

    from odvgkit.curate.dedup import write_removal
    from odvgkit.curate.hashes import HashCache, default_cache
    from odvgkit.curate.leakage import METHODS, audit_source, index_eval, parse_methods
    from odvgkit.curate.sources import open_source, scan_refexp
    from odvgkit.errors import OdvgError, ProblemLog
    from odvgkit.io import atomic_write

    methods = parse_methods(by)
    if remove and output_dir is None:
        raise OdvgError("--remove needs --output-dir/-o DIR for the filtered files", exit_code=2)
    if workers < 1:
        raise OdvgError(f"--workers {workers}: must be at least 1", exit_code=2)
    train_sources = [open_source(t) for t in train]
    eval_sources = []
    for a in against:  # a directory means: every RefCOCO-family evaluation file in it
        eval_sources += scan_refexp([Path(a)])[0] if Path(a).is_dir() else [open_source(a)]
    if any(m in ("content", "phash") for m in methods):
        for s in [*train_sources, *eval_sources]:
            if s.root is None:
                raise OdvgError(f"{s.path}: --by content/phash needs its image root: give it as FILE@IMAGE_ROOT")
            if not s.root.is_dir():
                raise OdvgError(f"{s.root}: image root is not a directory")
        if "phash" in methods:
            from odvgkit.errors import require

            require("imagehash", "curate")
    rep = reporter(quiet, json_mode)
    problems = ProblemLog(strict=strict)
    hc = HashCache(None if no_cache else (cache or default_cache()))
    try:
        with rep.progress("indexing evaluation sets", total=None, unit="images") as adv:
            index = index_eval(eval_sources, methods, phash_threshold, hc, workers, problems, adv)
        audits = []
        for src in train_sources:
            with rep.progress(f"auditing {src.path.name}", total=None, unit="images") as adv:
                audits.append(audit_source(src, index, hc, workers, problems, adv))
    finally:
        hc.close()
    pairs = [row for a in audits for row in a.pairs()]
    written: list[dict[str, object]] = []
    if remove and output_dir is not None:
        used: set[str] = set()
        for a in audits:
            name = a.source.path.name
            if name in used:
                raise OdvgError(f"{a.source.path}: two training files named {name}; rename one")
            used.add(name)
            out = output_dir / name
            stem = name.split(".")[0]
            counts = write_removal(a, out, output_dir / f"{stem}_removed.json")
            written.append({"train": name, "output": str(out), **counts})
    if output_dir is not None:
        report = {
            "methods": list(methods),
            "phash_threshold": phash_threshold if "phash" in methods else None,
            "evaluation": [{"file": str(s.path), "benchmark": s.benchmark} for s in eval_sources],
            "train": [{"file": str(a.source.path), "images": a.images, "leaking_images": len(a.leaks),
                       "unreadable_images": a.unreadable} for a in audits],
            "pairs": pairs,
        }
        with atomic_write(output_dir / "leakage_report.json") as fh:
            fh.write(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    rows: dict[str, object] = {
        "methods": ",".join(m for m in METHODS if m in methods),
        "evaluation_images": len(index.images),
        "evaluation_unreadable": index.unreadable,
        "train_images": sum(a.images for a in audits),
        "train_unreadable": sum(a.unreadable for a in audits),
        "leaking_images": sum(len(a.leaks) for a in audits),
    }
    if output_dir is not None:
        rows["report"] = str(output_dir / "leakage_report.json")
    tables: dict[str, list] = {"pairs": pairs}
    if written:
        tables["removed"] = written
    rep.summary("leakage audit", rows, problems, tables=tables)
    if problems.n_errors:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(leakage_app, name="leakage", rich_help_panel="Curate")
