"""Parquet written by pandas/pyarrow (not odvgkit) is read; a damaged file is one line with its name."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
from hardening._cli import od_record, refused, summary, vg_record


def _foreign(path, records):
    """How a user writes records with pyarrow (pandas does the same via to_parquet): no extra
    columns, no bbox_nested/phrase_list flags, regions as they are in JSON."""
    pq.write_table(pa.Table.from_pylist(records), path, row_group_size=100)


def test_pyarrow_written_od_and_vg_files_round_trip(work):
    from odvgkit.io import read_records

    od = [od_record(f"{i}.jpg") for i in range(3)] + [od_record("e.jpg", detection={"instances": []})]
    vg = [vg_record(f"{i}.jpg") for i in range(3)]
    _foreign(work / "od.parquet", od)
    _foreign(work / "vg.parquet", vg)
    assert [rec for _, rec in read_records(work / "od.parquet")] == od
    assert [rec for _, rec in read_records(work / "vg.parquet")] == vg
    r, _doc = summary(work, "stats", "od.parquet")
    assert r.returncode == 0, r.stderr


def test_pandas_written_file_with_extra_columns(work):
    import pandas as pd

    recs = [od_record(f"{i}.jpg", source="web") for i in range(3)]
    pd.DataFrame(recs).to_parquet(work / "od.parquet")
    from odvgkit.io import read_records

    got = [rec for _, rec in read_records(work / "od.parquet")]
    assert got == recs  # the unknown "source" column stays a record field
    r, _ = summary(work, "validate", "od.parquet")
    assert r.returncode == 0, r.stderr


def test_damaged_row_group_is_one_line_with_the_file_name(work):
    pq.write_table(pa.Table.from_pylist([od_record(f"{i}.jpg") for i in range(600)]), work / "x.parquet",
                   row_group_size=100)
    data = bytearray((work / "x.parquet").read_bytes())
    col = pq.ParquetFile(work / "x.parquet").metadata.row_group(3).column(0)
    for i in range(col.data_page_offset, col.data_page_offset + col.total_compressed_size - 4):
        data[i] ^= 0xA5
    (work / "bad.parquet").write_bytes(bytes(data))
    (work / "x.parquet").unlink()
    refused(work, "stats", "bad.parquet", fragments=("bad.parquet: rows from ", "cannot read"))


def test_damaged_footer(work):
    pq.write_table(pa.Table.from_pylist([od_record()]), work / "x.parquet")
    data = (work / "x.parquet").read_bytes()
    (work / "bad.parquet").write_bytes(data[:-12] + b"\x00" * 8 + data[-4:])
    (work / "x.parquet").unlink()
    refused(work, "validate", "bad.parquet", fragments=("bad.parquet: not a readable Parquet file",))


def test_odvgkit_layout_still_round_trips(work):
    """The foreign-file reader changed nothing for odvgkit's own layout (flags, extra columns)."""
    from odvgkit.io import read_records, write_records

    recs = [vg_record("a.jpg", image_id=7), {**vg_record("b.jpg"), "grounding": {"caption": "two cats", "regions": [
        {"bbox": [[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]], "phrase": ["two", "cats"], "tokens_positive": [[0, 8]],
         "note": "x"}]}}]
    write_records(work / "own.parquet", recs)
    assert json.loads(json.dumps([r for _, r in read_records(work / "own.parquet")])) == recs
