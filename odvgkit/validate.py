"""``odvgkit validate``: everything that would make MMDetection or Open-GroundingDino misread a file.

The loaders do not complain — ``ODVGDataset`` silently drops boxes that are inverted, under one
pixel or outside the image, crashes on a blank line, and shifts every ``tokens_positive`` span of a
caption with leading whitespace (it strips the caption). This module finds those cases before a
training run does, one :class:`~odvgkit.errors.Problem` per finding.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from odvgkit.errors import ProblemLog
from odvgkit.images import image_sizes
from odvgkit.io import read_records
from odvgkit.records import Record, kind_of, region_boxes

_PER_RECORD_SCHEMA_ERRORS = 3


@dataclass
class ValidationSummary:
    records: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    boxes: int = 0
    regions: int = 0
    images_checked: int = 0

    def rows(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "od_records": self.kinds["od"],
            "vg_records": self.kinds["vg"],
            "records_without_annotations_block": self.kinds["none"],
            "boxes": self.boxes,
            "regions": self.regions,
            "images_checked": self.images_checked,
        }


def check_label_map(label_map: dict[str, str], path: str | Path, problems: ProblemLog) -> None:
    """Keys must be "0".."N-1" (ODVGDataset and OGD index names by ``str(label)``)."""
    keys = list(label_map)
    numeric = [k for k in keys if k.isdigit() and (k == "0" or not k.startswith("0"))]
    for k in keys:
        if k not in numeric:
            problems.error("label-map-key", path, None, f'"{k}"', "label-map keys must be decimal integers")
    ints = sorted(int(k) for k in numeric)
    if ints != list(range(len(ints))):
        missing = sorted(set(range(max(ints) + 1 if ints else 0)) - set(ints))[:5]
        problems.error(
            "label-map-not-contiguous", path, None, None,
            f"label-map keys must run from \"0\" without gaps; missing {', '.join(map(str, missing))}"
            + (" …" if len(missing) == 5 else ""),
        )
    for k, name in label_map.items():
        if not name.strip():
            problems.error("label-map-empty-name", path, None, f'"{k}"', "empty class name")


def _schema_problems(exc: ValidationError, path: str, line: int, problems: ProblemLog) -> None:
    reported: set[tuple[Any, ...]] = set()
    for err in exc.errors():
        loc = err["loc"]
        # a union reports one error per alternative, with the alternative's type as a loc element
        cut = next((i for i, part in enumerate(loc) if isinstance(part, str) and not part.isidentifier()), None)
        key = loc[:cut] if cut is not None else loc
        if key in reported:
            continue
        reported.add(key)
        if len(reported) > _PER_RECORD_SCHEMA_ERRORS:
            break
        message = err["msg"][0].lower() + err["msg"][1:]
        if cut is not None and key and key[-1] == "bbox":
            message = "must be one box [x1, y1, x2, y2] or a list of such boxes"
        problems.error("schema", path, line, _dotted(key), message)


def _dotted(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(record)"


def _check_box(
    box: list[float], height: int, width: int, where: str, path: str, line: int, problems: ProblemLog
) -> None:
    x1, y1, x2, y2 = box
    if x2 <= x1 or y2 <= y1:
        problems.error("box-degenerate", path, line, where, f"x2 > x1 and y2 > y1 required, got {box}")
        return
    if x2 - x1 < 1 or y2 - y1 < 1:
        problems.error("box-under-1px", path, line, where, f"box smaller than 1 px is dropped by ODVGDataset: {box}")
        return
    inter_w = max(0.0, min(x2, width) - max(x1, 0.0))
    inter_h = max(0.0, min(y2, height) - max(y1, 0.0))
    if inter_w * inter_h == 0:
        problems.error("box-outside-image", path, line, where, f"box does not overlap the {width}x{height} image: {box}")
    elif x1 < 0 or y1 < 0 or x2 > width or y2 > height:
        problems.warn("box-exceeds-image", path, line, where, f"box extends past the {width}x{height} image (not clipped by loaders): {box}")


def _check_grounding(rec: dict[str, Any], path: str, line: int, problems: ProblemLog, summary: ValidationSummary) -> None:
    g = rec["grounding"]
    caption: str = g["caption"]
    n = len(caption)
    if caption != caption.lstrip():
        problems.warn("caption-leading-space", path, line, "grounding.caption",
                      "leading whitespace: mmdet strips the caption, shifting every tokens_positive span")
    if len(caption.lower()) != n:
        problems.warn("caption-lower-length", path, line, "grounding.caption",
                      "lower-casing changes the caption length, shifting tokens_positive spans in mmdet")
    for r, region in enumerate(g["regions"]):
        summary.regions += 1
        where = f"grounding.regions[{r}]"
        for b, box in enumerate(region_boxes(region)):
            summary.boxes += 1
            _check_box(box, rec["height"], rec["width"], f"{where}.bbox" + (f"[{b}]" if isinstance(region["bbox"][0], list) else ""), path, line, problems)
        spans = region["tokens_positive"]
        if not spans:
            problems.error("tokens-positive-empty", path, line, f"{where}.tokens_positive", "no span: the phrase is never matched to the caption")
            continue
        bad = [s for s in spans if not (0 <= s[0] < s[1] <= n)]
        if bad:
            problems.error("tokens-positive-range", path, line, f"{where}.tokens_positive",
                           f"span {bad[0]} outside the caption (length {n}) or empty")
            continue
        phrase = region["phrase"]
        phrase_text = " ".join(phrase) if isinstance(phrase, list) else phrase
        pieces = " ".join(caption[s:e] for s, e in spans)
        whole = caption[min(s for s, _ in spans): max(e for _, e in spans)]
        if phrase_text not in (pieces, whole) and phrase_text.strip().lower() not in (pieces.lower(), whole.lower()):
            problems.warn("phrase-span-mismatch", path, line, f"{where}.phrase",
                          f"phrase {phrase_text!r} differs from its caption span {pieces!r}")


def validate_records(
    records: Iterable[tuple[int, dict[str, Any]]],
    path: str | Path,
    problems: ProblemLog,
    summary: ValidationSummary,
    label_map: dict[str, str] | None = None,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Check each record; yields the schema-valid ones (for the image check) as it goes."""
    path = str(path)
    names = label_map or {}
    od_filenames: dict[str, int] = {}
    vg_pairs: set[tuple[str, str]] = set()
    for line, rec in records:
        summary.records += 1
        kind = kind_of(rec)
        summary.kinds[kind] += 1
        null = next((k for k in ("detection", "grounding") if k in rec and rec[k] is None), None)
        if null is not None:  # ODVGDataset calls .get / [] on it: a crash at training time
            problems.error("null-block", path, line, null, "null (ODVGDataset fails on it); omit the key or give an object")
            continue
        try:
            Record.model_validate(rec)
        except ValidationError as exc:
            _schema_problems(exc, path, line, problems)
            continue
        if kind == "none":
            problems.warn("no-annotations-block", path, line, None,
                          "record has neither 'detection' nor 'grounding' (loaded as an image without boxes)")
        if kind == "od":
            first = od_filenames.setdefault(rec["filename"], line)
            if first != line:
                problems.warn("duplicate-filename", path, line, "filename", f"{rec['filename']!r} already at line {first}")
            for i, inst in enumerate(rec["detection"].get("instances", [])):
                summary.boxes += 1
                where = f"detection.instances[{i}]"
                _check_box(inst["bbox"], rec["height"], rec["width"], f"{where}.bbox", path, line, problems)
                if label_map is not None:
                    name = names.get(str(inst["label"]))
                    if name is None:
                        problems.error("label-not-in-map", path, line, f"{where}.label", f"label {inst['label']} is not a key of the label map")
                    elif inst.get("category") is not None and inst["category"] != name:
                        # an error, not a warning: the records were written against another label
                        # space (e.g. a label map replaced by a later conversion), so every box of
                        # that class would train under the wrong name
                        problems.error("category-mismatch", path, line, f"{where}.category",
                                       f"{inst['category']!r} but the label map says {name!r} (records and label map disagree)")
        elif kind == "vg":
            pair = (rec["filename"], rec["grounding"]["caption"])
            if pair in vg_pairs:
                problems.warn("duplicate-filename", path, line, "filename", f"{rec['filename']!r} with the same caption appears twice")
            vg_pairs.add(pair)
            _check_grounding(rec, path, line, problems, summary)
        yield line, rec
    if summary.kinds["od"] and summary.kinds["vg"]:
        problems.error("mixed-kinds", path, None, None,
                       f"{summary.kinds['od']} OD and {summary.kinds['vg']} VG records in one file; "
                       "ODVGDataset reads a whole file in one mode (label map given → OD), so split them")


