"""Record I/O: JSON Lines (plain and gzip), Parquet, atomic outputs."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from odvgkit.errors import OdvgError, ProblemLog
from odvgkit.io import AtomicGroup, format_of, iter_records, read_records, record_writer, write_records

OD = {"filename": "a/1.jpg", "height": 480, "width": 640,
      "detection": {"instances": [{"bbox": [1.5, 2.0, 30.25, 40.0], "label": 3, "category": "car", "score": 0.9,
                                   "is_group_of": True}]},
      "neg_category_ids": [4, 7]}
VG = {"filename": "b.jpg", "height": 10, "width": 20,
      "grounding": {"caption": "Deux chats — café", "regions": [
          {"bbox": [[1.0, 1.0, 5.0, 5.0], [2.0, 2.0, 6.0, 6.0]], "phrase": ["Deux", "chats"], "tokens_positive": [[0, 4], [5, 10]]},
          {"bbox": [0.0, 0.0, 3.0, 3.0], "phrase": "café", "tokens_positive": [[13, 17]], "score": [0.5]}]}}
EMPTY = {"filename": "c.jpg", "height": 5, "width": 5, "detection": {"instances": []}}


@pytest.mark.parametrize("name", ["out.jsonl", "out.json", "out.jsonl.gz", "out.parquet"])
def test_round_trip_every_format(tmp_path: Path, name: str) -> None:
    target = tmp_path / name
    assert write_records(target, [OD, VG, EMPTY]) == 3
    assert list(iter_records(target)) == [OD, VG, EMPTY]
    assert [n for n, _ in read_records(target)] == [1, 2, 3]
    if name.endswith(".gz"):
        assert gzip.decompress(target.read_bytes()).count(b"\n") == 3
    if name.endswith((".jsonl", ".json")):
        text = target.read_text(encoding="utf-8")
        assert "café" in text and text.endswith("\n") and text.count("\n") == 3  # raw UTF-8, one per line


def test_parquet_has_nested_columns(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    write_records(tmp_path / "x.parquet", [OD, VG])
    table = pq.read_table(tmp_path / "x.parquet")
    assert table.column("filename").to_pylist() == ["a/1.jpg", "b.jpg"]
    regions = table.column("grounding").to_pylist()[1]["regions"]
    assert regions[0]["bbox"] == [[1.0, 1.0, 5.0, 5.0], [2.0, 2.0, 6.0, 6.0]] and regions[1]["bbox_nested"] is False


def test_bad_lines_are_counted_with_line_numbers(tmp_path: Path) -> None:
    src = tmp_path / "bad.jsonl"
    src.write_text(json.dumps(OD) + "\n\n{oops\n[1, 2]\n" + json.dumps(VG) + "\n")
    problems = ProblemLog()
    got = list(read_records(src, problems))
    assert [n for n, _ in got] == [1, 5]
    assert [p.format() for ps in problems.examples.values() for p in ps] == [
        f"{src}:2: blank line (ODVGDataset fails on it)",
        f"{src}:3: malformed JSON: unexpected character, expected a string key (column 2)",
        f"{src}:4: expected a JSON object, got list",
    ]
    assert problems.n_errors == 3
    with pytest.raises(OdvgError, match=rf"{src}:2: blank line"):
        list(read_records(src))


def test_missing_and_unknown_inputs(tmp_path: Path) -> None:
    with pytest.raises(OdvgError, match="no such file"):
        list(read_records(tmp_path / "nope.jsonl"))
    with pytest.raises(OdvgError, match="unknown record format"):
        format_of(tmp_path / "x.csv")


def test_atomic_group_all_or_nothing(tmp_path: Path) -> None:
    (tmp_path / "keep.jsonl").write_text("old\n")
    with pytest.raises(RuntimeError), AtomicGroup() as group:
        with record_writer(group, tmp_path / "keep.jsonl") as w:
            w.write(OD)
        group.path(tmp_path / "label_map.json").write_text("{}")
        raise RuntimeError("crash after writing")
    assert (tmp_path / "keep.jsonl").read_text() == "old\n"  # the old file is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.jsonl"]  # no temporaries, no label map


def test_write_refuses_to_overwrite_input(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    write_records(src, [OD])
    with pytest.raises(OdvgError, match="same file as input"):
        write_records(src, iter_records(src), inputs=[src])
    link = tmp_path / "link.jsonl"
    link.symlink_to(src)
    with pytest.raises(OdvgError, match="same file as input"):
        write_records(link, [OD], inputs=[src])
    assert list(iter_records(src)) == [OD]
