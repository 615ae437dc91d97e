"""Removing leaking images from a training file, and the manifest that says why.

* COCO-style json: images keep their **file order** (upstream's ``remove_cocotrain2017_from_refcoco``
  writes CPython ``set`` order), every top-level key survives and every kept value keeps its exact
  bytes; annotations of removed images go.
* ODVG: records stream through; every record of a leaking image is dropped (refexp-style files hold
  one record per expression, so one image can be several records).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import msgspec
import orjson

from odvgkit.curate.leakage import SourceAudit, removal_rows
from odvgkit.errors import OdvgError, ProblemLog
from odvgkit.io import AtomicGroup, check_distinct, open_binary, read_records, record_writer


class _ImageId(msgspec.Struct):
    id: Any = None


def filter_coco(data: bytes, remove: set[int], out: IO[bytes], path: Path | str = "") -> tuple[int, int, int]:
    """Write the COCO json ``data`` to ``out`` without the images at indices ``remove`` and their annotations.

    Works on the raw bytes: top-level values, images and annotations are sliced as raw JSON
    (``msgspec.Raw``, zero-copy views) and written back piece by piece, so every kept value keeps its
    exact bytes (numbers are never re-formatted), the 40M polygon numbers of COCO train2017 never
    become Python objects, and no second copy of the document is built in memory.
    Returns ``(images kept, images removed, annotations removed)``.
    """
    try:
        top = msgspec.json.decode(data, type=dict[str, msgspec.Raw])
        images = msgspec.json.decode(top.get("images", msgspec.Raw(b"[]")), type=list[msgspec.Raw])
        anns = (msgspec.json.decode(top["annotations"], type=list[msgspec.Raw]) if "annotations" in top else None)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise OdvgError(f"{path}: not a COCO-style json object with images/annotations lists: {exc}") from None
    decode_id = msgspec.json.Decoder(_ImageId).decode
    removed_ids = {decode_id(images[i]).id for i in remove}
    n_ann = 0
    out.write(b"{")
    for k, (key, raw) in enumerate(top.items()):
        if k:
            out.write(b",")
        out.write(msgspec.json.encode(key) + b":")
        if key == "images":
            _write_list(out, (r for i, r in enumerate(images) if i not in remove))
        elif key == "annotations" and anns is not None:
            decode_ann = msgspec.json.Decoder(_AnnImage).decode
            kept = _write_list(out, (r for r in anns if decode_ann(r).image_id not in removed_ids))
            n_ann = len(anns) - kept
        else:
            out.write(raw)
    out.write(b"}")
    return len(images) - len(remove), len(remove), n_ann


def _write_list(out: IO[bytes], items: Iterator[msgspec.Raw]) -> int:
    out.write(b"[")
    n = 0
    for r in items:
        if n:
            out.write(b",")
        out.write(r)
        n += 1
    out.write(b"]")
    return n


class _AnnImage(msgspec.Struct):
    image_id: Any = None


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
            if src.kind not in ("json-object", "coco"):
                raise OdvgError(f"{src.path}: only COCO-style json and ODVG files can be filtered")
            if output.name.endswith((".jsonl", ".jsonl.gz", ".parquet", ".gz")):
                raise OdvgError(f"{output}: a COCO json input is written as plain .json")
            remove = {image_index(w) for w in audit.leaks}
            with open_binary(src.path) as fh:
                data = fh.read()
            with open(group.path(output), "wb", buffering=1 << 20) as out:
                n_kept, n_img, n_ann = filter_coco(data, remove, out, src.path)
            del data
            counts = {"images_written": n_kept, "images_removed": n_img, "annotations_removed": n_ann}
    return counts
