"""``browse render``: draw a sample of an ODVG file (optionally beside predictions) to image files.

What upstream ``browse_grounding_raw.py`` does, with Pillow only: one output image per record,
named ``<line>_<image name>.<ext>`` so a file can be traced back to its record. Choosing records is
streaming: the first ``n`` records, or — with a seed — a uniform random sample of ``n`` kept by
reservoir sampling, so memory is ``n`` records whatever the file size; outputs are in line order.
Predictions are matched to ground truth by ``filename``; only the predictions of the chosen images
are kept in memory.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

from odvgkit.browse.draw import panel, placeholder, side_by_side
from odvgkit.browse.scene import Scene, scene_of
from odvgkit.errors import OdvgError, ProblemLog
from odvgkit.io import atomic_path, ensure_parent, read_records
from odvgkit.io.paths import inside

Record = dict[str, Any]
Chosen = tuple[int, Record]
FORMATS = {"jpg": "JPEG", "png": "PNG"}


def choose(records: Iterable[Chosen], n: int, seed: int | None) -> Iterator[Chosen]:
    """The first ``n`` records (``n <= 0``: all), or with ``seed`` a random ``n`` in input order."""
    if n <= 0:
        yield from records
        return
    if seed is None:
        yield from islice(records, n)
        return
    rng = random.Random(seed)
    reservoir: list[Chosen] = []
    for k, item in enumerate(records):
        if k < n:
            reservoir.append(item)
        else:
            j = rng.randrange(k + 1)
            if j < n:
                reservoir[j] = item
    yield from sorted(reservoir, key=lambda item: item[0])


def index_predictions(
    path: Path, filenames: set[str], problems: ProblemLog
) -> dict[str, Record]:
    """Prediction records for ``filenames`` only (first one wins; duplicates are reported)."""
    found: dict[str, Record] = {}
    for line, rec in read_records(path, problems):
        name = rec.get("filename")
        if name not in filenames:
            continue
        if name in found:
            problems.warn("duplicate-prediction", path, line, "filename", f"{name!r} already predicted; kept the first")
            continue
        found[name] = rec
    return found


def load_image(path: Path) -> tuple[Image.Image | None, str | None]:
    """The decoded image with its EXIF orientation applied (as mmdet's loaders do), or why not."""
    try:
        with Image.open(path) as im:
            im.load()
            return ImageOps.exif_transpose(im).convert("RGB"), None
    except FileNotFoundError:
        return None, "image not found"
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        return None, f"unreadable image: {exc}"


def output_name(line: int, filename: str, ext: str) -> str:
    """``000042_000000397133.jpg``: the record's line number and a file-system-safe image name."""
    stem = Path(filename).with_suffix("").as_posix().replace("/", "__")
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem)[:120] or "image"
    return f"{line:06d}_{stem}.{ext}"


def _size_of(record: Mapping[str, Any]) -> tuple[int, int]:
    w, h = record.get("width"), record.get("height")
    ok = all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (w, h))
    return (w, h) if ok else (640, 480)  # type: ignore[return-value]


def _note(scene: Scene) -> str:
    return f"({scene.hidden} below score threshold)" if scene.hidden else ""


@dataclass
class RenderStats:
    records_read: int = 0
    rendered: int = 0
    skipped: int = 0  # records without an image name
    images_missing: int = 0
    predictions_missing: int = 0
    boxes: int = 0
    prediction_boxes: int = 0
    outputs: list[Path] = field(default_factory=list)


@dataclass(frozen=True)
class RenderOptions:
    images_root: Path
    out_dir: Path
    label_map: Mapping[str, str] | None = None
    score_threshold: float = 0.3
    max_side: int | None = 1333
    ext: str = "jpg"


