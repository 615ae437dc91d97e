"""ODVG ⇄ FiftyOne: load records into a persistent dataset, and write a (reviewed) dataset back.

Loading (:func:`load_dataset`) makes one sample per record whose image exists:

=========================  =====================================================================
sample field               content
=========================  =====================================================================
``filepath``               ``images_root / filename`` (absolute)
``metadata``               width and height from the record (the App needs no image probe)
``ground_truth``           ``Detections``: ``label`` (class name for OD, phrase for VG),
                           relative ``bounding_box``, ``confidence`` (= ``score``), and per detection
                           ``phrase`` + ``tokens_positive`` (VG), ``odvg_label`` (OD), and the
                           bookkeeping ``odvg_item`` / ``odvg_box`` / ``odvg_bbox`` that lets export
                           put each box back where it came from with its exact original numbers
``caption``                the VG caption (``None`` for OD)
``filename``               the record's ``filename``
``odvg_kind``              ``od`` / ``vg`` / ``none``
``odvg_source``            the records file (absolute path) and ``odvg_line`` its 1-based line
``odvg_record``            the original record as JSON: every field FiftyOne does not show survives
=========================  =====================================================================

Exporting (:func:`export_dataset`) rebuilds each record from ``odvg_record`` and the detections
now in the dataset, in (source, line) order. Review rule:

* a sample tagged ``reject`` is left out; a detection tagged ``reject`` is left out;
* a deleted detection or sample is left out; a VG region whose boxes are all gone is left out;
* an unchanged box keeps its original numbers byte for byte; a moved box is written in absolute
  xyxy from the relative box (float arithmetic, within 1e-6 px of the App's value);
* a detection's ``confidence`` is written back as ``score`` (and removed if cleared);
* what FiftyOne could not show (an OD instance or a whole VG region without a usable box) is
  written back as it was, in place;
* OD: a relabelled detection gets the label id of its new name in the dataset's label map;
* VG: ``phrase`` and ``tokens_positive`` attributes are written back; a new detection (added in
  FiftyOne) becomes a new region, its span found in the caption when it has none.

FiftyOne is imported inside the functions (``import fiftyone`` takes ≈5 s).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from odvgkit.browse.scene import label_name
from odvgkit.errors import OdvgError, ProblemLog, require
from odvgkit.io import read_records, record_writer
from odvgkit.io.atomic import AtomicGroup
from odvgkit.records import items_of, kind_of, region_boxes

FIELD = "ground_truth"
REJECT = "reject"
INFO_KEY = "odvg"
Record = dict[str, Any]



def _items(record: Record, block: str, key: str) -> list[Any]:
    """``record[block][key]`` as a list ([] when either has another JSON type: reported, not a crash)."""
    value = record.get(block)
    return items_of(value.get(key)) if isinstance(value, dict) else []

def _fo() -> Any:
    return require("fiftyone", "browse")


def dataset_name_for(path: Path) -> str:
    """A default dataset name: the file name without its record extensions."""
    name = path.name
    for suffix in (".gz", ".jsonl", ".json", ".parquet"):
        name = name.removesuffix(suffix)
    return name or "odvg"


# ---------------------------------------------------------------- records → samples (pure parts)


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def relative_box(box: Any, width: int, height: int) -> list[float] | None:
    """Absolute xyxy → FiftyOne's relative ``[x, y, w, h]``; ``None`` for a malformed box."""
    if not (isinstance(box, list) and len(box) == 4 and all(_number(v) for v in box)):
        return None
    x1, y1, x2, y2 = box
    return [x1 / width, y1 / height, (x2 - x1) / width, (y2 - y1) / height]


def absolute_box(rel: list[float], width: int, height: int) -> list[float]:
    x, y, w, h = rel
    return [x * width, y * height, (x + w) * width, (y + h) * height]


def _phrase_label(phrase: Any) -> str:
    return " // ".join(map(str, phrase)) if isinstance(phrase, list) else str(phrase)


