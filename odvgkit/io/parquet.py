"""ODVG as Parquet: the same records as nested Arrow columns, for Spark, DuckDB and pandas users.

Arrow has no union of "one box or a list of boxes" / "a phrase or a list of phrases", so regions
are stored normalised — ``bbox`` always a list of boxes, ``phrase`` always a list — with two flags
that remember the original shape. Fields the schema does not name go, per level, into an ``extra``
column holding their JSON, so reading a Parquet file back gives the records that were written
(numbers come back as floats: Parquet has one type per column).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from odvgkit.errors import OdvgError

BOX = pa.list_(pa.float64())
INSTANCE = pa.struct(
    [("bbox", BOX), ("label", pa.int64()), ("category", pa.string()), ("extra", pa.string())]
)
REGION = pa.struct(
    [
        ("bbox", pa.list_(BOX)),
        ("bbox_nested", pa.bool_()),
        ("phrase", pa.list_(pa.string())),
        ("phrase_list", pa.bool_()),
        ("tokens_positive", pa.list_(pa.list_(pa.int64()))),
        ("extra", pa.string()),
    ]
)
SCHEMA = pa.schema(
    [
        ("filename", pa.string()),
        ("height", pa.int64()),
        ("width", pa.int64()),
        ("detection", pa.struct([("instances", pa.list_(INSTANCE)), ("extra", pa.string())])),
        ("grounding", pa.struct([("caption", pa.string()), ("regions", pa.list_(REGION)), ("extra", pa.string())])),
        ("extra", pa.string()),
    ]
)
_BATCH = 8192


def _extra(d: dict[str, Any], known: tuple[str, ...]) -> str | None:
    rest = {k: v for k, v in d.items() if k not in known}
    return orjson.dumps(rest).decode() if rest else None


def _restore(d: dict[str, Any], extra: str | None) -> dict[str, Any]:
    if extra:
        d.update(orjson.loads(extra))
    return d


def to_row(rec: dict[str, Any]) -> dict[str, Any]:
    det = rec.get("detection")
    gnd = rec.get("grounding")
    row: dict[str, Any] = {
        "filename": rec.get("filename"),
        "height": rec.get("height"),
        "width": rec.get("width"),
        "extra": _extra(rec, ("filename", "height", "width", "detection", "grounding")),
        "detection": None,
        "grounding": None,
    }
    if det is not None:
        row["detection"] = {
            "instances": [
                {
                    "bbox": i.get("bbox"),
                    "label": i.get("label"),
                    "category": i.get("category"),
                    "extra": _extra(i, ("bbox", "label", "category")),
                }
                for i in det.get("instances", [])
            ],
            "extra": _extra(det, ("instances",)),
        }
    if gnd is not None:
        regions = []
        for r in gnd.get("regions", []):
            bbox = r.get("bbox") or []
            nested = bool(bbox) and isinstance(bbox[0], list)
            phrase = r.get("phrase")
            is_list = isinstance(phrase, list)
            regions.append(
                {
                    "bbox": bbox if nested else [bbox],
                    "bbox_nested": nested,
                    "phrase": phrase if is_list else [phrase],
                    "phrase_list": is_list,
                    "tokens_positive": r.get("tokens_positive"),
                    "extra": _extra(r, ("bbox", "phrase", "tokens_positive")),
                }
            )
        row["grounding"] = {
            "caption": gnd.get("caption"),
            "regions": regions,
            "extra": _extra(gnd, ("caption", "regions")),
        }
    return row


def from_row(row: dict[str, Any]) -> dict[str, Any]:
    rec: dict[str, Any] = {"filename": row["filename"], "height": row["height"], "width": row["width"]}
    det = row.get("detection")
    if det is not None:
        instances = [
            _restore(
                {"bbox": i["bbox"], "label": i["label"]}
                | ({"category": i["category"]} if i["category"] is not None else {}),
                i["extra"],
            )
            for i in det["instances"]
        ]
        rec["detection"] = _restore({"instances": instances}, det["extra"])
    gnd = row.get("grounding")
    if gnd is not None:
        regions = [
            _restore(
                {
                    "bbox": r["bbox"] if r["bbox_nested"] else r["bbox"][0],
                    "phrase": r["phrase"] if r["phrase_list"] else r["phrase"][0],
                    "tokens_positive": r["tokens_positive"],
                },
                r["extra"],
            )
            for r in gnd["regions"]
        ]
        rec["grounding"] = _restore({"caption": gnd["caption"], "regions": regions}, gnd["extra"])
    return _restore(rec, row.get("extra"))


def iter_parquet(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(row_number, record)`` batch by batch (bounded memory)."""
    try:
        pf = pq.ParquetFile(path)
    except FileNotFoundError:
        raise OdvgError(f"{path}: no such file") from None
    except (pa.ArrowInvalid, OSError) as exc:
        raise OdvgError(f"{path}: not a readable Parquet file: {exc}") from None
    missing = {"filename", "height", "width"} - set(pf.schema_arrow.names)
    if missing:
        raise OdvgError(f"{path}: not an ODVG Parquet file (missing columns: {', '.join(sorted(missing))})")
    n = 0
    for batch in pf.iter_batches(batch_size=_BATCH):
        for row in batch.to_pylist():
            n += 1
            yield n, from_row(row)


class ParquetWriter:
    """Writes records in row groups of ``_BATCH`` so memory stays bounded."""

    def __init__(self, path: Path) -> None:
        self._writer = pq.ParquetWriter(path, SCHEMA, compression="zstd")
        self._path = path
        self._rows: list[dict[str, Any]] = []
        self.count = 0

    def write(self, record: dict[str, Any]) -> None:
        self._rows.append(to_row(record))
        self.count += 1
        if len(self._rows) >= _BATCH:
            self.flush()

    def flush(self) -> None:
        if self._rows:
            try:
                table = pa.Table.from_pylist(self._rows, schema=SCHEMA)
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                raise OdvgError(f"cannot store record as ODVG Parquet: {exc}") from None
            self._rows.clear()
            try:
                self._writer.write_table(table)
            except OSError as exc:
                raise self._named(exc) from None

    def close(self) -> None:
        try:
            self.flush()
        finally:
            try:
                self._writer.close()
            except OSError as exc:
                raise self._named(exc) from None

    def _named(self, exc: OSError) -> OSError:
        """The error with this file's name, so a full disk is reported against the right output."""
        if exc.filename is None and exc.errno is not None:
            return OSError(exc.errno, os.strerror(exc.errno), str(self._path))
        return exc
