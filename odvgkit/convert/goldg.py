"""MDETR grounding json (GoldG: GQA/VG mixed, Flickr30k separateGT, COCO-2014 mixed) → ODVG VG.

Upstream ``goldg2odvg.py`` (upstream-converters.md §3.7), streamed, vectorised and on both cores:

* images and annotations become columns (numpy), never dicts: read in one pass by the optional C
  reader ``_goldg_parse`` when the file is of the plain shape, else decoded by msgspec in worker
  processes (which also reports every bad element); upstream's filters, the span sorting and the
  phrase pieces are decided on whole columns;
* records are then built block by block: per box (spans, phrase, region, JSON) in the optional C
  extension ``_goldg_format`` on two threads, else in Python (``_records``) in forked workers;
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

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from itertools import chain
from operator import attrgetter
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import orjson

from odvgkit._memory import gc_paused, trim_heap
from odvgkit.convert._boxes import big_enough, overlaps_image
from odvgkit.convert._parallel import PARALLEL_MIN_BYTES, WORKERS, ordered_map
from odvgkit.convert._stream import OnBytes
from odvgkit.convert.base import Conversion
from odvgkit.convert.coco import lookup
from odvgkit.convert.fields import INT64_MAX, INT64_MIN, Int64
from odvgkit.errors import OdvgError, ProblemLog
from odvgkit.io.jsonstream import Parallel, stream_members

try:  # the C formatter (built at install when a C compiler is there); else the Python path below
    from odvgkit.convert import _goldg_format as _native
except ImportError:  # pragma: no cover - exercised where the extension is not built
    _native = None
try:  # the C reader (same build); else, or for a file it does not take, the msgspec reader
    from odvgkit.convert._goldg_parse import group as _native_group
    from odvgkit.convert._goldg_parse import parse as _native_parse
except ImportError:  # pragma: no cover - exercised where the extension is not built
    _native_parse = _native_group = None


class MdetrImage(msgspec.Struct, gc=False):
    id: Int64
    file_name: str
    height: Int64 | float | str
    width: Int64 | float | str
    caption: str


class MdetrAnn(msgspec.Struct, gc=False):
    image_id: Int64
    bbox: tuple[float, float, float, float]
    area: float
    iscrowd: Int64
    tokens_positive: list[tuple[Int64, Int64]]


_IMAGE_ID, _BBOX, _AREA, _CROWD, _TOKENS = (
    attrgetter(n) for n in ("image_id", "bbox", "area", "iscrowd", "tokens_positive")
)
_ID, _FILE_NAME, _HEIGHT, _WIDTH, _CAPTION = (attrgetter(n) for n in ("id", "file_name", "height", "width", "caption"))


@dataclass
class MdetrColumns:
    """A MDETR file as columns: images as lists (sorted by id), annotations as numpy arrays."""

    img_ids: np.ndarray
    file_names: list[str]
    heights: np.ndarray
    widths: np.ndarray
    captions: list[str]
    caption_lengths: np.ndarray
    ann_img: np.ndarray  # image id of each annotation (file order)
    xywh: np.ndarray
    positive_area: np.ndarray  # area > 0 (bool: all the filters need of it)
    crowd: np.ndarray  # iscrowd != 0 (bool)
    span_start: np.ndarray  # offsets into ``spans`` per annotation (len = n_ann + 1)
    spans: np.ndarray  # (n_spans, 2) int
    # per annotation batch: (index in the file of its first element, elements kept, positions of
    # the kept ones in the batch when malformed ones were left out, else None) — for messages
    ann_where: list[tuple[int, int, np.ndarray | None]] = field(default_factory=list)

    def ann_locator(self, i: int) -> str:
        """``annotations[k]``, ``k`` the file index of column row ``i`` (error path only)."""
        for first, count, pos in self.ann_where:
            if i < count:
                return f"annotations[{first + (int(pos[i]) if pos is not None else i)}]"
            i -= count
        return "annotations"


def _as_int(value: int | float | str) -> int | None:
    try:
        size = int(value)  # upstream: int(img['height']); Flickr files carry numeric strings
    except (TypeError, ValueError, OverflowError):
        try:
            size = int(float(value))
        except (TypeError, ValueError, OverflowError):  # "abc", NaN, inf
            return None
    return size if INT64_MIN <= size <= INT64_MAX else None


def _ann_columns(items: list[MdetrAnn]) -> tuple[np.ndarray, ...]:
    """A batch of annotations → ``(image id, xywh, area > 0, crowd, spans per box, spans)`` arrays.

    Runs in the decoding workers, so only these compact arrays travel back.
    """
    n = len(items)
    if _native is not None:
        cols = (np.empty(n, np.int64), np.empty((n, 4), np.float64), np.empty(n, bool), np.empty(n, bool),
                np.empty(n, np.int64))
        spans = _native.ann_columns(items, MdetrAnn, *cols)
        return (*cols, np.frombuffer(spans, np.int64).reshape(-1, 2))
    toks = list(map(_TOKENS, items))
    return (
        np.fromiter(map(_IMAGE_ID, items), np.int64, n),
        np.fromiter(chain.from_iterable(map(_BBOX, items)), np.float64, 4 * n).reshape(-1, 4),
        np.fromiter(map(_AREA, items), np.float64, n) > 0,
        np.fromiter(map(_CROWD, items), np.int64, n) != 0,
        np.fromiter(map(len, toks), np.int64, n),
        np.fromiter(chain.from_iterable(chain.from_iterable(toks)), np.int64).reshape(-1, 2),
    )


def _ann_batch(items: list[MdetrAnn | None]) -> tuple[np.ndarray | None, tuple[np.ndarray, ...]]:
    """:func:`_ann_columns` of a batch decoded with ``keep_invalid`` (malformed elements are
    ``None``, already reported): the kept elements' positions come along so that later messages
    name the file index of an annotation."""
    if None not in items:
        return None, _ann_columns(items)  # type: ignore[arg-type]
    pos = np.fromiter((k for k, a in enumerate(items) if a is not None), np.int64)
    return pos, _ann_columns([items[k] for k in pos.tolist()])  # type: ignore[misc]


def _image_columns(items: list[MdetrImage]) -> tuple[Any, ...]:
    """A batch of images → ``(ids, file names, heights, widths, captions, caption lengths, bad sizes)``.

    Runs in the decoding workers. Sizes become ints (Flickr files carry numeric strings); an
    image without a usable size is left out and listed as ``(index in batch, height, width)``.
    """
    heights = list(map(_HEIGHT, items))
    widths = list(map(_WIDTH, items))
    bad: list[tuple[int, Any, Any]] = []
    if not all(type(v) is int and v > 0 for v in chain(heights, widths)):
        keep = []
        for k, (h, w) in enumerate(zip(heights, widths, strict=True)):
            hi, wi = _as_int(h), _as_int(w)
            if hi is None or wi is None or hi <= 0 or wi <= 0:
                bad.append((k, h, w))
            else:
                keep.append(k)
                heights[k], widths[k] = hi, wi
        items = [items[k] for k in keep]
        heights = [heights[k] for k in keep]
        widths = [widths[k] for k in keep]
    n = len(items)
    captions = list(map(_CAPTION, items))
    return (np.fromiter(map(_ID, items), np.int64, n), list(map(_FILE_NAME, items)),
            np.fromiter(heights, np.int64, n), np.fromiter(widths, np.int64, n), captions,
            np.fromiter(map(len, captions), np.int64, n), bad)


def _image_batch(items: list[MdetrImage | None]) -> tuple[Any, ...]:
    """:func:`_image_columns` of a batch decoded with ``keep_invalid`` (malformed elements are
    ``None``, already reported); bad sizes keep their index in the batch."""
    if None not in items:
        return _image_columns(items)  # type: ignore[arg-type]
    pos = [k for k, im in enumerate(items) if im is not None]
    columns = _image_columns([items[k] for k in pos])  # type: ignore[misc]
    return (*columns[:-1], [(pos[k], h, w) for k, h, w in columns[-1]])


def read_mdetr(path: str | Path, problems: ProblemLog, on_bytes: OnBytes = None) -> MdetrColumns:
    """Stream a MDETR json into columns; bad elements are reported and skipped.

    The C reader (``_goldg_parse``) takes a well-formed file of the plain shape in one pass; for
    anything else it gives up and the msgspec reader below reads the file and reports what is
    wrong with it (so messages and output never depend on which reader ran).
    """
    path = Path(path)
    if _native_parse is not None:
        progress = _Progress(on_bytes)
        parsed = _native_parse(os.fsencode(path), progress if on_bytes is not None else None)
        if parsed is not None:
            return _native_columns(parsed, path, problems)
        on_bytes = progress.after_retry
    return _read_mdetr_msgspec(path, problems, on_bytes)


class _Progress:
    """Forwards the C reader's progress; when it gives up, the retry's first bytes (already
    shown) are not counted again, so a progress bar never runs past the file's size."""

    def __init__(self, on_bytes: OnBytes) -> None:
        self.on_bytes = on_bytes
        self.shown = 0

    def __call__(self, n: int) -> None:
        self.shown += n
        if self.on_bytes is not None:
            self.on_bytes(n)

    def after_retry(self, n: int) -> None:
        new = n - min(n, self.shown)
        self.shown -= n - new
        if new and self.on_bytes is not None:
            self.on_bytes(new)