def detection_dicts(
    record: Mapping[str, Any], label_map: Mapping[str, str] | None
) -> tuple[list[dict[str, Any]], list[str]]:
    """The detections of one record as plain keyword dicts for ``fo.Detection`` (+ problems)."""
    w, h = record["width"], record["height"]
    dets: list[dict[str, Any]] = []
    bad: list[str] = []
    kind = kind_of(dict(record))
    if kind == "od":
        for i, inst in enumerate(_items(record, "detection", "instances")):
            rel = relative_box(inst.get("bbox"), w, h) if isinstance(inst, dict) else None
            if rel is None:
                bad.append(f"detection.instances[{i}].bbox: not 4 finite numbers; not loaded")
                continue
            det: dict[str, Any] = {
                "label": label_name(inst, label_map),
                "bounding_box": rel,
                "odvg_label": inst["label"] if _int(inst.get("label")) else None,
                "odvg_item": i,
                "odvg_bbox": inst["bbox"],
            }
            if _number(inst.get("score")):
                det["confidence"] = float(inst["score"])
            dets.append(det)
    elif kind == "vg":
        for r, region in enumerate(_items(record, "grounding", "regions")):
            if not isinstance(region, dict):
                bad.append(f"grounding.regions[{r}]: not an object; not loaded")
                continue
            scores = region.get("score")
            for b, box in enumerate(region_boxes(region)):
                rel = relative_box(box, w, h)
                if rel is None:
                    bad.append(f"grounding.regions[{r}].bbox[{b}]: not 4 finite numbers; not loaded")
                    continue
                det = {
                    "label": _phrase_label(region.get("phrase")),
                    "bounding_box": rel,
                    "phrase": _phrase_label(region.get("phrase")),
                    "tokens_positive": spans if isinstance(spans := region.get("tokens_positive"), list) else None,
                    "odvg_item": r,
                    "odvg_box": b,
                    "odvg_bbox": box,
                }
                score = scores[b] if isinstance(scores, list) and b < len(scores) else scores
                if _number(score):
                    det["confidence"] = float(score)
                dets.append(det)
    return dets, bad


def _size_ok(record: Mapping[str, Any]) -> bool:
    return all(isinstance(record.get(k), int) and not isinstance(record.get(k), bool) and record[k] > 0
               for k in ("width", "height"))


# ---------------------------------------------------------------- load


@dataclass
class LoadStats:
    name: str
    records_read: int = 0
    samples: int = 0
    detections: int = 0
    od: int = 0
    vg: int = 0
    images_missing: int = 0
    skipped: int = 0  # records without a usable filename/width/height
    label_map: dict[str, str] = field(default_factory=dict)


def dataset_exists(name: str) -> bool:
    return bool(_fo().dataset_exists(name))


def load_dataset(
    records_path: str | Path,
    images_root: str | Path,
    name: str | None = None,
    *,
    label_map: Mapping[str, str] | None = None,
    overwrite: bool = False,
    problems: ProblemLog | None = None,
    advance: Callable[[int], None] | None = None,
    batch_size: int = 1000,
    limit: int | None = None,
) -> LoadStats:
    """Load an ODVG file into a persistent FiftyOne dataset ``name`` (see the module docstring).

    Records whose image is missing under ``images_root`` are reported (``image-missing``), counted
    and not loaded; everything else loads. Raises :class:`OdvgError` if the dataset exists and
    ``overwrite`` is false. ``limit`` loads only the first ``limit`` records (FiftyOne inserts
    ≈100 samples/s on 2 cores, so review a sample of a large file). The database must be
    reachable (see :func:`odvgkit.browse.app.database`).
    """
    fo = _fo()
    src = Path(records_path).resolve()
    root = Path(images_root).resolve()
    if not root.is_dir():
        raise OdvgError(f"{images_root}: images root is not a directory")
    name = name or dataset_name_for(src)
    problems = problems if problems is not None else ProblemLog()
    records = read_records(src, problems)  # opens the file now: a missing input fails before the dataset
    if fo.dataset_exists(name) and not overwrite:
        raise OdvgError(f"FiftyOne dataset {name!r} exists; pass --overwrite to reload it, or open it with --name {name} alone")
    stats = LoadStats(name=name)
    names: dict[str, str] = dict(label_map or {})
    dataset = fo.Dataset(name, overwrite=overwrite, persistent=True)
    try:
        _declare_fields(fo, dataset)
        batch: list[Any] = []
        for line, record in records:
            if limit is not None and stats.records_read >= limit:
                break
            stats.records_read += 1
            sample = _sample(fo, src, root, line, record, label_map, names, stats, problems)
            if sample is not None:
                batch.append(sample)
            if len(batch) >= batch_size:
                dataset.add_samples(batch, expand_schema=False, validate=False, progress=False)
                batch.clear()
            if advance is not None:
                advance(1)
        if batch:
            dataset.add_samples(batch, expand_schema=False, validate=False, progress=False)
        stats.label_map = {k: names[k] for k in sorted(names, key=_int_key)}
        dataset.info[INFO_KEY] = {
            "source": str(src),
            "images_root": str(root),
            "label_map": stats.label_map,
            "label_map_given": dict(label_map) if label_map is not None else None,
            "records_read": stats.records_read,
            "not_loaded": stats.images_missing + stats.skipped,
        }
        with contextlib.suppress(Exception):  # cosmetic: one colour per class/phrase, as `browse render` does
            dataset.app_config.color_scheme = fo.ColorScheme(color_by="value")
        dataset.save()
    except BaseException:
        dataset.delete()  # never leave a half-loaded dataset behind
        raise
    return stats