def render_one(
    line: int,
    record: Record,
    opts: RenderOptions,
    problems: ProblemLog,
    source: Path,
    prediction: Record | None = None,
    with_predictions: bool = False,
) -> tuple[Image.Image, Scene, Scene | None]:
    """The picture of one record: a ground-truth panel, and a prediction panel beside it if asked."""
    filename = str(record.get("filename", ""))
    image, why = load_image(opts.images_root / filename)
    if image is None:
        problems.warn("image-missing" if why == "image not found" else "image-unreadable",
                      source, line, "filename", f"{opts.images_root / filename}: {why}")
        image = placeholder(*_size_of(record), f"{filename}: {why}")
    elif image.size != _size_of(record) and "width" in record:
        problems.warn("size-mismatch", source, line, "width/height",
                      f"record says {_size_of(record)}, image is {image.size}; boxes drawn as recorded")
    gt = scene_of(record, opts.label_map, 0.0)
    for msg in gt.bad:
        problems.warn("not-drawn", source, line, None, msg)
    title = f"{filename}  (line {line})"
    left = panel(image, gt, title + ("  ground truth" if with_predictions else ""), opts.max_side)
    if not with_predictions:
        return left, gt, None
    if prediction is None:
        pred = Scene(caption=gt.caption)
        note = "no prediction record for this image"
    else:
        pred = scene_of(prediction, opts.label_map, opts.score_threshold)
        if pred.caption is None:
            pred.caption = gt.caption
        note = _note(pred)
    right = panel(image, pred, f"predictions  score >= {opts.score_threshold:g}", opts.max_side, note)
    return side_by_side(left, right), gt, pred


def save(image: Image.Image, path: Path, ext: str) -> None:
    with atomic_path(path) as tmp:
        if ext == "jpg":
            image.save(tmp, FORMATS[ext], quality=90)
        else:
            image.save(tmp, FORMATS[ext], compress_level=3)


def render_file(
    records_path: Path,
    opts: RenderOptions,
    n: int = 50,
    seed: int | None = None,
    predictions: Path | None = None,
    problems: ProblemLog | None = None,
    advance: Callable[[int], None] | None = None,
) -> RenderStats:
    """Render ``n`` records of ``records_path`` into ``opts.out_dir``; returns counts and outputs."""
    if opts.ext not in FORMATS:
        raise OdvgError(f"--format {opts.ext!r}: choose one of {', '.join(FORMATS)}")
    if not opts.images_root.is_dir():
        raise OdvgError(f"{opts.images_root}: images root is not a directory")
    problems = problems if problems is not None else ProblemLog()
    stats = RenderStats()

    def counted() -> Iterator[Chosen]:
        for item in read_records(records_path, problems):
            stats.records_read += 1
            yield item

    chosen: Iterable[Chosen] = choose(counted(), n, seed)
    index: dict[str, Record] = {}
    if predictions is not None:
        chosen = list(chosen)
        index = index_predictions(predictions, {str(r.get("filename")) for _, r in chosen}, problems)
    ensure_parent(opts.out_dir / "x")
    for line, record in chosen:
        name = record.get("filename")
        if not isinstance(name, str) or not name.strip("/"):
            problems.error("missing-filename", records_path, line, "filename",
                           f"missing or not an image path ({name!r}); record not drawn")
            stats.skipped += 1
            continue
        pred = index.get(str(record.get("filename"))) if predictions is not None else None
        if predictions is not None and pred is None:
            stats.predictions_missing += 1
            problems.warn("no-prediction", records_path, line, "filename",
                          f"{record.get('filename')!r} has no record in {predictions}")
        image, gt, pred_scene = render_one(
            line, record, opts, problems, records_path, pred, with_predictions=predictions is not None
        )
        out = inside(opts.out_dir, output_name(line, str(record.get("filename", "")), opts.ext),
                     source=records_path, where=line)
        save(image, out, opts.ext)
        stats.outputs.append(out)
        stats.rendered += 1
        stats.boxes += len(gt.boxes)
        stats.prediction_boxes += len(pred_scene.boxes) if pred_scene is not None else 0
        if advance is not None:
            advance(1)
    stats.images_missing = problems.counts.get(("warning", "image-missing"), 0)
    return stats