def _native_columns(parsed: tuple[Any, ...], path: Path, problems: ProblemLog) -> MdetrColumns:
    """The C reader's buffers as :class:`MdetrColumns` (one batch of images, no bad element)."""
    ids, file_names, heights, widths, captions, cap_len, ann_img, xywh, pos, crowd, counts, spans = parsed
    i64 = partial(np.frombuffer, dtype=np.int64)
    images = _sorted_images([(i64(ids), file_names, i64(heights), i64(widths), captions, i64(cap_len), [])],
                            path, problems)
    img_ids, file_names, heights, widths, captions, caption_lengths = images
    n_ann = len(pos)
    return MdetrColumns(
        img_ids=img_ids, file_names=file_names, heights=heights, widths=widths, captions=captions,
        caption_lengths=caption_lengths, ann_img=i64(ann_img), xywh=np.frombuffer(xywh, np.float64).reshape(-1, 4),
        positive_area=np.frombuffer(pos, bool), crowd=np.frombuffer(crowd, bool),
        span_start=np.concatenate(([0], np.cumsum(i64(counts)))), spans=i64(spans).reshape(-1, 2),
        ann_where=[(0, n_ann, None)],
    )


def _read_mdetr_msgspec(path: Path, problems: ProblemLog, on_bytes: OnBytes = None) -> MdetrColumns:
    """:func:`read_mdetr` with msgspec: batches decoded (in workers for big files) and reported
    element by element."""
    image_batches: list[tuple[Any, ...]] = []
    ann_batches: list[tuple[np.ndarray, ...]] = []
    images: tuple[Any, ...] | None = None  # _sorted_images of image_batches, once they are all in
    ann_where: list[tuple[int, int, np.ndarray | None]] = []
    seen: set[str] = set()
    for key, first, items in stream_members(
        path, {"images": MdetrImage, "annotations": MdetrAnn}, problems=problems, on_bytes=on_bytes,
        block_size=4 << 20, keep_invalid=True,
        parallel=Parallel({"images": _image_batch, "annotations": _ann_batch}, workers=WORKERS,
                          min_bytes=PARALLEL_MIN_BYTES),
    ):
        seen.add(key)
        if first < 0:
            problems.error("not-an-array", path, key, None, f"'{key}' must be a JSON array")
        elif key == "annotations":
            if images is None and image_batches:
                # images come first in MDETR files: sort them now, while the workers decode annotations
                images = _sorted_images(image_batches, path, problems)
            pos, columns = items
            ann_where.append((first, len(columns[0]), pos))
            ann_batches.append(columns)
        else:
            images = None  # (more images after the annotations: sorted at the end)
            for k, h, w in items[-1]:
                problems.error("bad-size", path, f"images[{first + k}]", "height/width",
                               f"not a positive number: {h!r} x {w!r}")
            image_batches.append(items)
    for required in ("images", "annotations"):
        if required not in seen:  # one error for the file, not a silent empty output
            raise OdvgError(f"{path}: missing top-level key {required!r} (not a MDETR grounding file?)")
    if images is None:
        images = _sorted_images(image_batches, path, problems)
    img_ids, file_names, heights, widths, captions, caption_lengths = images
    ann_img, xywh, positive_area, crowd, counts, spans = _concatenate(ann_batches) if ann_batches else _ann_columns([])
    trim_heap()  # the decoding's garbage goes back to the OS before the plan's temporaries
    return MdetrColumns(
        img_ids=img_ids,
        file_names=file_names,
        heights=heights,
        widths=widths,
        captions=captions,
        caption_lengths=caption_lengths,
        ann_img=ann_img,
        xywh=xywh,
        positive_area=positive_area,
        crowd=crowd,
        span_start=np.concatenate(([0], np.cumsum(counts))),
        spans=spans,
        ann_where=ann_where,
    )