def _declare_fields(fo: Any, dataset: Any) -> None:
    """Declare every field up front: inference would type ``tokens_positive`` (a list of spans)
    and ``odvg_bbox`` (ints in one record, floats in the next) from whichever sample came first."""
    for name, kind in (("filename", fo.StringField), ("caption", fo.StringField), ("odvg_kind", fo.StringField),
                       ("odvg_source", fo.StringField), ("odvg_line", fo.IntField), ("odvg_record", fo.StringField)):
        dataset.add_sample_field(name, kind)
    dataset.add_sample_field(FIELD, fo.EmbeddedDocumentField, embedded_doc_type=fo.Detections)
    for name, kind in (("phrase", fo.StringField), ("tokens_positive", fo.ListField), ("odvg_label", fo.IntField),
                       ("odvg_item", fo.IntField), ("odvg_box", fo.IntField), ("odvg_bbox", fo.ListField)):
        dataset.add_sample_field(f"{FIELD}.detections.{name}", kind)


def _int_key(k: str) -> tuple[int, str]:
    return (int(k), "") if k.isdigit() else (1 << 62, k)


def _sample(
    fo: Any,
    src: Path,
    root: Path,
    line: int,
    record: Record,
    label_map: Mapping[str, str] | None,
    names: dict[str, str],
    stats: LoadStats,
    problems: ProblemLog,
) -> Any:
    filename = record.get("filename")
    if not isinstance(filename, str) or not filename or not _size_ok(record):
        stats.skipped += 1
        problems.error("bad-record", src, line, "filename/width/height",
                       "needs a filename and positive integer width and height; not loaded")
        return None
    path = root / filename
    if not path.is_file():
        stats.images_missing += 1
        problems.warn("image-missing", src, line, "filename", f"{path}: image not found; not loaded")
        return None
    dets, bad = detection_dicts(record, label_map)
    for msg in bad:
        problems.warn("bad-box", src, line, None, msg)
    kind = kind_of(record)
    stats.od += kind == "od"
    stats.vg += kind == "vg"
    stats.detections += len(dets)
    stats.samples += 1
    for det in dets:
        if "odvg_label" in det and isinstance(det["odvg_label"], int):
            names.setdefault(str(det["odvg_label"]), det["label"])
    caption = (record.get("grounding") or {}).get("caption") if kind == "vg" else None
    return fo.Sample(
        filepath=str(path),
        metadata=fo.ImageMetadata(width=record["width"], height=record["height"]),
        filename=filename,
        caption=caption if isinstance(caption, str) else None,
        odvg_kind=kind,
        odvg_source=str(src),
        odvg_line=line,
        odvg_record=orjson.dumps(record).decode(),
        **{FIELD: fo.Detections(detections=[fo.Detection(**d) for d in dets])},
    )


# ---------------------------------------------------------------- dataset → records


@dataclass
class ExportStats:
    name: str
    samples: int = 0
    written: int = 0
    rejected_samples: int = 0
    rejected_detections: int = 0
    boxes_written: int = 0
    boxes_moved: int = 0
    not_loaded: int = 0  # records of the source that never made it into the dataset
    foreign_samples: int = 0  # samples not loaded by odvgkit (no odvg_record): not exported


def _same_box(abs_box: list[float], original: Any) -> bool:
    return (isinstance(original, list) and len(original) == 4 and all(_number(v) for v in original)
            and all(abs(a - float(o)) <= 1e-6 * max(1.0, abs(float(o))) for a, o in zip(abs_box, original, strict=True)))


@dataclass(frozen=True)
class Det:
    """The parts of a FiftyOne detection that export reads (plain values, testable without FiftyOne)."""

    label: str | None
    bounding_box: list[float]
    confidence: float | None
    tags: tuple[str, ...]
    attrs: Mapping[str, Any]


def _box_of(det: Det, w: int, h: int, stats: ExportStats) -> list[float]:
    computed = absolute_box(det.bounding_box, w, h)
    original = det.attrs.get("odvg_bbox")
    if _same_box(computed, original):
        return list(original)
    stats.boxes_moved += 1
    return computed


def _set_score(target: dict[str, Any], confidence: float | None, had: bool) -> None:
    if confidence is not None and _number(confidence):
        target["score"] = confidence
    elif had:
        target.pop("score", None)


