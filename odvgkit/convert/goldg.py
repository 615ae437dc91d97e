"""MDETR grounding json (GoldG: GQA/VG mixed, Flickr30k separateGT, COCO-2014 mixed) → ODVG VG.

Upstream ``goldg2odvg.py`` (upstream-converters.md §3.7), streamed and vectorised:

* annotations are parsed into columns (numpy), never into dicts, and grouped per image once;
* records come in ascending image-id order (upstream's ``sorted(coco.imgs)``), so outputs agree;
* an image is kept when it has a non-crowd annotation and not every such box is ``<= 1`` px wide or
  high (upstream's ``has_valid_annotation``); boxes then pass the §2 chain and get x2/y2 clipped to
  ``int(width)`` / ``int(height)``;
* regions are merged by phrase text like upstream, **but** a later mention of the same phrase adds
  its character spans to the region instead of losing them (deviation, docs/deviations.md).

Bad input (spans outside the caption, annotations of unknown images, non-numeric sizes) is reported
per record through the :class:`~odvgkit.errors.ProblemLog` and skipped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from odvgkit.convert._boxes import big_enough, group_slices, overlaps_image
from odvgkit.convert._stream import OnBytes, stream_members
from odvgkit.convert.base import Conversion
from odvgkit.errors import ProblemLog


class MdetrImage(msgspec.Struct, gc=False):
    id: int
    file_name: str
    height: int | float | str
    width: int | float | str
    caption: str


class MdetrAnn(msgspec.Struct, gc=False):
    image_id: int
    bbox: tuple[float, float, float, float]
    area: float
    iscrowd: int
    tokens_positive: list[tuple[int, int]]


@dataclass
class MdetrColumns:
    """A MDETR file as columns: images as lists (sorted by id), annotations as numpy arrays."""

    img_ids: np.ndarray
    file_names: list[str]
    heights: list[int]
    widths: list[int]
    captions: list[str]
    ann_img: np.ndarray  # image id of each annotation (file order)
    xywh: np.ndarray
    area: np.ndarray
    crowd: np.ndarray
    span_start: np.ndarray  # offsets into ``spans`` per annotation (len = n_ann + 1)
    spans: np.ndarray  # (n_spans, 2) int
    stats: Counter[str] = field(default_factory=Counter)


def _as_int(value: int | float | str) -> int | None:
    try:
        return int(value)  # upstream: int(img['height']); Flickr files carry numeric strings
    except (TypeError, ValueError):
        try:
            return int(float(value))
        except (TypeError, ValueError):
            return None


def read_mdetr(path: str | Path, problems: ProblemLog, on_bytes: OnBytes = None) -> MdetrColumns:
    """Stream a MDETR json into columns; bad elements are reported and skipped."""
    path = Path(path)
    images: dict[int, tuple[str, int, int, str]] = {}
    ann_img: list[np.ndarray] = []
    xywh: list[np.ndarray] = []
    area: list[np.ndarray] = []
    crowd: list[np.ndarray] = []
    n_spans: list[np.ndarray] = []
    spans: list[np.ndarray] = []
    stats: Counter[str] = Counter()
    for key, first, items in stream_members(
        path, {"images": MdetrImage, "annotations": MdetrAnn}, problems=problems, on_bytes=on_bytes
    ):
        if first < 0:
            problems.error("not-an-array", path, key, None, f"'{key}' must be a JSON array")
            continue
        if key == "images":
            for i, im in enumerate(items, first):
                h, w = _as_int(im.height), _as_int(im.width)
                if h is None or w is None or h <= 0 or w <= 0:
                    problems.error("bad-size", path, f"images[{i}]", "height/width",
                                   f"not a positive number: {im.height!r} x {im.width!r}")
                    continue
                if im.id in images:
                    problems.warn("duplicate-image-id", path, f"images[{i}]", "id",
                                  f"image id {im.id} repeated; the last one is used (as upstream)")
                images[im.id] = (im.file_name, h, w, im.caption)
            continue
        ann_img.append(np.fromiter((a.image_id for a in items), np.int64, len(items)))
        xywh.append(np.array([a.bbox for a in items], dtype=np.float64).reshape(-1, 4))
        area.append(np.fromiter((a.area for a in items), np.float64, len(items)))
        crowd.append(np.fromiter((a.iscrowd for a in items), np.int64, len(items)))
        toks = [a.tokens_positive for a in items]
        n_spans.append(np.fromiter(map(len, toks), np.int64, len(toks)))
        flat = [s for t in toks for s in t]
        spans.append(np.array(flat, dtype=np.int64).reshape(-1, 2))
    ids = np.fromiter(images.keys(), np.int64, len(images))
    order = np.argsort(ids, kind="stable")
    vals = list(images.values())
    sorted_vals = [vals[i] for i in order.tolist()]
    counts = np.concatenate(n_spans) if n_spans else np.zeros(0, np.int64)
    return MdetrColumns(
        img_ids=ids[order],
        file_names=[v[0] for v in sorted_vals],
        heights=[v[1] for v in sorted_vals],
        widths=[v[2] for v in sorted_vals],
        captions=[v[3] for v in sorted_vals],
        ann_img=np.concatenate(ann_img) if ann_img else np.zeros(0, np.int64),
        xywh=np.concatenate(xywh) if xywh else np.zeros((0, 4)),
        area=np.concatenate(area) if area else np.zeros(0),
        crowd=np.concatenate(crowd) if crowd else np.zeros(0, np.int64),
        span_start=np.concatenate(([0], np.cumsum(counts))),
        spans=np.concatenate(spans) if spans else np.zeros((0, 2), np.int64),
        stats=stats,
    )


def phrase_pieces(caption: str, spans: list[list[int]]) -> list[str]:
    """Upstream's phrase text: adjacent spans separated by one space are joined into one piece."""
    pieces: list[str] = []
    pre_end = -10
    for start, end in spans:
        if pre_end + 1 == start and caption[start - 1] == " ":
            pieces[-1] = pieces[-1] + " " + caption[start:end]
        else:
            pieces.append(caption[start:end])
        pre_end = end
    return pieces


