"""ODVG → COCO detection json, so any COCO tool (pycocotools, FiftyOne, evaluators) can read it.

* OD records: one category per label-map entry (``id = label + 1``, or the original COCO-80 ids with
  ``category_ids="coco80"``), one annotation per instance; optional instance fields (``score``, the
  OpenImages flags) are copied onto the annotation; LVIS ``neg_category_ids`` /
  ``not_exhaustive_category_ids`` go back onto the image as category ids.
* VG records: one category per distinct phrase (first-appearance order), one annotation per box
  carrying the region's ``tokens_positive``; the caption goes onto the image (MDETR's layout, so
  ``goldg2odvg`` reads the export back).

Boxes go back to ``[x, y, w, h]`` with ``w`` chosen so that ``x + w == x2`` exactly in IEEE doubles:
``coco2odvg`` of the export gives back every box bit for bit. The input is read twice (images, then
annotations), so memory is one record plus the category table.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from odvgkit.convert._stream import JsonDocWriter
from odvgkit.convert.fields import INT64_MAX, Int64
from odvgkit.errors import OdvgError, ProblemLog
from odvgkit.io import atomic_path, check_distinct, read_records
from odvgkit.records import box_is_finite, kind_of, region_boxes

COCO80_IDS = [
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28, 31, 32,
    33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59,
    60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90,
]
_INSTANCE_CORE = {"bbox", "label", "category"}
_SKIP = -1  # image ids are >= 0: marks a record that was reported and not exported


def exact_extent(lo: float, hi: float) -> float:
    """A ``w`` with ``lo + w == hi`` in doubles: ``hi - lo``, nudged by an ulp when that is off.

    Below 1 the largest such ``w`` is taken, so a box kept for being ``>= 1`` wide stays ``>= 1``
    wide when converted again (coco2odvg drops ``w < 1``).
    """
    w = hi - lo
    for _ in range(16):
        s = lo + w
        if s == hi:
            break
        w = math.nextafter(w, math.inf if s < hi else -math.inf)
    else:
        return hi - lo
    for _ in range(64):
        if w >= 1:
            break
        up = math.nextafter(w, math.inf)
        if lo + up != hi:
            break
        w = up
    return w


def to_xywh(box: list[float]) -> list[float]:
    x1, y1, x2, y2 = box
    return [x1, y1, exact_extent(x1, x2), exact_extent(y1, y2)]


def image_problem(rec: dict[str, Any]) -> tuple[str, str] | None:
    """``(field, message)`` when a record cannot become a COCO image (else None).

    COCO tools index images by ``file_name`` and scale by ``height``/``width``: a record without a
    name, or with sizes that are not positive integers (``"480"``, ``480.5``, ``true``), would be
    copied into a file pycocotools reads but evaluates wrongly — so it is refused, not copied.
    """
    name = rec.get("filename")
    if not isinstance(name, str) or not name:
        return "filename", f"missing or not a string: {name!r}"
    for key in ("height", "width"):
        v = rec.get(key)
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            return key, f"must be a positive integer, got {v!r}"
    for block, items in (("detection", "instances"), ("grounding", "regions")):
        if block in rec:
            value = rec[block]
            if not isinstance(value, dict):
                return block, f"must be an object, got {type(value).__name__}"
            if not isinstance(value.get(items, []), list):
                return f"{block}.{items}", f"must be a list, got {type(value[items]).__name__}"
    if "grounding" in rec and not isinstance(rec["grounding"].get("caption"), str):
        return "grounding.caption", f"must be a string, got {rec['grounding'].get('caption')!r}"
    return None


def span_problem(caption: Any, spans: Any) -> str | None:
    """Why ``tokens_positive`` does not index ``caption`` (None when it does)."""
    if not isinstance(spans, list):
        return f"must be a list of [start, end] pairs, got {spans!r}"
    n = len(caption) if isinstance(caption, str) else 0
    for span in spans:
        if not (isinstance(span, list) and len(span) == 2 and all(type(v) is int for v in span)):
            return f"not a [start, end] pair of integers: {span!r}"
        if not 0 <= span[0] < span[1] <= n:
            return f"span {span} is outside the caption (length {n})"
    return None


class _RefImage(msgspec.Struct, gc=False):
    id: Int64
    file_name: str | None = None
    coco_url: str | None = None  # LVIS names its images by URL


class _RefCategory(msgspec.Struct, gc=False):
    id: Int64
    name: str


def reference_ids(path: str | Path) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """``--reference ORIGINAL.json``: image ids by file name (and by base name, when unique) and
    category ids by name, so an export lines up with the original COCO json (evaluation, predictions).
    """
    from odvgkit.convert.lvis import lvis_filename
    from odvgkit.io.jsonstream import stream_members

    by_name: dict[str, int] = {}
    by_base: dict[str, int | None] = {}
    cats: dict[str, int] = {}
    seen: set[str] = set()
    for key, _, items in stream_members(path, {"images": _RefImage, "categories": _RefCategory}):
        seen.add(key)
        if key == "images":
            for im in items:
                name = lvis_filename(im)  # type: ignore[arg-type]
                if not name:
                    continue
                by_name.setdefault(name, im.id)
                base = name.rsplit("/", 1)[-1]
                by_base[base] = None if base in by_base and by_base[base] != im.id else im.id
        else:
            for c in items:
                cats.setdefault(c.name, c.id)
    if "images" not in seen:
        raise OdvgError(f"{path}: missing top-level key 'images' (--reference must be a COCO json)")
    return by_name, {k: v for k, v in by_base.items() if v is not None}, cats


def export_coco(
    path: str | Path,
    output: str | Path,
    *,
    label_map: dict[str, str] | None = None,
    category_ids: str = "label+1",
    reference: str | Path | None = None,
    problems: ProblemLog | None = None,
    on_record: Callable[[int], None] | None = None,
) -> Counter[str]:
    """Write ``output`` (a COCO json) from the ODVG file ``path``; returns counts.

    Image ids: a record's own integer ``image_id`` field when it has one, else the id of its file
    name in ``reference`` (the original COCO json), else the record's position (1..N). VG records
    (several captions per image) follow MDETR's layout instead: ``id`` is the position and the
    source id, when known, goes into ``original_id``. Category ids
    come from ``reference`` by name when given. Each bad line is reported once (the input is read
    twice, the second pass silently skips what the first reported).
    """
    path, output = Path(path), Path(output)
    check_distinct(output, [path])
    problems = problems if problems is not None else ProblemLog()
    stats: Counter[str] = Counter()
    if category_ids not in ("label+1", "coco80"):
        raise OdvgError(f"--category-ids {category_ids!r}: choose label+1 or coco80")
    ref_images: dict[str, int] = {}
    ref_bases: dict[str, int] = {}
    ref_cats: dict[str, int] | None = None
    if reference is not None:
        check_distinct(output, [reference])
        ref_images, ref_bases, ref_cats = reference_ids(reference)
    lm: dict[str, str] = dict(label_map or {})
    phrases: dict[str, int] = {}  # VG: phrase → category id
    kinds: Counter[str] = Counter()

    def cat_id(label: int) -> int:
        if ref_cats is not None:
            name = lm.get(str(label))
            if name not in ref_cats:
                raise OdvgError(f"{reference}: categories: no category named {name!r} (label {label})")
            return ref_cats[name]
        if category_ids == "coco80":
            if not 0 <= label < 80:
                raise OdvgError(f"{path}: label {label}: --category-ids coco80 needs labels 0..79")
            return COCO80_IDS[label]
        return label + 1

    def image_id_of(rec: dict[str, Any], position: int) -> int | None:
        own = rec.get("image_id")
        if type(own) is int and 0 <= own <= INT64_MAX:
            return own
        if reference is not None:
            name = rec["filename"]
            return ref_images.get(name, ref_bases.get(name.rsplit("/", 1)[-1]))
        return position

    ids = array("q")  # the image id of each record read (_SKIP: not exported); pass 2 reuses them
    with atomic_path(output) as tmp, open(tmp, "wb") as fh:
        doc = JsonDocWriter(fh)
        doc.value("info", {"description": f"exported by odvgkit from {path.name}"})
        doc.begin_array("images")
        used: dict[int, int] = {}
        for line, rec in read_records(path, problems):
            bad = image_problem(rec)
            if bad is not None:
                problems.error("bad-image", path, line, bad[0], bad[1])
                ids.append(_SKIP)
                continue
            image_id = image_id_of(rec, len(ids) + 1)
            if image_id is None:
                problems.error("not-in-reference", path, line, "filename",
                               f"{rec['filename']!r} is not an image of {reference}")
                ids.append(_SKIP)
                continue
            kind = kind_of(rec)
            original_id = None
            if kind == "vg":  # MDETR layout: one image entry per caption, the source id as original_id
                known = type(rec.get("image_id")) is int or reference is not None
                original_id, image_id = (image_id if known else None), len(ids) + 1
            if image_id in used:
                problems.error("duplicate-image-id", path, line, "image_id",
                               f"image id {image_id} already used by line {used[image_id]}")
                ids.append(_SKIP)
                continue
            used[image_id] = line
            ids.append(image_id)
            kinds[kind] += 1
            img: dict[str, Any] = {"id": image_id, "file_name": rec["filename"],
                                   "height": rec["height"], "width": rec["width"]}
            if kind == "vg":
                img["caption"] = rec["grounding"].get("caption", "")
                if original_id is not None:
                    img["original_id"] = original_id
            for key in ("neg_category_ids", "not_exhaustive_category_ids"):
                if isinstance(rec.get(key), list):
                    img[key] = [cat_id(v) for v in rec[key]]
            doc.item(img)
            stats["images"] += 1
            if on_record is not None:
                on_record(1)
        del used
        if kinds["od"] and kinds["vg"]:
            raise OdvgError(f"{path}: mixes detection and grounding records; export them separately")
        doc.begin_array("annotations")
        ann_id = 0
        for k_rec, (line, rec) in enumerate(read_records(path, ProblemLog())):  # bad lines: reported above
            image_id = ids[k_rec]
            if image_id == _SKIP:
                continue
            if "grounding" in rec:
                caption = rec["grounding"].get("caption")
                for r, region in enumerate(rec["grounding"].get("regions") or []):
                    if not isinstance(region, dict):
                        problems.error("bad-region", path, line, f"grounding.regions[{r}]", "must be an object")
                        continue
                    spans = region.get("tokens_positive", [])
                    why = span_problem(caption, spans)
                    if why is not None:
                        problems.error("bad-span", path, line, f"grounding.regions[{r}].tokens_positive", why)
                        continue
                    phrase = region.get("phrase", "")
                    name = " ".join(map(str, phrase)) if isinstance(phrase, list) else str(phrase)
                    cid = phrases.setdefault(name, len(phrases) + 1)
                    for box in region_boxes(region):
                        if not box_is_finite(box):
                            problems.error("bad-bbox", path, line, f"grounding.regions[{r}].bbox", f"not 4 numbers: {box!r}")
                            continue
                        ann_id += 1
                        xywh = to_xywh(box)
                        doc.item({"id": ann_id, "image_id": image_id, "category_id": cid, "bbox": xywh,
                                  "area": xywh[2] * xywh[3], "iscrowd": 0, "tokens_positive": spans})
                        stats["annotations"] += 1
                continue
            for k, inst in enumerate((rec.get("detection") or {}).get("instances") or []):
                box, label = (inst.get("bbox"), inst.get("label")) if isinstance(inst, dict) else (None, None)
                if not box_is_finite(box) or type(label) is not int or label < 0:
                    problems.error("bad-instance", path, line, f"detection.instances[{k}]",
                                   "needs a 4-number bbox and a label >= 0")
                    continue
                if str(label) not in lm:
                    if label_map is not None:
                        problems.error("unknown-label", path, line, f"detection.instances[{k}].label",
                                       f"label {label} is not in the label map")
                        continue
                    lm[str(label)] = str(inst.get("category") or label)
                ann_id += 1
                xywh = to_xywh(box)
                ann = {"id": ann_id, "image_id": image_id, "category_id": cat_id(label), "bbox": xywh,
                       "area": xywh[2] * xywh[3], "iscrowd": 0}
                ann.update((key, v) for key, v in inst.items() if key not in _INSTANCE_CORE)
                doc.item(ann)
                stats["annotations"] += 1
        doc.begin_array("categories")
        if kinds["vg"]:
            doc.items({"id": cid, "name": name} for name, cid in phrases.items())
            stats["categories"] = len(phrases)
        else:
            for key in sorted(lm, key=int):
                doc.item({"id": cat_id(int(key)), "name": lm[key]})
            stats["categories"] = len(lm)
        doc.close()
    return stats