def _sorted_images(batches: list[tuple[Any, ...]], path: Path, problems: ProblemLog) -> tuple[Any, ...]:
    """The image columns in ascending id order (upstream's ``sorted(coco.imgs)``); of repeated
    ids the last one wins (pycocotools' dict), at the sorted position."""
    batches = batches or [_image_columns([])]
    ids = np.concatenate([b[0] for b in batches])
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    last = np.ones(len(order), bool)
    if len(order) > 1:
        last[:-1] = sorted_ids[1:] != sorted_ids[:-1]
    for k in np.flatnonzero(~last).tolist():
        problems.warn("duplicate-image-id", path, "images", "id",
                      f"image id {int(sorted_ids[k])} repeated; the last one is used (as upstream)")
    keep = order[last].tolist()

    def column(k: int) -> Any:  # the batches' k-th columns joined, then reordered
        if isinstance(batches[0][k], np.ndarray):
            return np.concatenate([b[k] for b in batches])[keep]
        return list(map([x for b in batches for x in b[k]].__getitem__, keep))

    return sorted_ids[last], column(1), column(2), column(3), column(4), column(5)


def _concatenate(batches: list[tuple[np.ndarray, ...]]) -> list[np.ndarray]:
    """Join the batches' columns one at a time, dropping each column's parts once joined, so
    the peak is the columns plus one column's parts rather than twice everything."""
    parts = [list(column) for column in zip(*batches, strict=True)]
    batches.clear()
    out = []
    for k in range(len(parts)):
        out.append(np.concatenate(parts[k]))
        parts[k] = []
    return out


