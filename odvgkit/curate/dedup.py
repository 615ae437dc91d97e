"""Removing leaking images from a training file, and the manifest that says why.

* COCO-style json: images keep their **file order** (upstream's ``remove_cocotrain2017_from_refcoco``
  writes CPython ``set`` order) and every top-level key survives; annotations of removed images go.
* ODVG: records stream through; every record of a leaking image is dropped (refexp-style files hold
  one record per expression, so one image can be several records).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from odvgkit.curate.leakage import SourceAudit, removal_rows
from odvgkit.errors import OdvgError, ProblemLog
from odvgkit.io import AtomicGroup, check_distinct, read_records, record_writer


def filter_coco(doc: dict[str, Any], remove: set[int]) -> tuple[dict[str, Any], int, int]:
    """``doc`` without the images at indices ``remove`` (and their annotations).

    Returns ``(new document, images removed, annotations removed)``; ``doc`` is not modified.
    """
    images = doc.get("images", [])
    removed_ids = {images[i].get("id") for i in remove}
    kept_images = [im for i, im in enumerate(images) if i not in remove]
    anns = doc.get("annotations")
    out = dict(doc)
    out["images"] = kept_images
    n_ann = 0
    if isinstance(anns, list):
        kept_anns = [a for a in anns if not (isinstance(a, dict) and a.get("image_id") in removed_ids)]
        n_ann = len(anns) - len(kept_anns)
        out["annotations"] = kept_anns
    return out, len(images) - len(kept_images), n_ann


def image_index(where: int | str) -> int:
    """``"images[12]"`` → ``12``."""
    return int(str(where)[len("images["):-1])


def filtered_records(path: Path, drop_lines: set[int], problems: ProblemLog | None) -> Iterator[dict[str, Any]]:
    for line, rec in read_records(path, problems):
        if line not in drop_lines:
            yield rec


def write_removal(
    audit: SourceAudit,
    output: Path,
    manifest: Path,
) -> dict[str, int]:
    """Write the filtered training file and the removal manifest together (all or nothing)."""
    src = audit.source
    check_distinct(output, [src.path])
    check_distinct(manifest, [src.path, output])
    rows = removal_rows(audit)
    payload = {
        "input": str(src.path),
        "output": str(output),
        "removed_images": len(rows),
        "removed": rows,
    }
    counts: dict[str, int] = {}
    with AtomicGroup() as group:
        group.path(manifest).write_bytes(orjson.dumps(payload, option=orjson.OPT_INDENT_2) + b"\n")
        if src.kind == "odvg":
            drop = {int(w) for w in audit.leaks}
            with record_writer(group, output) as writer:
                for rec in filtered_records(src.path, drop, ProblemLog()):  # bad lines were counted by the audit
                    writer.write(rec)
            counts = {"records_written": writer.count, "records_removed": audit.images - writer.count}
        else:
            if not isinstance(audit.doc, dict):
                raise OdvgError(f"{src.path}: only COCO-style json and ODVG files can be filtered")
            remove = {image_index(w) for w in audit.leaks}
            new, n_img, n_ann = filter_coco(audit.doc, remove)
            if output.name.endswith((".jsonl", ".jsonl.gz", ".parquet")):
                raise OdvgError(f"{output}: a COCO json input is written as .json")
            group.path(output).write_bytes(orjson.dumps(new))
            counts = {"images_written": len(new["images"]), "images_removed": n_img,
                      "annotations_removed": n_ann}
    return counts