def mdetr_records(cols: MdetrColumns, path: Path, problems: ProblemLog, stats: Counter[str]) -> Iterator[dict[str, Any]]:
    """The VG records of a MDETR file, in ascending image-id order."""
    n_img = len(cols.img_ids)
    img_idx = np.searchsorted(cols.img_ids, cols.ann_img) if n_img else np.zeros(len(cols.ann_img), np.int64)
    img_idx = np.minimum(img_idx, max(n_img - 1, 0))
    known = (cols.img_ids[img_idx] == cols.ann_img) if n_img else np.zeros(len(cols.ann_img), bool)
    for i in np.flatnonzero(~known).tolist():
        problems.error("unknown-image", path, "annotations", "image_id",
                       f"image id {int(cols.ann_img[i])} is not in images[]")
    non_crowd = known & (cols.crowd == 0)
    stats["dropped:crowd"] += int((known & (cols.crowd != 0)).sum())
    widths = np.asarray(cols.widths, dtype=np.float64)
    heights = np.asarray(cols.heights, dtype=np.float64)
    W = widths[img_idx] if n_img else np.zeros(0)
    H = heights[img_idx] if n_img else np.zeros(0)
    tiny = (cols.xywh[:, 2] <= 1) | (cols.xywh[:, 3] <= 1)  # has_valid_annotation's own test
    valid = non_crowd & overlaps_image(cols.xywh, W, H) & big_enough(cols.xywh, cols.area)
    x2 = np.minimum(cols.xywh[:, 0] + cols.xywh[:, 2], W)
    y2 = np.minimum(cols.xywh[:, 1] + cols.xywh[:, 3], H)
    boxes = np.stack([cols.xywh[:, 0], cols.xywh[:, 1], x2, y2], axis=1) if len(x2) else np.zeros((0, 4))

    sel = np.flatnonzero(non_crowd)
    order, keys, starts = group_slices(img_idx[sel])
    per_image: dict[int, np.ndarray] = {}
    for k, key in enumerate(keys.tolist()):
        per_image[key] = sel[order[starts[k]:starts[k + 1]]]
    span_start = cols.span_start.tolist()
    spans_all = cols.spans
    for i in range(n_img):
        anns = per_image.get(i)
        if anns is None:
            stats["dropped:image-without-annotation"] += 1
            continue
        if bool(tiny[anns].all()):
            stats["dropped:image-only-tiny-boxes"] += 1
            continue
        caption = cols.captions[i]
        n_chars = len(caption)
        regions: dict[str, dict[str, Any]] = {}
        keep = anns[valid[anns]]
        stats["dropped:invalid-box"] += len(anns) - len(keep)
        for a, box in zip(keep.tolist(), boxes[keep].tolist(), strict=True):
            spans = spans_all[span_start[a]:span_start[a + 1]].tolist()
            if not spans:
                problems.error("no-spans", path, f"annotations (image {int(cols.img_ids[i])})",
                               "tokens_positive", "empty: the box refers to no words of the caption")
                continue
            if any(s < 0 or e > n_chars or s >= e for s, e in spans):
                bad = next(sp for sp in spans if sp[0] < 0 or sp[1] > n_chars or sp[0] >= sp[1])
                problems.error("span-outside-caption", path, f"annotations (image {int(cols.img_ids[i])})",
                               "tokens_positive", f"span {bad} is outside the caption (length {n_chars})")
                continue
            spans.sort(key=lambda s: s[0])
            pieces = phrase_pieces(caption, spans)
            key = " ".join(pieces)
            region = regions.get(key)
            stats["boxes"] += 1
            if region is None:
                regions[key] = {
                    "bbox": box,
                    "phrase": pieces[0] if len(pieces) == 1 else pieces,
                    "tokens_positive": spans,
                }
                continue
            bb = region["bbox"]
            region["bbox"] = [*bb, box] if isinstance(bb[0], list) else [bb, box]
            known_spans = region["tokens_positive"]
            added = [s for s in spans if s not in known_spans]
            if added:  # upstream drops these: a repeated phrase loses its other mentions
                stats["spans-kept-from-repeated-phrase"] += len(added)
                known_spans.extend(added)
                known_spans.sort(key=lambda s: s[0])
        stats["images"] += 1
        stats["regions"] += len(regions)
        yield {
            "filename": cols.file_names[i],
            "height": cols.heights[i],
            "width": cols.widths[i],
            "grounding": {"caption": caption, "regions": list(regions.values())},
        }