_BLOCK = 4096  # images per block: the unit of work of a formatting worker
_PARALLEL_MIN_BOXES = 200_000  # below this, formatting in-process is faster than forking
_CHUNK = 1 << 16  # annotations per step of the vectorised box tests


@dataclass
class _Plan:
    """What every record needs, decided for the whole file at once (vectorised). Only this is
    kept (the box columns are dropped): forked formatting workers start as copies of it."""

    file_names: list[str]  # per image (sorted by id)
    heights: list[int]
    widths: list[int]
    captions: list[str]
    kept: list[bool]
    span_start: np.ndarray  # per annotation, as in MdetrColumns
    spans: np.ndarray
    use: np.ndarray  # indices of the annotations that become boxes, grouped by image
    starts: list[int]  # image i's boxes are use[starts[i]:starts[i + 1]]
    boxes: np.ndarray  # (len(use), 4) xyxy, x2/y2 clipped, aligned with ``use``


def _plan(cols: MdetrColumns, path: Path, problems: ProblemLog, stats: Counter[str]) -> _Plan:
    """Upstream's filters on columns; problems are reported here, so blocks only format."""
    n_img = len(cols.img_ids)
    n_ann = len(cols.ann_img)
    img_idx, known = lookup(cols.img_ids, cols.ann_img)  # coco2odvg's: a table for compact ids, else a search
    for i in np.flatnonzero(~known).tolist():
        problems.error("unknown-image", path, cols.ann_locator(i), "image_id",
                       f"image id {int(cols.ann_img[i])} is not in images[]")
    non_crowd = known & ~cols.crowd
    stats["dropped:crowd"] += int((known & cols.crowd).sum())
    widths = cols.widths.astype(np.float64) if n_img else np.zeros(1)
    heights = cols.heights.astype(np.float64) if n_img else np.zeros(1)
    xywh = cols.xywh
    valid = np.empty(n_ann, bool)
    for lo in range(0, n_ann, _CHUNK):  # in chunks: the box tests' temporaries stay small
        part, idx = slice(lo, lo + _CHUNK), img_idx[lo:lo + _CHUNK]
        valid[part] = overlaps_image(xywh[part], widths[idx], heights[idx]) & big_enough(xywh[part], cols.positive_area[part])
    not_tiny = (xywh[:, 2] > 1) & (xywh[:, 3] > 1)  # has_valid_annotation's own test
    # spans checked against the caption length, all at once
    n_sp = np.diff(cols.span_start)
    cap_len = cols.caption_lengths[img_idx] if n_img else np.zeros(n_ann, np.int64)
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
        _span_problem(problems, path, f"{cols.ann_locator(g)} (image {int(cols.img_ids[i])})", cols.captions[i],
                      sp[cols.span_start[g]:cols.span_start[g + 1]].tolist())
    use = np.flatnonzero(in_kept & valid & span_ok)
    use = use[_group_order(img_idx[use], n_img)]  # grouped by image, file order inside
    stats["boxes"] += len(use)
    kept_img = img_idx[use]
    boxes = np.take(xywh, use, axis=0)  # → [x1, y1, min(x1 + w, W), min(y1 + h, H)] in place
    boxes[:, 2:] += boxes[:, :2]
    np.minimum(boxes[:, 2], widths[kept_img], out=boxes[:, 2])
    np.minimum(boxes[:, 3], heights[kept_img], out=boxes[:, 3])
    starts = np.concatenate(([0], np.cumsum(np.bincount(kept_img, minlength=n_img)))).tolist()  # kept_img is sorted
    return _Plan(cols.file_names, cols.heights.tolist(), cols.widths.tolist(), cols.captions, image_kept.tolist(),
                 cols.span_start, sp, use, starts, boxes)


