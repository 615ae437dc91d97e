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


_OWN_TOP = ("filename", "height", "width", "detection", "grounding", "extra")


def from_row(row: dict[str, Any]) -> dict[str, Any]:
    """A record from one row: odvgkit's own layout, or any Parquet of ODVG-shaped records.

    Files written by pandas/pyarrow/Spark straight from records have no ``extra`` columns and no
    ``bbox_nested``/``phrase_list`` flags: their boxes and phrases are stored as they were and come
    back as they are, and columns odvgkit does not know stay record fields.
    """
    rec: dict[str, Any] = {"filename": row.get("filename"), "height": row.get("height"), "width": row.get("width")}
    det = row.get("detection")
    if det is not None:
        instances = [
            _restore(
                {"bbox": i.get("bbox"), "label": i.get("label")}
                | ({"category": i["category"]} if i.get("category") is not None else {}),
                i.get("extra"),
            )
            for i in det.get("instances") or ()
        ]
        rec["detection"] = _restore({"instances": instances}, det.get("extra"))
    gnd = row.get("grounding")
    if gnd is not None:
        regions = [_region(r) for r in gnd.get("regions") or ()]
        rec["grounding"] = _restore({"caption": gnd.get("caption"), "regions": regions}, gnd.get("extra"))
    if len(row) > len(_OWN_TOP) or any(k not in _OWN_TOP for k in row):
        rec.update((k, v) for k, v in row.items() if k not in _OWN_TOP)
    return _restore(rec, row.get("extra"))


def _region(r: dict[str, Any]) -> dict[str, Any]:
    bbox, phrase = r.get("bbox"), r.get("phrase")
    nested, is_list = r.get("bbox_nested"), r.get("phrase_list")
    if nested is False and bbox:  # odvgkit's layout: a single box stored as a list of one
        bbox = bbox[0]
    if is_list is False and phrase:
        phrase = phrase[0]
    return _restore({"bbox": bbox, "phrase": phrase, "tokens_positive": r.get("tokens_positive")}, r.get("extra"))


def _one_line(exc: BaseException) -> str:
    """Arrow's messages span several lines; an ``odvgkit: error:`` line must not."""
    return " ".join(str(exc).split())


def iter_parquet(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(row_number, record)`` batch by batch (bounded memory)."""
    try:
        pf = pq.ParquetFile(path)
    except FileNotFoundError:
        raise OdvgError(f"{path}: no such file") from None
    except (pa.ArrowException, OSError) as exc:
        raise OdvgError(f"{path}: not a readable Parquet file: {_one_line(exc)}") from None
    missing = {"filename", "height", "width"} - set(pf.schema_arrow.names)
    if missing:
        raise OdvgError(f"{path}: not an ODVG Parquet file (missing columns: {', '.join(sorted(missing))})")
    n = 0
    batches = pf.iter_batches(batch_size=_BATCH)
    while True:
        try:
            batch = next(batches, None)
            rows = batch.to_pylist() if batch is not None else None
        except (pa.ArrowException, OSError) as exc:
            raise OdvgError(f"{path}: rows from {n + 1}: cannot read (damaged row group?): {_one_line(exc)}") from None
        if rows is None:
            if n == 0:
                raise OdvgError(f"{path}: empty file: no ODVG records (0 rows)")
            return
        for row in rows:
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
