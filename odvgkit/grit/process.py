"""img2dataset webdataset shards → per-shard annotation lists + image folders (``grit process``).

What upstream ``grit_processing.py`` intends (its latest revision processes nothing: spec §3.10):
for every ``RAW_DIR/<shard>.tar``, the images land in ``OUT_DIR/images/<shard>/<key>.<ext>`` and
the samples' metadata in ``OUT_DIR/annotations/<shard>.json`` — a JSON list, the layout upstream's
``grit2odvg.py`` reads, so both tools work on the result. Differences, all deliberate:

* tar members are streamed with :mod:`tarfile` (no ``tar -xf``/``mv`` through an unquoted shell,
  no extraction of ``.txt``/``.json`` files that are then deleted);
* each sample gets ``filename`` (relative to ``OUT_DIR``) and its ``width``/``height`` measured from
  the written image header (EXIF aware); a disagreement with img2dataset's JSON is counted;
* samples are sorted by key (upstream: ``os.listdir`` order);
* every row of img2dataset's per-shard parquet is accounted for: written, or dropped with a reason
  (``failed_to_download``, ``failed_to_resize``, ``missing-in-tar``, ``corrupt-image`` …), and the
  counts go to ``OUT_DIR/stats/<shard>.json``;
* a shard is done when its stats file exists: images are written into ``images/<shard>.partial``,
  renamed into place, then annotations and stats appear atomically — an interrupted run leaves no
  half shard, and the next run redoes only unfinished shards.

A damaged shard (truncated tar, unreadable member, no parquet) is processed as far as it can be
and reported; it never stops the other shards.
"""

from __future__ import annotations

import os
import shutil
import tarfile
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from odvgkit.errors import OdvgError, ProblemLog

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")