def _group_order(keys: np.ndarray, n_groups: int) -> np.ndarray:
    """The stable order grouping ``keys`` (``0 … n_groups - 1``): a counting sort in C, else
    NumPy's stable argsort (the same order)."""
    if _native_group is not None:
        return np.frombuffer(_native_group(np.ascontiguousarray(keys, np.int64), n_groups), np.int64)
    return np.argsort(keys, kind="stable")


@dataclass
class _BlockSpans:
    """One block's boxes with their spans sorted and their phrase pieces decided (vectorised).

    Annotation ``j`` of the block (``0 … n-1``, grouped by image) has spans
    ``spans[span_at[j]:span_at[j + 1]]`` sorted by start (stable, as upstream) and phrase pieces
    ``caption[piece_start[m]:piece_stop[m]]`` for ``m`` in ``piece_at[j] … piece_at[j + 1] - 1``.
    Upstream walks the sorted spans and appends a span to the previous piece (with one space)
    when it starts one character after the previous span's end and that character is a space;
    so a piece is always ``caption[first start:last end]`` of its run of spans.
    """

    b0: int
    b1: int
    off: int  # the block's first box in ``plan.use``
    image_of: np.ndarray
    spans: np.ndarray
    span_at: np.ndarray
    piece_start: np.ndarray
    piece_stop: np.ndarray
    piece_at: np.ndarray


