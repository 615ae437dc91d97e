"""``odvgkit grit …`` (download, process) and ``odvgkit convert grit2odvg``: the GRIT-20M pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from odvgkit.cli._common import Force, Json, Quiet, Strict, reporter

grit_app = typer.Typer(
    help="GRIT-20M: download images with img2dataset, unpack shards (local or Spark).",
    no_args_is_help=True,
)

Engine = Annotated[
    str, typer.Option("--engine", help="Where shards run: local (process pool) or spark (one task per shard).")
]
Workers = Annotated[
    int | None, typer.Option("--workers", "-w", min=1, help="Local engine: worker processes (default: all cores).")
]
Master = Annotated[
    str,
    typer.Option("--master", help="Spark master: local[N] or local[*] (driver bound to 127.0.0.1) or spark://host:port."),
]
SparkConf = Annotated[
    list[str] | None, typer.Option("--spark-conf", help="Extra Spark setting KEY=VALUE (repeatable).")
]


@grit_app.command("download")
def download(
    metadata: Annotated[list[Path], typer.Argument(help="GRIT metadata parquet file(s), in shard order.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for img2dataset's webdataset shards.")],
    distributor: Annotated[
        str, typer.Option("--distributor", help="img2dataset distributor: multiprocessing or pyspark.")
    ] = "multiprocessing",
    processes: Annotated[int, typer.Option("--processes", min=1, help="Download processes.")] = 1,
    threads: Annotated[int, typer.Option("--threads", min=1, help="Download threads per process.")] = 64,
    image_size: Annotated[int, typer.Option("--image-size", min=1, help="Longest side after resizing (keep_ratio).")] = 512,
    resize_mode: Annotated[
        str, typer.Option("--resize-mode", help="keep_ratio or no (border/center_crop would break normalised boxes).")
    ] = "keep_ratio",
    samples_per_shard: Annotated[int, typer.Option("--samples-per-shard", min=1, help="Samples per tar shard.")] = 10000,
    timeout: Annotated[int, typer.Option("--timeout", min=1, help="Seconds per image request.")] = 10,
    retries: Annotated[int, typer.Option("--retries", min=0, help="Retries per failed image.")] = 0,
    master: Master = "local[*]",
    quiet: Quiet = False,
    json_mode: Json = False,
) -> None:
    """Download GRIT images into webdataset shards with img2dataset (resumable).

    Every grounding column (noun_chunks, ref_exps, id, CLIP scores) is saved in each sample's
    JSON; width/height there are the downloaded (resized) sizes. Rerunning the same command skips
    the shards already complete. With --distributor pyspark the download runs on --master.

    [bold]Examples[/bold]

      odvgkit grit download grit-20m/*.parquet -o grit_raw --processes 16 --threads 128

      odvgkit grit download coyo_0_snappy.parquet -o grit_raw --resize-mode no --distributor pyspark --master local[8]
    """
    from odvgkit.grit.download import DownloadOptions, run_download
    from odvgkit.grit.engine import spark_session

    rep = reporter(quiet, json_mode)
    opts = DownloadOptions(
        processes=processes, threads=threads, image_size=image_size, resize_mode=resize_mode,
        samples_per_shard=samples_per_shard, timeout=timeout, retries=retries, distributor=distributor,
    )
    rep.info(f"downloading {len(metadata)} metadata file(s) into {output} (img2dataset, {distributor})")
    if distributor == "pyspark":
        with spark_session(master):
            stats = run_download(metadata, output, opts, log_to_file=quiet)
    else:
        stats = run_download(metadata, output, opts, log_to_file=quiet)
    rep.summary("grit download", {"output": str(output), **stats})


@grit_app.command("process")
def process(
    raw_dir: Annotated[Path, typer.Argument(help="img2dataset output folder (*.tar, *.parquet, *_stats.json).")],
    out_dir: Annotated[Path, typer.Argument(help="Output: annotations/<shard>.json, images/<shard>/, stats/.")],
    engine: Engine = "local",
    workers: Workers = None,
    master: Master = "local[*]",
    spark_conf: SparkConf = None,
    strict: Strict = False,
    quiet: Quiet = False,
    json_mode: Json = False,
) -> None:
    """Unpack downloaded shards into per-shard annotation lists and image folders (resumable).

    Each shard is done or not at all; a rerun skips finished shards. Every input row is counted:
    written, or dropped with its reason (failed_to_download, missing-in-tar, corrupt-image …).
    Damaged shards are reported and never stop the others.

    [bold]Examples[/bold]

      odvgkit grit process grit_raw grit_processed -w 16

      odvgkit grit process grit_raw grit_processed --engine spark --master spark://head:7077
    """
    from odvgkit.errors import ProblemLog
    from odvgkit.grit.engine import default_workers, parse_conf, shard_runner
    from odvgkit.grit.process import find_shards, process_all

    rep = reporter(quiet, json_mode)
    problems = ProblemLog(strict=strict)
    conf = parse_conf(spark_conf or [])
    ready, _ = find_shards(raw_dir)
    with rep.progress("grit process", total=len(ready), unit="shards") as advance, \
            shard_runner(engine, workers or default_workers(), master, conf) as run:
        totals, rows = process_all(raw_dir, out_dir, run, problems, advance)
    tables = {"per_shard": rows} if json_mode or len(rows) <= 50 else None
    rep.summary("grit process", {"output": str(out_dir), "engine": engine, **dict(sorted(totals.items()))},
                problems, tables)
    if problems.n_errors:
        raise typer.Exit(1)


def grit2odvg(
    root: Annotated[Path, typer.Argument(help="Output folder of 'grit process' (annotations/, images/).")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="ODVG VG output (.json/.jsonl[.gz], .parquet). Default: ROOT/grit20m_vg.json.")
    ] = None,
    token_limit: Annotated[
        int, typer.Option("--token-limit", min=2, help="Drop captions with this many BERT tokens or more (upstream: 240).")
    ] = 240,
    multi_word: Annotated[
        bool, typer.Option("--multi-word/--single-word", help="Keep phrases with spaces (upstream drops them).")
    ] = False,
    ascii_only: Annotated[
        bool, typer.Option("--ascii-only/--allow-non-ascii", help="Drop phrases with non-ASCII characters.")
    ] = True,
    drop_emoji: Annotated[bool, typer.Option("--drop-emoji/--keep-emoji", help="Drop phrases containing emoji.")] = True,
    phrases: Annotated[
        str, typer.Option("--phrases", help="Which boxes become regions: ref_exps (upstream) or noun_chunks.")
    ] = "ref_exps",
    tokenizer: Annotated[
        str | None, typer.Option("--tokenizer", help="Local tokenizer dir/vocab/tokenizer.json (default: bundled bert-base-uncased).")
    ] = None,
    stats_path: Annotated[
        Path | None, typer.Option("--stats", help="Also write per-shard statistics (JSON) here.")
    ] = None,
    engine: Engine = "local",
    workers: Workers = None,
    master: Master = "local[*]",
    spark_conf: SparkConf = None,
    strict: Strict = False,
    force: Force = False,
    quiet: Quiet = False,
    json_mode: Json = False,
) -> None:
    """Processed GRIT shards → ODVG VG records (flat boxes, string phrases, tokens_positive).

    Boxes are made absolute with the downloaded image sizes; phrase filters (punctuation, single
    word, ASCII, emoji) apply to each phrase, not the whole caption; captions at or over the token
    limit are dropped (bundled BERT uncased tokenizer, offline). Every shard is converted and the
    statistics say, per shard, what was dropped and why.

    [bold]Examples[/bold]

      odvgkit convert grit2odvg grit_processed -o grit20m_vg.json -w 16

      odvgkit convert grit2odvg grit_processed -o grit_vg.jsonl --multi-word --engine spark --master local[8]
    """
    import orjson

    from odvgkit.convert.grit import GritOptions, annotation_files, write_grit
    from odvgkit.errors import OdvgError, ProblemLog
    from odvgkit.grit.engine import default_workers, parse_conf, shard_runner
    from odvgkit.io import atomic_write
    from odvgkit.tokenizer import load_tokenizer

    if phrases not in ("ref_exps", "noun_chunks"):
        raise OdvgError(f"--phrases {phrases!r}: choose ref_exps or noun_chunks", exit_code=2)
    load_tokenizer(tokenizer)  # fail here, once, with a clear message, not in every worker
    rep = reporter(quiet, json_mode)
    problems = ProblemLog(strict=strict)
    opts = GritOptions(token_limit=token_limit, multi_word=multi_word, ascii_only=ascii_only,
                       drop_emoji=drop_emoji, phrases=phrases, tokenizer=tokenizer)
    out = output or root / "grit20m_vg.json"
    n_files = len(annotation_files(root))
    conf = parse_conf(spark_conf or [])
    with rep.progress("grit2odvg", total=n_files, unit="shards") as advance, \
            shard_runner(engine, workers or default_workers(), master, conf) as run:
        totals, rows = write_grit(root, out, opts, run, problems, advance)
    if stats_path is not None:
        with atomic_write(stats_path) as fh:
            fh.write(orjson.dumps({"totals": dict(sorted(totals.items())), "shards": rows}, option=orjson.OPT_INDENT_2))
    tables = {"per_shard": rows} if json_mode or len(rows) <= 50 else None
    rep.summary("grit2odvg", {"output": str(out), "engine": engine, **dict(sorted(totals.items()))}, problems, tables)
    if problems.n_errors:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    from odvgkit.cli.convert import convert_app

    app.add_typer(grit_app, name="grit", rich_help_panel="Convert")
    convert_app.command("grit2odvg")(grit2odvg)