def goldg_to_odvg(path: str | Path, problems: ProblemLog | None = None, on_bytes: OnBytes = None) -> Conversion:
    """A MDETR grounding json (GQA, Flickr30k, COCO-mixed, RefCOCO finetune) → ODVG VG records.

    The input is parsed when the returned records are first iterated.
    """
    path = Path(path)
    problems = problems if problems is not None else ProblemLog()
    stats: Counter[str] = Counter()

    def records() -> Iterator[dict[str, Any]]:
        cols = read_mdetr(path, problems, on_bytes)
        yield from mdetr_records(cols, path, problems, stats)

    return Conversion(records=records(), label_map=None, stats=stats)


class _MixedImage(msgspec.Struct, gc=False):
    id: int
    data_source: str | None = None


class _AnnImage(msgspec.Struct, gc=False):
    image_id: int


def extract_coco_from_mixed(
    path: str | Path, output: str | Path, problems: ProblemLog | None = None, on_bytes: OnBytes = None
) -> Counter[str]:
    """MDETR ``final_mixed_train.json`` → its COCO-2014 part (``images[].data_source == "coco"``).

    Upstream ``extract_coco_from_mixed.py`` (§3.3): images in file order, each image's annotations
    in file order (crowd included), ids unchanged, ``info``/``licenses``/``categories`` copied
    (missing ones become empty instead of a KeyError). Elements are copied byte for byte.
    """
    from odvgkit.convert._stream import JsonDocWriter, decode_raw
    from odvgkit.io import atomic_path, check_distinct

    path, output = Path(path), Path(output)
    check_distinct(output, [path])
    problems = problems if problems is not None else ProblemLog()
    stats: Counter[str] = Counter()
    meta: dict[str, msgspec.Raw] = {}
    kept_images: list[msgspec.Raw] = []
    rank: dict[int, int] = {}
    for key, first, items in stream_members(
        path, {"images": msgspec.Raw, "info": msgspec.Raw, "licenses": msgspec.Raw, "categories": msgspec.Raw},
        problems=problems, on_bytes=on_bytes,
    ):
        if key != "images" or first < 0:
            if key == "images":
                raise OdvgError(f"{path}: images: must be a JSON array")
            meta[key] = items[0] if first < 0 else msgspec.Raw(msgspec.json.encode(items))
            continue
        for i, raw in enumerate(items, first):
            try:
                im = decode_raw(raw, _MixedImage)
            except msgspec.ValidationError as exc:
                problems.error("bad-element", path, f"images[{i}]", None, str(exc))
                continue
            if im.data_source is None:
                problems.error("missing-field", path, f"images[{i}]", "data_source", "missing (expected 'coco' or 'vg')")
                continue
            if im.data_source == "coco":
                rank.setdefault(im.id, len(kept_images))
                kept_images.append(raw)
    stats["images"] = len(kept_images)
    anns: list[tuple[int, int, msgspec.Raw]] = []
    seq = 0
    for _key, _first, items in stream_members(path, {"annotations": msgspec.Raw}, problems=problems):
        for raw in items:
            try:
                a = decode_raw(raw, _AnnImage)
            except msgspec.ValidationError:
                problems.error("bad-element", path, "annotations", "image_id", "missing or not an integer")
                continue
            r = rank.get(a.image_id)
            if r is not None:
                anns.append((r, seq, raw))
                seq += 1
    anns.sort(key=lambda t: (t[0], t[1]))
    stats["annotations"] = len(anns)
    with atomic_path(output) as tmp, open(tmp, "wb") as fh:
        doc = JsonDocWriter(fh)
        for key in ("info", "licenses", "categories"):
            doc.value(key, meta.get(key, {} if key == "info" else []))
        doc.begin_array("images")
        doc.items(kept_images)
        doc.begin_array("annotations")
        doc.items(raw for _, _, raw in anns)
        doc.close()
    return stats
