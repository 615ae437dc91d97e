"""LVIS v1 json → ODVG OD records + label map (upstream ``lvis2odvg.py``, §3.12), streamed.

* label = ``category_id - 1``, label map ``{str(id - 1): name}`` in input order (as upstream);
* ``filename`` = ``coco_url`` minus ``http(s)://images.cocodataset.org/`` (upstream strips only
  ``http://``; an ``https`` URL or a ``file_name`` field works here too);
* the §2 box chain (ignore → no overlap → area/w/h → iscrowd) is applied to whole columns at once;
* **federated fields kept**: ``neg_category_ids`` and ``not_exhaustive_category_ids`` become 0-based
  label ids on each record, so negative sampling can avoid false negatives (upstream drops them).

Annotations are held as numpy columns (≈60 bytes a box), never as dicts; segmentation polygons are
skipped by the streaming parser without being materialised.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from itertools import chain
from operator import attrgetter
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import orjson

from odvgkit._memory import gc_paused
from odvgkit.convert import coco
from odvgkit.convert._boxes import big_enough, overlaps_image
from odvgkit.convert._parallel import PARALLEL_MIN_BYTES, WORKERS, ordered_map
from odvgkit.convert._stream import OnBytes
from odvgkit.convert.base import Conversion
from odvgkit.convert.coco import CocoAnnotation, Columns, annotation_columns
from odvgkit.convert.fields import Int64
from odvgkit.errors import OdvgError, ProblemLog
from odvgkit.io.jsonstream import Parallel, stream_members

_URL_PREFIXES = ("http://images.cocodataset.org/", "https://images.cocodataset.org/")


class LvisImage(msgspec.Struct, gc=False):
    id: Int64
    height: Int64
    width: Int64
    coco_url: str | None = None
    file_name: str | None = None
    neg_category_ids: list[Int64] = []
    not_exhaustive_category_ids: list[Int64] = []


class Category(msgspec.Struct, gc=False):
    id: Int64
    name: str
    frequency: str | None = None


def lvis_filename(img: LvisImage) -> str | None:
    if img.coco_url:
        url = img.coco_url
        for prefix in _URL_PREFIXES:
            if url.startswith(prefix):
                return url[len(prefix):]
        return url
    return img.file_name


@gc_paused()  # as coco2odvg: millions of objects, no cycles
def lvis_to_odvg(
    path: str | Path, problems: ProblemLog | None = None, on_bytes: OnBytes = None, image_ids: bool = False
) -> Conversion:
    """Stream an LVIS json into OD records; the label map is filled once the input is read.

    The records must be consumed before ``conversion.label_map`` is complete (LVIS files list
    ``categories`` last); :func:`odvgkit.convert.base.write_conversion` writes the label map before
    the records, so :func:`lvis_conversion` reads the input eagerly and returns a ready object.
    """
    return lvis_conversion(path, problems, on_bytes, image_ids)


def lvis_conversion(
    path: str | Path, problems: ProblemLog | None = None, on_bytes: OnBytes = None, image_ids: bool = False
) -> Conversion:
    """The conversion, input read eagerly; ``image_ids`` adds each image's id as a last field
    ``image_id`` (see :func:`odvgkit.convert.coco.coco_to_odvg`)."""
    path = Path(path)
    problems = problems if problems is not None else ProblemLog()
    stats: Counter[str] = Counter()
    images: list[LvisImage | None] = []
    cats: list[Category] = []
    cols = Columns()
    seen: set[str] = set()
    for key, first, items in stream_members(
        path, {"images": LvisImage, "annotations": CocoAnnotation, "categories": Category},
        problems=problems, on_bytes=on_bytes, keep_invalid=True,
        parallel=Parallel({"annotations": annotation_columns}, workers=WORKERS,
                          min_bytes=PARALLEL_MIN_BYTES),
    ):
        seen.add(key)
        if first < 0:
            raise OdvgError(f"{path}: {key}: must be a JSON array")
        if key == "images":
            images.extend(items)
        elif key == "categories":
            cats.extend(c for c in items if c is not None)
        else:
            cols.add(items)
    for required in ("images", "annotations"):  # as coco2odvg: one error, not a silent empty output
        if required not in seen:
            raise OdvgError(f"{path}: missing top-level key {required!r} (not an LVIS file?)")
    if not cats:
        raise OdvgError(f"{path}: categories: missing or empty (needed for the label map)")
    coco.check_category_ids(path, cats)
    label_map: dict[str, str] = {}
    for c in cats:
        if c.id < 1:
            raise OdvgError(f"{path}: categories: id {c.id}: LVIS ids start at 1 (label = id - 1)")
        label_map[str(c.id - 1)] = c.name
    n_annotations = len(cols)
    img, cat, xywh, flags, valid = cols.concat()
    arrays = {"img": img, "cat": cat, "xywh": xywh, "area": np.where(flags & coco.F_NO_AREA, 0.0, 1.0),
              "crowd": (flags & coco.F_CROWD) != 0, "ignore": (flags & coco.F_IGNORE) != 0, "valid": valid}
    for i, im in enumerate(images):  # a nameless image cannot be written: malformed, like a bad type
        if im is not None and not lvis_filename(im):
            problems.error("no-filename", path, f"images[{i}]", "coco_url", "neither coco_url nor file_name")
            images[i] = None
    images_ok = coco.resolve_images(path, images, n_annotations, problems, stats)
    _check_federated(path, images_ok, label_map, problems, stats)
    plan = _plan(path, images_ok, label_map, arrays, problems, stats)
    return Conversion(records=_records(plan, stats, image_ids), label_map=label_map, stats=stats,
                      jsonl_chunks=_jsonl_chunks(plan, stats, image_ids), total=len(plan.images))


_BLOCK = 10_000  # images per block: Python lists exist for one block at a time


@dataclass
class _Plan:
    images: list[tuple[str, LvisImage]]  # (filename, image) in output order
    starts: list[int]  # per output image: first row in ``xyxy``/``labels``
    xyxy: np.ndarray  # kept boxes, grouped by image, file order inside
    labels: np.ndarray
    names: list[str]  # label → name


def _plan(
    path: Path,
    images: list[LvisImage],
    label_map: dict[str, str],
    a: dict[str, np.ndarray],
    problems: ProblemLog,
    stats: Counter[str],
) -> _Plan:
    """Every filter applied to whole columns; bad references reported here, once per annotation.

    ``images`` went through :func:`odvgkit.convert.coco.resolve_images` (unique ids, positive
    sizes, a file name each), so an annotation has at most one image.
    """
    img_ids = np.fromiter((im.id for im in images), np.int64, len(images))
    idx, known = coco.lookup(img_ids, a["img"])  # index into images of each annotation
    valid = a["valid"]  # malformed elements were reported while decoding
    for i in np.flatnonzero(valid & ~known).tolist():
        problems.error("unknown-image", path, f"annotations[{i}]", "image_id",
                       f"image id {int(a['img'][i])} is not in images[]")
    labels = a["cat"] - 1
    cat_ok = np.isin(labels, np.fromiter(map(int, label_map), np.int64, len(label_map)))
    for i in np.flatnonzero(valid & known & ~cat_ok).tolist():
        problems.error("unknown-category", path, f"annotations[{i}]", "category_id",
                       f"category id {int(a['cat'][i])} is not in categories[]")
    if len(images):
        W = np.fromiter((im.width for im in images), np.float64, len(images))[idx]
        H = np.fromiter((im.height for im in images), np.float64, len(images))[idx]
    else:  # no image: no annotation is usable, sizes only keep the shapes aligned
        W = H = np.ones(len(idx))
    usable = valid & known & cat_ok
    ignore = usable & a["ignore"]
    no_overlap = usable & ~ignore & ~overlaps_image(a["xywh"], W, H)
    small = usable & ~ignore & ~no_overlap & ~big_enough(a["xywh"], a["area"])
    crowd = usable & ~ignore & ~no_overlap & ~small & a["crowd"]
    keep = usable & ~ignore & ~no_overlap & ~small & ~crowd
    stats["dropped:ignore"] += int(ignore.sum())
    stats["dropped:no-overlap"] += int(no_overlap.sum())
    stats["dropped:too-small"] += int(small.sum())
    stats["dropped:crowd"] += int(crowd.sum())
    out = [(lvis_filename(im) or "", im) for im in images]
    sel = coco.grouped(idx, np.flatnonzero(keep))  # grouped by image, file order inside
    starts = np.searchsorted(idx[sel], np.arange(len(out) + 1)).tolist()
    names = [label_map.get(str(k), "") for k in range(max(map(int, label_map)) + 1)]
    return _Plan(out, starts, coco.xyxy_inplace(a["xywh"][sel]), labels[sel], names)


def _check_federated(
    path: Path, images: list[LvisImage], label_map: dict[str, str], problems: ProblemLog, stats: Counter[str]
) -> None:
    """``neg_category_ids`` / ``not_exhaustive_category_ids`` must name categories of the file.

    Written as-is, an unknown id becomes a label the label map does not have (a negative prompt
    for a class that does not exist). Checked once over all ids (no per-record work when they are
    all known, the normal case); an unknown id is warned about, counted, and left out of its list.
    """
    known = np.fromiter((int(k) + 1 for k in label_map), np.int64, len(label_map))
    for field_name in ("neg_category_ids", "not_exhaustive_category_ids"):
        get = attrgetter(field_name)
        ids = np.fromiter(chain.from_iterable(map(get, images)), np.int64)
        unknown = set(np.setdiff1d(ids, known).tolist())
        if not unknown:
            continue
        for im in images:
            values = get(im)
            bad = [c for c in values if c in unknown]
            if bad:
                problems.warn("unknown-federated-category", path, f"image id {im.id}", field_name,
                              f"category id {bad[0]} is not in categories[]; left out of the list")
                stats[f"{field_name}_dropped:unknown-category"] += len(bad)
                setattr(im, field_name, [c for c in values if c not in unknown])


def _records(plan: _Plan, stats: Counter[str], image_ids: bool = False) -> Iterator[dict[str, Any]]:
    images, starts, names = plan.images, plan.starts, plan.names
    for b0 in range(0, len(images), _BLOCK):
        b1 = min(b0 + _BLOCK, len(images))
        lo, hi = starts[b0], starts[b1]
        xyxy = plan.xyxy[lo:hi].tolist()
        lab = plan.labels[lo:hi].tolist()
        instances = [{"bbox": b, "label": k, "category": names[k]} for b, k in zip(xyxy, lab, strict=True)]
        for i in range(b0, b1):
            filename, im = images[i]
            s, e = starts[i] - lo, starts[i + 1] - lo
            stats["images"] += 1
            stats["boxes"] += e - s
            rec = {"filename": filename, "height": im.height, "width": im.width,
                   "detection": {"instances": instances[s:e]},
                   "neg_category_ids": [c - 1 for c in im.neg_category_ids],
                   "not_exhaustive_category_ids": [c - 1 for c in im.not_exhaustive_category_ids]}
            if image_ids:
                rec["image_id"] = im.id
            yield rec


def _jsonl_chunks(plan: _Plan, stats: Counter[str], image_ids: bool = False) -> Iterator[tuple[bytes, int]]:
    """The bytes ``orjson`` writes for :func:`_records`, without a dict per box (the coco2odvg trick:
    one ``orjson`` call formats a block's boxes; each instance is prefix + box + per-label suffix).
    Big inputs are formatted in two forked workers, block by block, as in coco2odvg."""
    suffixes = [b'],"label":%d,"category":%s}' % (k, orjson.dumps(n)) for k, n in enumerate(plan.names)]
    blocks = range(0, len(plan.images), _BLOCK)
    workers = WORKERS if len(plan.labels) >= coco._PARALLEL_FORMAT_MIN_BOXES and len(blocks) > 1 else 1
    for chunk, count, boxes in ordered_map(partial(coco.without_gc, _jsonl_block, plan, suffixes, image_ids), blocks,
                                             workers=workers):
        stats["images"] += count
        stats["boxes"] += boxes
        yield chunk, count


def _jsonl_block(plan: _Plan, suffixes: list[bytes], image_ids: bool, b0: int) -> tuple[bytes, int, int]:
    """JSON Lines bytes of the images ``b0 .. b0 + _BLOCK`` (runs in a format worker)."""
    images, starts = plan.images, plan.starts
    b1 = min(b0 + _BLOCK, len(images))
    lo, hi = starts[b0], starts[b1]
    inst = coco.format_instances(plan.xyxy[lo:hi], plan.labels[lo:hi], suffixes)
    lines = []
    for i in range(b0, b1):
        filename, im = images[i]
        s, e = starts[i] - lo, starts[i + 1] - lo
        lines.append(
            b'{"filename":%s,"height":%d,"width":%d,"detection":{"instances":[%s]},'
            b'"neg_category_ids":%s,"not_exhaustive_category_ids":%s%s}\n'
            % (orjson.dumps(filename), im.height, im.width, b",".join(inst[s:e]),
               orjson.dumps([c - 1 for c in im.neg_category_ids]),
               orjson.dumps([c - 1 for c in im.not_exhaustive_category_ids]),
               b',"image_id":%d' % im.id if image_ids else b"")
        )
    return b"".join(lines), b1 - b0, hi - lo
