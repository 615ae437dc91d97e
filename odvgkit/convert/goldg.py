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
from dataclasses import dataclass
from itertools import chain
from operator import attrgetter
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from odvgkit.convert._boxes import big_enough, overlaps_image
from odvgkit.convert._stream import OnBytes
from odvgkit.convert.base import Conversion
from odvgkit.errors import OdvgError, ProblemLog
from odvgkit.io.jsonstream import stream_members


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


_IMAGE_ID, _BBOX, _AREA, _CROWD, _TOKENS = (
    attrgetter(n) for n in ("image_id", "bbox", "area", "iscrowd", "tokens_positive")
)


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
    ids: list[int] = []
    file_names: list[str] = []
    heights: list[int] = []
    widths: list[int] = []
    captions: list[str] = []
    ann_img: list[np.ndarray] = []
    xywh: list[np.ndarray] = []
    area: list[np.ndarray] = []
    crowd: list[np.ndarray] = []
    n_spans: list[np.ndarray] = []
    spans: list[np.ndarray] = []
    for key, first, items in stream_members(
        path, {"images": MdetrImage, "annotations": MdetrAnn}, problems=problems, on_bytes=on_bytes,
        block_size=4 << 20,
    ):
        if first < 0:
            problems.error("not-an-array", path, key, None, f"'{key}' must be a JSON array")
            continue
        if key == "images":
            for i, im in enumerate(items, first):
                h, w = im.height, im.width
                if type(h) is not int or type(w) is not int:
                    h, w = _as_int(h), _as_int(w)  # type: ignore[arg-type]
                if h is None or w is None or h <= 0 or w <= 0:
                    problems.error("bad-size", path, f"images[{i}]", "height/width",
                                   f"not a positive number: {im.height!r} x {im.width!r}")
                    continue
                ids.append(im.id)
                file_names.append(im.file_name)
                heights.append(h)
                widths.append(w)
                captions.append(im.caption)
            continue
        n = len(items)
        ann_img.append(np.fromiter(map(_IMAGE_ID, items), np.int64, n))
        xywh.append(np.fromiter(chain.from_iterable(map(_BBOX, items)), np.float64, 4 * n).reshape(-1, 4))
        area.append(np.fromiter(map(_AREA, items), np.float64, n))
        crowd.append(np.fromiter(map(_CROWD, items), np.int64, n))
        toks = list(map(_TOKENS, items))
        n_spans.append(np.fromiter(map(len, toks), np.int64, n))
        spans.append(np.fromiter(chain.from_iterable(chain.from_iterable(toks)), np.int64).reshape(-1, 2))
    id_arr = np.asarray(ids, dtype=np.int64)
    order = np.argsort(id_arr, kind="stable")
    sorted_ids = id_arr[order]
    # duplicate ids: the last one wins (pycocotools' dict), at the sorted position
    last = np.ones(len(order), bool)
    if len(order) > 1:
        last[:-1] = sorted_ids[1:] != sorted_ids[:-1]
    for k in np.flatnonzero(~last).tolist():
        problems.warn("duplicate-image-id", path, "images", "id",
                      f"image id {int(sorted_ids[k])} repeated; the last one is used (as upstream)")
    order = order[last].tolist()
    counts = np.concatenate(n_spans) if n_spans else np.zeros(0, np.int64)
    return MdetrColumns(
        img_ids=sorted_ids[last],
        file_names=[file_names[i] for i in order],
        heights=[heights[i] for i in order],
        widths=[widths[i] for i in order],
        captions=[captions[i] for i in order],
        ann_img=np.concatenate(ann_img) if ann_img else np.zeros(0, np.int64),
        xywh=np.concatenate(xywh) if xywh else np.zeros((0, 4)),
        area=np.concatenate(area) if area else np.zeros(0),
        crowd=np.concatenate(crowd) if crowd else np.zeros(0, np.int64),
        span_start=np.concatenate(([0], np.cumsum(counts))),
        spans=np.concatenate(spans) if spans else np.zeros((0, 2), np.int64),
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


_BLOCK = 8192  # images per block: lists are made for one block at a time


def mdetr_records(cols: MdetrColumns, path: Path, problems: ProblemLog, stats: Counter[str]) -> Iterator[dict[str, Any]]:
    """The VG records of a MDETR file, in ascending image-id order."""
    n_img = len(cols.img_ids)
    n_ann = len(cols.ann_img)
    if n_img:
        img_idx = np.minimum(np.searchsorted(cols.img_ids, cols.ann_img), n_img - 1)
        known = cols.img_ids[img_idx] == cols.ann_img
    else:
        img_idx, known = np.zeros(n_ann, np.int64), np.zeros(n_ann, bool)
    for i in np.flatnonzero(~known).tolist():
        problems.error("unknown-image", path, "annotations", "image_id",
                       f"image id {int(cols.ann_img[i])} is not in images[]")
    non_crowd = known & (cols.crowd == 0)
    stats["dropped:crowd"] += int((known & (cols.crowd != 0)).sum())
    W = np.asarray(cols.widths, dtype=np.float64)[img_idx] if n_img else np.zeros(n_ann)
    H = np.asarray(cols.heights, dtype=np.float64)[img_idx] if n_img else np.zeros(n_ann)
    xywh = cols.xywh
    valid = overlaps_image(xywh, W, H) & big_enough(xywh, cols.area)
    not_tiny = (xywh[:, 2] > 1) & (xywh[:, 3] > 1)  # has_valid_annotation's own test
    boxes = np.stack([xywh[:, 0], xywh[:, 1], np.minimum(xywh[:, 0] + xywh[:, 2], W),
                      np.minimum(xywh[:, 1] + xywh[:, 3], H)], axis=1) if n_ann else np.zeros((0, 4))
    # spans checked against the caption length, all at once
    n_sp = np.diff(cols.span_start)
    cap_len = np.fromiter(map(len, cols.captions), np.int64, n_img)[img_idx] if n_img else np.zeros(n_ann, np.int64)
    sp = cols.spans
    bad_span = (sp[:, 0] < 0) | (sp[:, 1] > np.repeat(cap_len, n_sp)) | (sp[:, 0] >= sp[:, 1])
    span_ok = (np.bincount(np.repeat(np.arange(n_ann), n_sp)[bad_span], minlength=n_ann) == 0) & (n_sp > 0)

    sel = np.flatnonzero(non_crowd)
    grouped = img_idx[sel]
    n_per_image = np.bincount(grouped, minlength=n_img) if n_img else np.zeros(0, np.int64)
    has_big = np.bincount(grouped[not_tiny[sel]], minlength=n_img) > 0 if n_img else np.zeros(0, bool)
    image_kept = (n_per_image > 0) & has_big
    stats["dropped:image-without-annotation"] += int((n_per_image == 0).sum())
    stats["dropped:image-only-tiny-boxes"] += int(((n_per_image > 0) & ~has_big).sum())
    in_kept = non_crowd & (image_kept[img_idx] if n_img else np.zeros(n_ann, bool))
    stats["dropped:invalid-box"] += int((in_kept & ~valid).sum())
    for g in np.flatnonzero(in_kept & valid & ~span_ok).tolist():
        i = int(img_idx[g])
        _span_problem(problems, path, int(cols.img_ids[i]), cols.captions[i],
                      sp[cols.span_start[g]:cols.span_start[g + 1]].tolist())
    use = np.flatnonzero(in_kept & valid & span_ok)
    use = use[np.argsort(img_idx[use], kind="stable")]  # grouped by image, file order inside
    starts = np.searchsorted(img_idx[use], np.arange(n_img + 1)).tolist()
    stats["boxes"] += len(use)
    kept_l = image_kept.tolist()
    captions = cols.captions

    for b0 in range(0, n_img, _BLOCK):
        b1 = min(b0 + _BLOCK, n_img)
        off = starts[b0]
        a = use[off:starts[b1]]
        box_l = boxes[a].tolist()
        cnt = n_sp[a]
        ends = np.cumsum(cnt)
        gather = np.repeat(cols.span_start[a] - (ends - cnt), cnt) + np.arange(int(ends[-1]) if len(ends) else 0)
        span_l = sp[gather].tolist()
        span_off = [0, *ends.tolist()]
        for i in range(b0, b1):
            if not kept_l[i]:
                continue
            caption = captions[i]
            regions: dict[str, dict[str, Any]] = {}
            for j in range(starts[i] - off, starts[i + 1] - off):
                spans = span_l[span_off[j]:span_off[j + 1]]
                if len(spans) == 1:
                    s, e = spans[0]
                    key = phrase = caption[s:e]
                else:
                    spans.sort(key=_start)
                    pieces = phrase_pieces(caption, spans)
                    key = " ".join(pieces)
                    phrase = pieces[0] if len(pieces) == 1 else pieces
                region = regions.get(key)
                if region is None:
                    regions[key] = {"bbox": box_l[j], "phrase": phrase, "tokens_positive": spans}
                    continue
                bb = region["bbox"]
                region["bbox"] = [*bb, box_l[j]] if isinstance(bb[0], list) else [bb, box_l[j]]
                known_spans = region["tokens_positive"]
                added = [x for x in spans if x not in known_spans]
                if added:  # upstream drops these: a repeated phrase loses its other mentions
                    stats["spans-kept-from-repeated-phrase"] += len(added)
                    known_spans.extend(added)
                    known_spans.sort(key=_start)
            stats["images"] += 1
            stats["regions"] += len(regions)
            yield {
                "filename": cols.file_names[i],
                "height": cols.heights[i],
                "width": cols.widths[i],
                "grounding": {"caption": caption, "regions": list(regions.values())},
            }


def _start(span: list[int]) -> int:
    return span[0]


def _span_problem(problems: ProblemLog, path: Path, image_id: int, caption: str, spans: list[list[int]]) -> None:
    where = f"annotations (image {image_id})"
    if not spans:
        problems.error("no-spans", path, where, "tokens_positive", "empty: the box refers to no words of the caption")
        return
    n = len(caption)
    bad = next(x for x in spans if x[0] < 0 or x[1] > n or x[0] >= x[1])
    problems.error("span-outside-caption", path, where, "tokens_positive",
                   f"span {bad} is outside the caption (length {n})")


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