@dataclass
class ProcessResult:
    """One shard's outcome (plain data: it travels back from pool and Spark workers)."""

    shard: str
    stats: Counter[str] = field(default_factory=Counter)
    download_errors: Counter[str] = field(default_factory=Counter)
    problems: list[tuple[str, str, str, str | None, str]] = field(default_factory=list)
    skipped: bool = False  # already done by an earlier run

    def problem(self, severity: str, code: str, where: str, fld: str | None, message: str) -> None:
        self.problems.append((severity, code, where, fld, message))

    def as_json(self) -> dict[str, Any]:
        return {
            "shard": self.shard,
            "stats": dict(sorted(self.stats.items())),
            "download_errors": dict(sorted(self.download_errors.items())),
            "problems": [list(p) for p in self.problems],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProcessResult:
        return cls(
            shard=data["shard"],
            stats=Counter(data.get("stats", {})),
            download_errors=Counter(data.get("download_errors", {})),
            problems=[tuple(p) for p in data.get("problems", [])],  # type: ignore[misc]
        )


@dataclass(frozen=True)
class ShardTask:
    """Everything a worker needs for one shard (paths as strings: picklable, Spark friendly)."""

    raw_dir: str
    out_dir: str
    shard: str


def find_shards(raw_dir: Path) -> tuple[list[str], list[str]]:
    """``(ready, unfinished)`` shard names in ``raw_dir``.

    A shard is ready when its ``.tar`` exists and img2dataset finished it (``<shard>_stats.json``)
    or when nothing says it is still being written (a tar without img2dataset's parquet: shards
    made by other tools). A tar whose parquet exists but whose stats file does not is a download
    still running or interrupted: it is left for a later run.
    """
    if not raw_dir.is_dir():
        raise OdvgError(f"{raw_dir}: no such directory (give img2dataset's output folder)")
    tars = {p.name[:-4] for p in raw_dir.glob("*.tar") if p.is_file()}
    stats = {p.name[: -len("_stats.json")] for p in raw_dir.glob("*_stats.json")}
    ready, unfinished = [], []
    for name in sorted(tars | stats):
        has_parquet = (raw_dir / f"{name}.parquet").is_file()
        if name in stats or (name in tars and not has_parquet):
            ready.append(name)
        else:
            unfinished.append(name)
    return ready, unfinished


def is_done(out_dir: Path, shard: str) -> bool:
    return (out_dir / "stats" / f"{shard}.json").is_file() and (out_dir / "annotations" / f"{shard}.json").is_file()


def read_done(out_dir: Path, shard: str) -> ProcessResult:
    res = ProcessResult.from_json(orjson.loads((out_dir / "stats" / f"{shard}.json").read_bytes()))
    res.skipped = True
    return res


def _read_index(parquet: Path, res: ProcessResult) -> dict[str, tuple[str, str | None]] | None:
    """img2dataset's per-row status for the shard: ``{key: (status, error_message)}``."""
    if not parquet.is_file():
        res.problem("warning", "no-parquet", "", None, "no img2dataset parquet beside the tar: rows that failed to download cannot be counted")
        return None
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(parquet, columns=["key", "status", "error_message"])
    except Exception as exc:  # pyarrow raises several types for damaged files
        res.problem("warning", "bad-parquet", "", None, f"{parquet.name}: unreadable ({exc})"[:300])
        return None
    cols = table.to_pydict()
    return {k: (s, m) for k, s, m in zip(cols["key"], cols["status"], cols["error_message"], strict=True)}


def _split(name: str) -> tuple[str, str]:
    base = name.rsplit("/", 1)[-1]
    key, _, ext = base.partition(".")
    return key, ext.lower()


def _iter_samples(tar_path: Path, res: ProcessResult) -> Any:
    """Yield ``(key, {ext: bytes})`` per sample; where the tar is damaged, report it, yield
    ``(key, None)`` for the sample being read (if any) and stop."""
    current: str | None = None
    parts: dict[str, bytes] = {}
    try:
        with tarfile.open(tar_path, mode="r|*") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                key, ext = _split(member.name)
                if key != current:
                    if current is not None:
                        yield current, parts
                    current, parts = key, {}
                fh = tar.extractfile(member)
                parts[ext] = fh.read() if fh is not None else b""
    except (tarfile.TarError, OSError, EOFError) as exc:
        res.problem("error", "corrupt-tar", "", None, f"damaged tar, samples from {current or 'the start'} on are lost: {exc}"[:300])
        if current is not None:
            yield current, None
        return
    if current is not None:
        yield current, parts


def _write_sample(
    key: str, parts: dict[str, bytes], shard: str, partial: Path, res: ProcessResult
) -> dict[str, Any] | None:
    from odvgkit.images import image_size

    ext = next((e for e in IMAGE_EXTS if e in parts), None)
    if ext is None or "json" not in parts:
        res.stats["dropped:incomplete-sample"] += 1
        missing = "image" if ext is None else "json"
        res.problem("error", "incomplete-sample", key, missing, f"tar has no {missing} member for this sample")
        return None
    try:
        meta = orjson.loads(parts["json"])
        if not isinstance(meta, dict):
            raise ValueError(f"expected a JSON object, got {type(meta).__name__}")
    except ValueError as exc:
        res.stats["dropped:corrupt-json"] += 1
        res.problem("error", "corrupt-json", f"{key}.json", None, f"unreadable sample metadata: {exc}"[:300])
        return None
    from odvgkit.io.paths import UnsafePath, inside

    try:
        target = inside(partial, f"{key}.{ext}", source=shard, where=None, field="tar member")
    except UnsafePath as exc:
        res.stats["dropped:unsafe-name"] += 1
        res.problem("error", "unsafe-name", key, None, str(exc).split(": ", 1)[-1][:300])
        return None
    target.write_bytes(parts[ext])
    try:
        width, height = image_size(target)
    except OdvgError as exc:
        target.unlink()
        res.stats["dropped:corrupt-image"] += 1
        res.problem("error", "corrupt-image", f"{key}.{ext}", None, str(exc).split(": ", 1)[-1][:300])
        return None
    if (meta.get("width"), meta.get("height")) != (width, height):
        res.stats["size_mismatch"] += 1
        res.problem("warning", "size-mismatch", f"{key}.json", "width/height",
                    f"img2dataset says {meta.get('width')}x{meta.get('height')}, the image is {width}x{height}; using the image")
    meta["key"] = meta.get("key") or key
    meta["filename"] = f"images/{shard}/{key}.{ext}"
    meta["width"], meta["height"] = width, height
    return meta


def process_shard(task: ShardTask) -> ProcessResult:
    """Extract one shard; never raises for bad data (problems are returned with the counts).

    An output that cannot be written (disk full, permissions) is a one-line :class:`OdvgError`;
    the shard stays undone and a rerun redoes it.
    """
    try:
        return _process_shard(task)
    except OSError as exc:
        raise OdvgError(f"{task.out_dir}: shard {task.shard}: cannot write output: {exc}") from None


def _process_shard(task: ShardTask) -> ProcessResult:
    raw, out, shard = Path(task.raw_dir), Path(task.out_dir), task.shard
    res = ProcessResult(shard=shard)
    index = _read_index(raw / f"{shard}.parquet", res)
    images = out / "images"
    partial = images / f"{shard}.partial"
    final = images / shard
    for leftover in (partial, final):  # an earlier run stopped before this shard was done
        if leftover.exists():
            shutil.rmtree(leftover)
    partial.mkdir(parents=True)
    samples: dict[str, dict[str, Any]] = {}
    tar_path = raw / f"{shard}.tar"
    seen: set[str] = set()
    if tar_path.is_file():
        for key, parts in _iter_samples(tar_path, res):
            if key in seen:
                res.stats["duplicate_members"] += 1
                res.problem("warning", "duplicate-key", key, None, "a second group of members with this key; kept the first")
                continue
            seen.add(key)
            if index is not None and key not in index:
                res.stats["unlisted_in_parquet"] += 1
            if parts is None:
                res.stats["dropped:corrupt-tar"] += 1
                continue
            meta = _write_sample(key, parts, shard, partial, res)
            if meta is not None:
                samples[key] = meta
    else:
        res.problem("error", "no-tar", "", None, "img2dataset wrote no tar for this shard")
    res.stats["rows"] = len(seen)
    if index is not None:
        for key, (status, message) in index.items():
            if key in seen:
                continue
            res.stats["rows"] += 1
            if status == "success":
                res.stats["dropped:missing-in-tar"] += 1
                res.problem("error", "missing-in-tar", key, None, "downloaded (parquet says success) but not in the tar")
                continue
            res.stats[f"dropped:{status or 'unknown-status'}"] += 1
            res.download_errors[_short_error(message)] += 1
    res.stats["written"] = len(samples)
    ordered = [samples[k] for k in sorted(samples)]
    os.replace(partial, final)
    _commit(out, shard, ordered, res)
    return res


def _short_error(message: str | None) -> str:
    """Group img2dataset's error messages (URLs and ports vary, the cause does not)."""
    if not message:
        return "unknown"
    text = str(message)
    for marker in ("Connection refused", "timed out", "Name or service not known", "certificate"):
        if marker in text:
            return marker
    if text.startswith("HTTP Error"):
        return text.split(":")[0]
    return text[:80]


def _commit(out: Path, shard: str, samples: list[dict[str, Any]], res: ProcessResult) -> None:
    from odvgkit.io import AtomicGroup

    with AtomicGroup(force=True) as group:  # the shard is redone whole (its folders were removed above)
        group.path(out / "annotations" / f"{shard}.json").write_bytes(orjson.dumps(samples))
        group.path(out / "stats" / f"{shard}.json").write_bytes(
            orjson.dumps(res.as_json(), option=orjson.OPT_INDENT_2)
        )  # renamed last: its presence marks the shard done


def accounted(stats: Counter[str]) -> bool:
    """Every input row is written or dropped for exactly one counted reason."""
    dropped = sum(n for k, n in stats.items() if k.startswith("dropped:"))
    return stats["rows"] == stats["written"] + dropped


def process_all(
    raw_dir: Path,
    out_dir: Path,
    run: Callable[[Callable[[ShardTask], ProcessResult], list[ShardTask]], Iterable[ProcessResult]],
    problems: ProblemLog,
    on_shard: Callable[[int], None] | None = None,
) -> tuple[Counter[str], list[dict[str, Any]]]:
    """Process every ready shard not done yet (with ``run``: local pool or Spark).

    Returns the totals over all shards (done now or by an earlier run) and per-shard rows.
    """
    from odvgkit.errors import Problem

    ready, unfinished = find_shards(raw_dir)
    if raw_dir.resolve() == out_dir.resolve():
        raise OdvgError(f"{out_dir}: output folder must differ from the raw shard folder")
    for name in unfinished:
        problems.warn("download-unfinished", raw_dir / f"{name}.tar", None, None,
                      "img2dataset has not finished this shard (no _stats.json); rerun download, then process")
    if not ready:
        raise OdvgError(f"{raw_dir}: no finished img2dataset shards (*.tar) to process")
    out_dir.mkdir(parents=True, exist_ok=True)
    done = {name: read_done(out_dir, name) for name in ready if is_done(out_dir, name)}
    todo = [ShardTask(str(raw_dir), str(out_dir), name) for name in ready if name not in done]
    if on_shard is not None and done:
        on_shard(len(done))
    fresh = {res.shard: res for res in _tick(run(process_shard, todo), on_shard)}
    totals: Counter[str] = Counter()
    rows = []
    for name in ready:
        res = fresh.get(name) or done[name]
        for severity, code, where, fld, message in res.problems:
            if not res.skipped:
                problems.add(Problem(severity, code, str(raw_dir / f"{name}.tar"), where or None, fld, message))  # type: ignore[arg-type]
        totals.update(res.stats)
        totals["shards"] += 1
        totals["shards_skipped" if res.skipped else "shards_processed"] += 1
        errors = ", ".join(f"{k}: {n}" for k, n in sorted(res.download_errors.items()))
        rows.append({"shard": name, "done": "earlier" if res.skipped else "now",
                     **dict(sorted(res.stats.items())), "download_errors": errors})
    from odvgkit.grit.engine import uniform_rows

    return totals, uniform_rows(rows)


def _tick(results: Iterable[ProcessResult], on_shard: Callable[[int], None] | None) -> Iterable[ProcessResult]:
    for res in results:
        if on_shard is not None:
            on_shard(1)
        yield res