def _block_spans(plan: _Plan, b0: int) -> _BlockSpans:
    starts = plan.starts
    b1 = min(b0 + _BLOCK, len(plan.kept))
    off = starts[b0]
    a = plan.use[off:starts[b1]]
    n = len(a)
    first = plan.span_start[a]
    cnt = plan.span_start[a + 1] - first
    span_end = np.cumsum(cnt)
    total = int(span_end[-1]) if n else 0
    owner = np.repeat(np.arange(n), cnt)
    sp = plan.spans[np.repeat(first - (span_end - cnt), cnt) + np.arange(total)]
    sp = sp[np.argsort(owner * (int(sp[:, 1].max(initial=0)) + 1) + sp[:, 0], kind="stable")]
    image_of = np.repeat(np.arange(b0, b1), np.diff(starts[b0:b1 + 1]))
    # span k continues the piece of span k-1 when k-1 ends one character before a space
    new_piece = np.ones(total, bool)
    if total > 1:
        candidate = np.flatnonzero((owner[1:] == owner[:-1]) & (sp[:-1, 1] + 1 == sp[1:, 0])) + 1
        captions = plan.captions
        for k, at, img in zip(candidate.tolist(), sp[candidate, 0].tolist(),
                              image_of[owner[candidate]].tolist(), strict=True):
            if captions[img][at - 1] == " ":
                new_piece[k] = False
    piece_first = np.flatnonzero(new_piece)
    piece_last = np.append(piece_first[1:], total)[:len(piece_first)] - 1
    n_pieces = np.bincount(owner[piece_first], minlength=n)
    return _BlockSpans(
        b0, b1, off, image_of, sp, np.concatenate(([0], span_end)), sp[piece_first, 0], sp[piece_last, 1],
        np.concatenate(([0], np.cumsum(n_pieces))),
    )


def _block(plan: _Plan, b0: int) -> tuple[list[dict[str, Any]], Counter[str]]:
    """The records of images ``b0 … b0 + _BLOCK - 1`` (those kept), and what they counted."""
    bs = _block_spans(plan, b0)
    stats: Counter[str] = Counter()
    out = _records(plan, bs, [i for i in range(bs.b0, bs.b1) if plan.kept[i]], stats)
    return out, stats


def _records(plan: _Plan, bs: _BlockSpans, images: list[int], stats: Counter[str]) -> list[dict[str, Any]]:
    """The records of some images of a block, as dicts: upstream's algorithm, spans kept."""
    starts, off = plan.starts, bs.off
    box_l = plan.boxes[off:starts[bs.b1]].tolist()
    span_l = bs.spans.tolist()
    span_at = bs.span_at.tolist()
    piece_start, piece_stop, piece_at = bs.piece_start.tolist(), bs.piece_stop.tolist(), bs.piece_at.tolist()
    out: list[dict[str, Any]] = []
    for i in images:
        caption = plan.captions[i]
        regions: dict[str, dict[str, Any]] = {}
        for j in range(starts[i] - off, starts[i + 1] - off):
            k, k_end = piece_at[j], piece_at[j + 1]
            if k_end - k == 1:
                key = phrase = caption[piece_start[k]:piece_stop[k]]
            else:
                phrase = [caption[piece_start[m]:piece_stop[m]] for m in range(k, k_end)]
                key = " ".join(phrase)
            region = regions.get(key)
            if region is None:
                regions[key] = {"bbox": box_l[j], "phrase": phrase, "tokens_positive": span_l[span_at[j]:span_at[j + 1]]}
            else:
                _merge(region, box_l[j], span_l[span_at[j]:span_at[j + 1]], stats)
        stats["regions"] += len(regions)
        out.append({
            "filename": plan.file_names[i],
            "height": plan.heights[i],
            "width": plan.widths[i],
            "grounding": {"caption": caption, "regions": list(regions.values())},
        })
    stats["images"] += len(out)
    return out


def _merge(region: dict[str, Any], box: list[float], spans: list[list[int]], stats: Counter[str]) -> None:
    """A later mention of a region's phrase: upstream adds its box; its spans are kept here too."""
    bb = region["bbox"]
    region["bbox"] = [*bb, box] if isinstance(bb[0], list) else [bb, box]
    known_spans = region["tokens_positive"]
    added = [x for x in spans if x not in known_spans]
    if added:  # upstream drops these: a repeated phrase loses its other mentions
        stats["spans-kept-from-repeated-phrase"] += len(added)
        known_spans.extend(added)
        known_spans.sort(key=_start)


def _jsonl_block(plan: _Plan, b0: int) -> tuple[bytes, int, Counter[str]]:
    """A block's records as JSON Lines (exactly what :class:`~odvgkit.io.jsonl.JsonlWriter` writes)."""
    if _native is not None:
        return _jsonl_block_native(plan, b0)
    with gc_paused():
        records, stats = _block(plan, b0)
        dumps, newline = orjson.dumps, orjson.OPT_APPEND_NEWLINE
        return b"".join([dumps(r, option=newline) for r in records]), len(records), stats


