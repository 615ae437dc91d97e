"""ODVG → the ODVG dialect another reader expects (MMDetection, Open-GroundingDino, NVIDIA TAO).

The three readers agree on OD records and disagree on the rest (docs/format.md):

* ``mmdet`` — MMDetection's ``ODVGDataset``: what odvgkit writes. Records are copied unchanged.
* ``ogd`` — Open-GroundingDino's ``datasets/odvg.py``: a VG region is one box
  (``torch.as_tensor(boxes).reshape(-1, 4)`` pairs boxes with regions one to one) and its
  ``phrase`` one string (phrases are put in a ``set``). A region with several boxes becomes one
  region per box, each with the region's phrase and ``tokens_positive`` (so the file still loads
  in MMDetection); a list phrase is joined with spaces; a region without a box is dropped and
  counted. OD records are unchanged.
* ``tao`` — NVIDIA TAO's Grounding DINO (``nvidia_tao_pytorch``'s ``odvg.py``): Open-GroundingDino's
  loader with the image path read from ``file_name`` instead of ``filename``; records get
  ``file_name`` in ``filename``'s place, plus the ``ogd`` region rules.

Streaming, one record in memory; records stay in input order; nothing but the fields named above
changes.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from odvgkit.errors import OdvgError, ProblemLog
from odvgkit.io import read_records, write_records
from odvgkit.records import region_boxes

DIALECTS = ("mmdet", "ogd", "tao")


def export_odvg(
    input: str | Path,
    output: str | Path,
    dialect: str,
    problems: ProblemLog | None = None,
    on_record: Callable[[int], None] | None = None,
) -> Counter[str]:
    """Write ``input``'s records in ``dialect`` to ``output`` (atomically); returns the counts."""
    if dialect not in DIALECTS:
        raise OdvgError(f"--dialect {dialect!r}: choose one of {', '.join(DIALECTS)}")
    problems = problems if problems is not None else ProblemLog()
    stats: Counter[str] = Counter()
    records = _convert(Path(input), dialect, problems, stats, on_record)
    stats["records_written"] = write_records(output, records, inputs=[input])
    return stats


def _convert(
    path: Path, dialect: str, problems: ProblemLog, stats: Counter[str], on_record: Callable[[int], None] | None
) -> Iterator[dict[str, Any]]:
    for where, rec in read_records(path, problems):
        stats["records"] += 1
        if on_record is not None:
            on_record(1)
        if dialect == "mmdet":
            yield rec
            continue
        if not isinstance(rec.get("filename"), str):
            problems.error("bad-record", path, where, "filename", "missing or not a string")
            stats["records_skipped:bad"] += 1
            continue
        grounding = rec.get("grounding")
        if isinstance(grounding, dict):
            regions = _one_box_regions(path, where, grounding.get("regions"), problems, stats)
            if regions is None:
                stats["records_skipped:bad"] += 1
                continue
            rec = {**rec, "grounding": {**grounding, "regions": regions}}
        if dialect == "tao":
            rec = {("file_name" if k == "filename" else k): v for k, v in rec.items()}
        yield rec


def _one_box_regions(
    path: Path, where: int, regions: Any, problems: ProblemLog, stats: Counter[str]
) -> list[dict[str, Any]] | None:
    if not isinstance(regions, list):
        problems.error("bad-record", path, where, "grounding.regions", "must be a list")
        return None
    out: list[dict[str, Any]] = []
    for i, region in enumerate(regions):
        if not isinstance(region, dict) or "bbox" not in region or "phrase" not in region:
            problems.error("bad-region", path, where, f"grounding.regions[{i}]", "needs bbox and phrase")
            return None
        boxes = region_boxes(region)
        if boxes == [[]] or boxes == []:
            stats["regions_dropped:no-box"] += 1
            continue
        for box in boxes:
            if not (isinstance(box, list) and len(box) == 4 and all(_finite(v) for v in box)):
                problems.error("bad-bbox", path, where, f"grounding.regions[{i}].bbox", f"not 4 finite numbers: {box!r}")
                return None
        phrase = region["phrase"]
        if isinstance(phrase, list):
            phrase = " ".join(str(p) for p in phrase)
            stats["phrases_joined"] += 1
        score = region.get("score")
        if len(boxes) > 1:
            stats["regions_split"] += 1
        for k, box in enumerate(boxes):
            new = {**region, "bbox": box, "phrase": phrase}
            if isinstance(score, list):
                new["score"] = score[k] if len(score) == len(boxes) else score
            out.append(new)
    stats["regions"] += len(out)
    return out


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