@dataclass(frozen=True)
class Names:
    """OD label names at export: the label map given at load (if any) and name → id."""

    given: Mapping[str, str] | None
    ids: Mapping[str, int]


def rebuild_record(
    record: Record,
    dets: list[Det],
    names: Names,
    stats: ExportStats,
    problems: ProblemLog,
    where: tuple[str, int],
) -> Record:
    """The record as the reviewed detections say it now is (see the module docstring's rule)."""
    kept = [d for d in dets if REJECT not in d.tags]
    stats.rejected_detections += len(dets) - len(kept)
    kind = kind_of(record)
    w, h = record["width"], record["height"]
    out = dict(record)
    if kind == "od":
        out["detection"] = {**(record.get("detection") or {}), "instances": _od_instances(record, kept, names, w, h, stats, problems, where)}
    elif kind == "vg":
        out["grounding"] = {**(record.get("grounding") or {}), "regions": _vg_regions(record, kept, w, h, stats, problems, where)}
    elif kept:
        problems.warn("detections-dropped", where[0], where[1], None,
                      f"{len(kept)} detection(s) on a record without detection/grounding block not exported")
    return out


def _order(d: Det) -> tuple[int, int, int]:
    item = d.attrs.get("odvg_item")
    box = d.attrs.get("odvg_box")
    if isinstance(item, int):
        return (0, item, box if isinstance(box, int) else 0)
    return (1, 0, 0)  # new detections after the original ones, in dataset order (sort is stable)


def _od_instances(
    record: Record, dets: list[Det], names: Names, w: int, h: int,
    stats: ExportStats, problems: ProblemLog, where: tuple[str, int],
) -> list[dict[str, Any]]:
    originals = _items(record, "detection", "instances")
    # instances that could not be shown (malformed box) were never in FiftyOne: keep them in place
    out: list[tuple[tuple[int, int], dict[str, Any]]] = [
        ((i, 0), inst) for i, inst in enumerate(originals) if not _loadable(inst, w, h)]
    for n, det in enumerate(sorted(dets, key=_order)):
        item = det.attrs.get("odvg_item")
        orig = originals[item] if isinstance(item, int) and 0 <= item < len(originals) else None
        if isinstance(orig, dict) and det.label == label_name(orig, names.given):
            inst = dict(orig)  # label unchanged: keep id and category as they were
        elif det.label in names.ids:
            inst = dict(orig) if isinstance(orig, dict) else {}
            inst["label"] = names.ids[det.label]
            if "category" in inst or orig is None:
                inst["category"] = det.label
        else:
            problems.error("unknown-label", where[0], where[1], "label",
                           f"detection label {det.label!r} is not in the dataset's label map; not exported")
            continue
        inst["bbox"] = _box_of(det, w, h, stats)
        if orig is None:
            inst = {"bbox": inst["bbox"], "label": inst["label"], "category": inst["category"]}
        _set_score(inst, det.confidence, "score" in inst)
        out.append(((item, 0) if orig is not None else (len(originals), n), inst))  # type: ignore[arg-type]
        stats.boxes_written += 1
    return [inst for _, inst in sorted(out, key=lambda pair: pair[0])]


def _loadable(inst: Any, w: int, h: int) -> bool:
    return isinstance(inst, dict) and relative_box(inst.get("bbox"), w, h) is not None