def validate_file(
    path: str | Path,
    problems: ProblemLog,
    label_map: dict[str, str] | None = None,
    label_map_path: str | Path | None = None,
    images_root: str | Path | None = None,
    on_bytes: Callable[[int], None] | None = None,
    workers: int = 8,
) -> ValidationSummary:
    """Validate one ODVG file (and its label map and images); problems land in ``problems``."""
    summary = ValidationSummary()
    if label_map is not None:
        check_label_map(label_map, label_map_path or "label map", problems)
    valid = validate_records(read_records(path, problems, on_bytes), path, problems, summary, label_map)
    if images_root is None:
        for _ in valid:
            pass
        return summary
    root = Path(images_root)
    pending: list[tuple[int, dict[str, Any]]] = []

    def flush() -> None:
        paths = [root / rec["filename"] for _, rec in pending]
        for (line, rec), (_, size, error) in zip(pending, image_sizes(paths, workers=workers), strict=True):
            summary.images_checked += 1
            if error is not None:
                code = "image-missing" if "not found" in error else "image-unreadable"
                problems.error(code, path, line, "filename", error)
            elif size != (rec["width"], rec["height"]):
                problems.error("image-size-mismatch", path, line, "height/width",
                               f"record says {rec['width']}x{rec['height']} (w x h), image header says {size[0]}x{size[1]}")
        pending.clear()

    for item in valid:
        pending.append(item)
        if len(pending) >= 1024:
            flush()
    flush()
    return summary