def _jsonl_block_native(plan: _Plan, b0: int) -> tuple[bytes, int, Counter[str]]:
    """:func:`_jsonl_block` in C (``_goldg_format.format_block``): the same bytes, ~6x faster.

    The box coordinates are formatted by orjson from the NumPy array, so floats are written
    exactly as the Python path writes them.
    """
    assert _native is not None
    b1 = min(b0 + _BLOCK, len(plan.kept))
    off, end = plan.starts[b0], plan.starts[b1]
    data, n_records, n_regions, n_spans_kept = _native.format_block(
        plan.captions, plan.file_names, plan.heights, plan.widths, b0,
        np.asarray(plan.kept[b0:b1], dtype=bool),
        np.asarray(plan.starts[b0:b1 + 1], dtype=np.int64) - off,
        orjson.dumps(plan.boxes[off:end], option=orjson.OPT_SERIALIZE_NUMPY),
        plan.use[off:end], plan.span_start, plan.spans,
    )
    stats: Counter[str] = Counter(images=n_records)
    if n_records:  # the keys the Python path creates
        stats["regions"] = n_regions
    if n_spans_kept:
        stats["spans-kept-from-repeated-phrase"] = n_spans_kept
    return data, n_records, stats


def _start(span: list[int]) -> int:
    return span[0]


def _span_problem(problems: ProblemLog, path: Path, where: str, caption: str, spans: list[list[int]]) -> None:
    if not spans:
        problems.error("no-spans", path, where, "tokens_positive", "empty: the box refers to no words of the caption")
        return
    n = len(caption)
    bad = next(x for x in spans if x[0] < 0 or x[1] > n or x[0] >= x[1])
    problems.error("span-outside-caption", path, where, "tokens_positive",
                   f"span {bad} is outside the caption (length {n})")


def goldg_to_odvg(
    path: str | Path, problems: ProblemLog | None = None, on_bytes: OnBytes = None, eager: bool = False
) -> Conversion:
    """A MDETR grounding json (GQA, Flickr30k, COCO-mixed, RefCOCO finetune) → ODVG VG records.

    Records come in ascending image-id order. The input is parsed when the returned records (or
    JSON Lines chunks) are first iterated — or at once with ``eager``, so that a command with
    several inputs (refcoco2odvg) finds every bad input before it writes anything; large inputs
    are formatted on both cores.
    """
    path = Path(path)
    problems = problems if problems is not None else ProblemLog()
    stats: Counter[str] = Counter()
    ready: list[_Plan] = []

    def plan() -> _Plan:
        if ready:
            return ready.pop()
        return _plan(read_mdetr(path, problems, on_bytes), path, problems, stats)

    def records() -> Iterator[dict[str, Any]]:
        p = plan()
        for b0 in range(0, len(p.kept), _BLOCK):
            with gc_paused():
                out, counted = _block(p, b0)
            stats.update(counted)
            yield from out

    def jsonl_chunks() -> Iterator[tuple[bytes, int]]:
        p = plan()
        workers = WORKERS if len(p.use) >= _PARALLEL_MIN_BOXES else 1
        blocks = range(0, len(p.kept), _BLOCK)
        # the C formatter releases the GIL: threads; the Python one needs processes
        for chunk, count, counted in ordered_map(partial(_jsonl_block, p), blocks, workers, threads=_native is not None):
            stats.update(counted)
            yield chunk, count

    if eager:
        ready.append(plan())
    return Conversion(records=records(), label_map=None, stats=stats, jsonl_chunks=jsonl_chunks())


class _MixedImage(msgspec.Struct, gc=False):
    id: Int64
    data_source: str | None = None


class _AnnImage(msgspec.Struct, gc=False):
    image_id: Int64


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
    for _key, first, items in stream_members(path, {"annotations": msgspec.Raw}, problems=problems):
        for k, raw in enumerate(items, max(first, 0)):
            try:
                a = decode_raw(raw, _AnnImage)
            except msgspec.ValidationError:
                problems.error("bad-element", path, f"annotations[{k}]", "image_id", "missing or not an integer")
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