def _vg_regions(
    record: Record, dets: list[Det], w: int, h: int, stats: ExportStats, problems: ProblemLog, where: tuple[str, int]
) -> list[dict[str, Any]]:
    grounding = record.get("grounding") or {}
    originals = grounding.get("regions") or []
    caption = grounding.get("caption") if isinstance(grounding.get("caption"), str) else ""
    groups: dict[int, list[Det]] = {}
    new: list[Det] = []
    for det in sorted(dets, key=_order):
        item = det.attrs.get("odvg_item")
        if isinstance(item, int) and 0 <= item < len(originals):
            groups.setdefault(item, []).append(det)
        else:
            new.append(det)
    out: list[tuple[int, dict[str, Any]]] = [
        (r, region) for r, region in enumerate(originals)  # never shown (no usable box): kept in place
        if not (isinstance(region, dict) and any(relative_box(b, w, h) for b in region_boxes(region)))]
    for r in sorted(groups):
        orig = originals[r]
        group = groups[r]
        if not all(relative_box(b, w, h) for b in region_boxes(orig)):
            problems.warn("bad-box-dropped", where[0], where[1], f"grounding.regions[{r}].bbox",
                          "a malformed box of this region was not loaded and is not exported")
        region = dict(orig)
        boxes = [_box_of(d, w, h, stats) for d in group]
        flat = not (orig.get("bbox") and isinstance(orig["bbox"][0], list))
        region["bbox"] = boxes[0] if flat and len(boxes) == 1 else boxes
        first = group[0].attrs
        if isinstance(first.get("phrase"), str) and first["phrase"] != _phrase_label(orig.get("phrase")):
            region["phrase"] = first["phrase"]  # edited in FiftyOne (a list phrase is shown joined by " // ")
        if "tokens_positive" in first and first["tokens_positive"] is not None:
            region["tokens_positive"] = first["tokens_positive"]
        confs = [d.confidence for d in group]
        if "score" in orig or any(c is not None for c in confs):
            if isinstance(orig.get("score"), list) or (len(group) > 1 and "score" not in orig):
                region["score"] = [c for c in confs if c is not None]
            else:
                _set_score(region, confs[0], "score" in orig)
        out.append((r, region))
        stats.boxes_written += len(boxes)
    for det in new:
        phrase = det.attrs.get("phrase") or det.label or ""
        spans = det.attrs.get("tokens_positive")
        if not spans:
            at = caption.lower().find(str(phrase).lower()) if phrase else -1
            if at < 0:
                problems.error("phrase-not-in-caption", where[0], where[1], "phrase",
                               f"new detection {phrase!r} has no tokens_positive and is not in the caption; not exported")
                continue
            spans = [[at, at + len(str(phrase))]]
        region = {"bbox": absolute_box(det.bounding_box, w, h), "phrase": phrase, "tokens_positive": spans}
        _set_score(region, det.confidence, False)
        stats.boxes_written += 1
        stats.boxes_moved += 1
        out.append((len(originals), region))
    return [region for _, region in sorted(out, key=lambda pair: pair[0])]


_BOOKKEEPING = ("odvg_label", "odvg_item", "odvg_box", "odvg_bbox", "phrase", "tokens_positive")


def _det_of(d: Any) -> Det:
    attrs = {k: d[k] for k in _BOOKKEEPING if d.has_field(k)}
    return Det(
        label=d.label,
        bounding_box=list(d.bounding_box or [0.0, 0.0, 0.0, 0.0]),
        confidence=d.confidence,
        tags=tuple(d.tags or ()),
        attrs=attrs,
    )


def iter_export(name: str, problems: ProblemLog, stats: ExportStats) -> Iterator[Record]:
    """The records of dataset ``name`` after review, in (source file, line) order."""
    fo = _fo()
    if not fo.dataset_exists(name):
        known = ", ".join(sorted(fo.list_datasets())[:10]) or "none"
        raise OdvgError(f"no FiftyOne dataset named {name!r} (datasets: {known})")
    dataset = fo.load_dataset(name)
    info = dataset.info.get(INFO_KEY) or {}
    names = Names(info.get("label_map_given"), _label_ids(info.get("label_map") or {}))
    stats.not_loaded = int(info.get("not_loaded") or 0)
    schema = dataset.get_field_schema()
    if "odvg_record" not in schema:
        raise OdvgError(f"FiftyOne dataset {name!r} was not loaded by odvgkit (no odvg_record field); nothing to export")
    view = dataset.sort_by([("odvg_source", 1), ("odvg_line", 1)]) if "odvg_source" in schema else dataset
    has_field = FIELD in schema
    for sample in view.iter_samples(batch_size=1000):
        stats.samples += 1
        raw = sample["odvg_record"]
        if not raw:
            stats.foreign_samples += 1
            continue
        if REJECT in (sample.tags or []):
            stats.rejected_samples += 1
            continue
        record = orjson.loads(raw)
        labels = sample[FIELD] if has_field else None
        dets = [_det_of(d) for d in (labels.detections if labels is not None else [])]
        where = (str(sample["odvg_source"]), int(sample["odvg_line"]))
        yield rebuild_record(record, dets, names, stats, problems, where)
        stats.written += 1


def _label_ids(label_map: Mapping[str, str]) -> dict[str, int]:
    """Name → first label id with that name (ids are the map's integer keys)."""
    out: dict[str, int] = {}
    for key in sorted(label_map, key=_int_key):
        if key.isdigit():
            out.setdefault(label_map[key], int(key))
    return out


def export_dataset(name: str, out_path: str | Path, problems: ProblemLog | None = None) -> ExportStats:
    """Write dataset ``name`` back to ODVG records at ``out_path`` (atomically)."""
    problems = problems if problems is not None else ProblemLog()
    stats = ExportStats(name=name)
    with AtomicGroup() as group, record_writer(group, out_path) as writer:
        for record in iter_export(name, problems, stats):
            writer.write(record)
    return stats
