"""Drive img2dataset over GRIT parquet metadata (``odvgkit grit download``).

GRIT-20M ships parquet files with ``url``, ``caption``, ``width``/``height`` (of the original
image), ``key``, ``id``, CLIP similarities, ``noun_chunks`` and ``ref_exps`` (boxes normalised to
the image). img2dataset downloads the images into webdataset shards; the choices here keep the
grounding usable:

* ``resize_mode`` is ``keep_ratio`` (default) or ``no``: ``border`` and ``center_crop`` pad or
  crop the picture, after which the normalised boxes point at the wrong pixels;
* every metadata column except img2dataset's reserved ones (``key``, ``width``, ``height``, … — it
  refuses them and writes its own: the *downloaded* size) is saved into each sample's JSON, so
  ``noun_chunks``/``ref_exps``/``id``/the CLIP scores reach the process step;
* several metadata files are staged as links in ``RAW_DIR/_metadata`` in the order given, so shard
  numbers are stable across runs; with img2dataset's ``incremental`` mode a rerun skips the shards
  that have their ``<shard>_stats.json`` and redoes the rest. ``RAW_DIR/_metadata/odvgkit_download.json``
  remembers the inputs and refuses a resume with different ones (shard numbers would shift);
* wandb is off and albumentations' update check is silenced; img2dataset's chatter goes to stderr
  (or, with ``--quiet``, to ``RAW_DIR/img2dataset.log``) so ``--json`` keeps stdout clean.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from odvgkit.errors import OdvgError, require

RESERVED = frozenset(
    {"key", "caption", "url", "width", "height", "original_width", "original_height", "status",
     "error_message", "exif", "md5", "sha256", "sha512"}
)  # img2dataset's own columns: it refuses them in save_additional_columns
GROUNDING = ("noun_chunks", "ref_exps")
RESIZE_MODES = ("keep_ratio", "no")
DISTRIBUTORS = ("multiprocessing", "pyspark")
MANIFEST = "_metadata/odvgkit_download.json"  # not beside the shards: img2dataset reads every *.json there as shard stats


@dataclass(frozen=True)
class DownloadOptions:
    processes: int = 1
    threads: int = 64
    image_size: int = 512
    resize_mode: str = "keep_ratio"
    samples_per_shard: int = 10000
    timeout: int = 10
    retries: int = 0
    distributor: str = "multiprocessing"
    url_col: str = "url"
    caption_col: str = "caption"


def metadata_columns(paths: Sequence[Path], url_col: str = "url", caption_col: str = "caption") -> list[str]:
    """The columns to save per sample; checks every file has the same usable schema."""
    import pyarrow.parquet as pq

    if not paths:
        raise OdvgError("give at least one GRIT metadata parquet file", exit_code=2)
    first: list[str] | None = None
    for path in paths:
        if not path.is_file():
            raise OdvgError(f"{path}: no such metadata file")
        try:
            names = pq.read_schema(path).names
        except Exception as exc:  # pyarrow raises several types for non-parquet input
            raise OdvgError(f"{path}: not a readable parquet file: {exc}") from None
        for need in (url_col, caption_col):
            if need not in names:
                raise OdvgError(f"{path}: column {need!r} missing (columns: {', '.join(names)})")
        if not any(g in names for g in GROUNDING):
            raise OdvgError(f"{path}: no 'ref_exps' or 'noun_chunks' column: not GRIT metadata")
        if first is None:
            first = names
        elif set(names) != set(first):
            raise OdvgError(f"{path}: columns differ from {paths[0]} ({sorted(set(names) ^ set(first))})")
    assert first is not None
    return [c for c in first if c not in RESERVED and c not in (url_col, caption_col)]


def stage_metadata(paths: Sequence[Path], raw_dir: Path) -> Path:
    """Link the metadata files into ``RAW_DIR/_metadata`` as ``00000_<name>.parquet``, …"""
    stage = raw_dir / "_metadata"
    stage.mkdir(parents=True, exist_ok=True)
    wanted = {f"{i:05d}_{p.name}" if p.name.endswith(".parquet") else f"{i:05d}_{p.name}.parquet": p.resolve()
              for i, p in enumerate(paths)}
    for entry in stage.iterdir():
        if entry.is_symlink() and (entry.name not in wanted or entry.resolve() != wanted[entry.name]):
            entry.unlink()
    for name, target in wanted.items():
        link = stage / name
        if not link.is_symlink():
            link.symlink_to(target)
    return stage


def check_manifest(raw_dir: Path, paths: Sequence[Path], opts: DownloadOptions) -> dict[str, Any]:
    """Refuse to resume into ``raw_dir`` with other inputs or shard size (shards would shift)."""
    manifest = {
        "metadata": [str(p.resolve()) for p in paths],
        "samples_per_shard": opts.samples_per_shard,
        "image_size": opts.image_size,
        "resize_mode": opts.resize_mode,
    }
    path = raw_dir / MANIFEST
    if path.is_file():
        old = orjson.loads(path.read_bytes())
        for key in ("metadata", "samples_per_shard", "image_size", "resize_mode"):
            if old.get(key) != manifest[key]:
                raise OdvgError(
                    f"{raw_dir}: an earlier download used {key}={old.get(key)!r}, now {manifest[key]!r}; "
                    "resume with the same inputs or choose another output folder"
                )
    return manifest


def check_options(opts: DownloadOptions) -> None:
    if opts.resize_mode not in RESIZE_MODES:
        raise OdvgError(f"--resize-mode {opts.resize_mode!r}: choose {' or '.join(RESIZE_MODES)} "
                        "(border/center_crop would break the normalised boxes)", exit_code=2)
    if opts.distributor not in DISTRIBUTORS:
        raise OdvgError(f"--distributor {opts.distributor!r}: choose one of {', '.join(DISTRIBUTORS)}", exit_code=2)


def check_output_folder(raw_dir: Path) -> None:
    """img2dataset reads every ``RAW_DIR/*.json`` as ``<shard>_stats.json`` and crashes on others."""
    if raw_dir.exists() and not raw_dir.is_dir():
        raise OdvgError(f"{raw_dir}: exists and is not a folder")
    for path in sorted(raw_dir.glob("*.json")) if raw_dir.is_dir() else []:
        if not re.fullmatch(r"\d+_stats\.json", path.name):
            raise OdvgError(f"{path}: not an img2dataset shard stats file; download into an empty folder "
                            "(img2dataset reads every *.json there as shard stats)")


def img2dataset_kwargs(stage: Path, raw_dir: Path, columns: list[str], opts: DownloadOptions) -> dict[str, Any]:
    """The exact ``img2dataset.download`` call (a pure function: the tests check it)."""
    check_options(opts)
    return {
        "url_list": str(stage),
        "input_format": "parquet",
        "url_col": opts.url_col,
        "caption_col": opts.caption_col,
        "save_additional_columns": list(columns),
        "output_folder": str(raw_dir),
        "output_format": "webdataset",
        "image_size": opts.image_size,
        "resize_mode": opts.resize_mode,
        "resize_only_if_bigger": True,
        "processes_count": opts.processes,
        "thread_count": opts.threads,
        "number_sample_per_shard": opts.samples_per_shard,
        "timeout": opts.timeout,
        "retries": opts.retries,
        "distributor": opts.distributor,
        "incremental_mode": "incremental",
        "enable_wandb": False,
        "disallowed_header_directives": [],
    }


@contextlib.contextmanager
def _redirect_fds(target: int, fds: tuple[int, ...]) -> Iterator[None]:
    """Point file descriptors (inherited by img2dataset's worker processes) at ``target``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(fd) for fd in fds]
    for fd in fds:
        os.dup2(target, fd)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, copy in zip(fds, saved, strict=True):
            os.dup2(copy, fd)
            os.close(copy)


def run_download(
    metadata: Sequence[Path], raw_dir: Path, opts: DownloadOptions, log_to_file: bool = False
) -> dict[str, Any]:
    """Download (or resume), then return the totals read back from img2dataset's stats files."""
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    os.environ.setdefault("WANDB_MODE", "disabled")
    os.environ.setdefault("WANDB_SILENT", "true")
    paths = [Path(p) for p in metadata]
    check_options(opts)
    columns = metadata_columns(paths, opts.url_col, opts.caption_col)
    check_output_folder(raw_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    manifest = check_manifest(raw_dir, paths, opts)
    stage = stage_metadata(paths, raw_dir)
    kwargs = img2dataset_kwargs(stage, raw_dir, columns, opts)
    require("img2dataset", "grit")
    from img2dataset import download

    from odvgkit.io import atomic_write

    with atomic_write(raw_dir / MANIFEST, force=True) as fh:  # the resumable job's own manifest
        fh.write(orjson.dumps(manifest | {"options": asdict(opts), "columns": columns}, option=orjson.OPT_INDENT_2))
    previous = signal.getsignal(signal.SIGINT)  # img2dataset installs its own (exit 0 on Ctrl-C)
    try:
        _call(download, kwargs, raw_dir if log_to_file else None)
    finally:
        signal.signal(signal.SIGINT, previous)
    return download_stats(raw_dir) | {"columns_saved": ",".join(columns)}


def _call(download: Any, kwargs: dict[str, Any], log_dir: Path | None) -> None:
    if log_dir is not None:
        with open(log_dir / "img2dataset.log", "ab") as log, _redirect_fds(log.fileno(), (1, 2)):
            download(**kwargs)
    else:
        with _redirect_fds(2, (1,)):  # img2dataset prints progress on stdout: keep it for scripts
            download(**kwargs)


def download_stats(raw_dir: Path) -> dict[str, Any]:
    """Sum img2dataset's ``<shard>_stats.json`` files: what was asked, got, and lost."""
    totals: Counter[str] = Counter()
    shards = 0
    for path in sorted(raw_dir.glob("*_stats.json")):
        try:
            data = orjson.loads(path.read_bytes())
        except (OSError, ValueError):
            continue
        shards += 1
        for key in ("count", "successes", "failed_to_download", "failed_to_resize"):
            totals[key] += int(data.get(key, 0) or 0)
    return {"shards": shards, "rows": totals["count"], "downloaded": totals["successes"],
            "failed_to_download": totals["failed_to_download"], "failed_to_resize": totals["failed_to_resize"]}
