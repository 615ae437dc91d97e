"""Damaged shards: corrupt members, a truncated tar, no parquet, an unfinished download, leftovers
of an interrupted run. Each is counted and reported per shard; none stops the run; no half output."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from typer.testing import CliRunner

from odvgkit.cli import app


def jpeg(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (10, 200, 10)).save(buf, format="JPEG")
    return buf.getvalue()


def meta(key: str, w: int, h: int, caption: str = "cat") -> bytes:
    return json.dumps({"key": key, "caption": caption, "width": w, "height": h, "status": "success",
                       "ref_exps": [[0.0, 3.0, 0.0, 0.0, 1.0, 1.0, 0.9]]}).encode()


def write_tar(path: Path, members: list[tuple[str, bytes]]) -> None:
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def write_index(path: Path, rows: list[tuple[str, str, str | None]]) -> None:
    pq.write_table(pa.table({"key": [r[0] for r in rows], "status": [r[1] for r in rows],
                             "error_message": [r[2] for r in rows]}), path)


@pytest.fixture
def raw(tmp_path: Path) -> Path:
    raw = tmp_path / "raw"
    raw.mkdir()
    # 00000: good, corrupt image, corrupt json, image without json, plus a failed row and a lost one
    write_tar(raw / "00000.tar", [
        ("000000000.jpg", jpeg(40, 30)), ("000000000.json", meta("000000000", 40, 30)), ("000000000.txt", b"cat"),
        ("000000001.jpg", b"\xff\xd8 garbage"), ("000000001.json", meta("000000001", 40, 30)),
        ("000000002.jpg", jpeg(40, 30)), ("000000002.json", b"{broken"),
        ("000000003.jpg", jpeg(40, 30)),
    ])
    write_index(raw / "00000.parquet", [("000000000", "success", None), ("000000001", "success", None),
                                        ("000000002", "success", None), ("000000003", "success", None),
                                        ("000000004", "failed_to_download", "HTTP Error 404: Not Found"),
                                        ("000000005", "success", None)])
    (raw / "00000_stats.json").write_text("{}")
    # 00001: no parquet (stats only), two good samples, one with a wrong size in its json
    write_tar(raw / "00001.tar", [
        ("000010000.jpg", jpeg(20, 10)), ("000010000.json", meta("000010000", 20, 10)),
        ("000010001.jpg", jpeg(30, 10)), ("000010001.json", meta("000010001", 99, 99)),
    ])
    (raw / "00001_stats.json").write_text("{}")
    # 00002: truncated in the middle of the third sample's image
    members = []
    for i in range(3):
        members += [(f"00002000{i}.jpg", jpeg(300, 300 + i)), (f"00002000{i}.json", meta(f"00002000{i}", 300, 300 + i))]
    write_tar(raw / "00002.tar", members)
    data = (raw / "00002.tar").read_bytes()
    third = data.index(b"000020002.jpg")
    (raw / "00002.tar").write_bytes(data[: third + 512 + 600])  # header + part of the image
    write_index(raw / "00002.parquet", [(f"00002000{i}", "success", None) for i in range(3)])
    (raw / "00002_stats.json").write_text("{}")
    # 00003: img2dataset still writing (parquet, no stats): left for a later run
    write_tar(raw / "00003.tar", [("000030000.jpg", jpeg(5, 5))])
    write_index(raw / "00003.parquet", [("000030000", "success", None)])
    return raw


def invoke(*args: Any) -> tuple[int, dict[str, Any], str]:
    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    lines = result.stdout.strip().splitlines()
    return result.exit_code, (json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}), result.output


def by_shard(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["shard"]: row for row in summary["per_shard"]}


def test_damaged_shards_are_counted_and_never_stop_the_run(raw: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    # leftovers of an interrupted run must not survive into the result
    (out / "images" / "00000.partial").mkdir(parents=True)
    (out / "images" / "00000.partial" / "stale.jpg").write_bytes(b"x")
    (out / "images" / "00001").mkdir(parents=True)
    (out / "images" / "00001" / "stale.jpg").write_bytes(b"x")
    code, s, _output = invoke("grit", "process", raw, out, "--workers", "2", "--json")
    assert code == 1  # errors were found …
    shards = by_shard(s)
    assert set(shards) == {"00000", "00001", "00002"}  # … but every finished shard was processed
    s0 = shards["00000"]
    assert (s0["rows"], s0["written"]) == (6, 1)
    assert (s0["dropped:corrupt-image"], s0["dropped:corrupt-json"], s0["dropped:incomplete-sample"],
            s0["dropped:failed_to_download"], s0["dropped:missing-in-tar"]) == (1, 1, 1, 1, 1)
    assert s0["download_errors"] == "HTTP Error 404: 1"
    assert (shards["00001"]["rows"], shards["00001"]["written"], shards["00001"]["size_mismatch"]) == (2, 2, 1)
    s2 = shards["00002"]
    assert (s2["rows"], s2["written"], s2["dropped:corrupt-tar"]) == (3, 2, 1)
    for row in shards.values():
        assert row["rows"] == row["written"] + sum(v for k, v in row.items() if k.startswith("dropped:"))
    codes = {(c["severity"], c["code"]): c["count"] for c in s["problems"]["by_code"]}
    assert codes == {("error", "corrupt-image"): 1, ("error", "corrupt-json"): 1, ("error", "incomplete-sample"): 1,
                     ("error", "missing-in-tar"): 1, ("error", "corrupt-tar"): 1, ("warning", "no-parquet"): 1,
                     ("warning", "size-mismatch"): 1, ("warning", "download-unfinished"): 1}
    # outputs: whole shards only, no leftovers, the unfinished download untouched
    assert sorted(p.name for p in (out / "images").iterdir()) == ["00000", "00001", "00002"]
    assert sorted(p.name for p in (out / "images" / "00000").iterdir()) == ["000000000.jpg"]
    assert sorted(p.name for p in (out / "images" / "00001").iterdir()) == ["000010000.jpg", "000010001.jpg"]
    ann1 = json.loads((out / "annotations" / "00001.json").read_text())
    assert [(a["key"], a["width"], a["height"], a["filename"]) for a in ann1] == [
        ("000010000", 20, 10, "images/00001/000010000.jpg"), ("000010001", 30, 10, "images/00001/000010001.jpg")]
    assert [a["key"] for a in json.loads((out / "annotations" / "00002.json").read_text())] == ["000020000", "000020001"]
    assert not (out / "annotations" / "00003.json").exists()
    # grit2odvg over the result: only good samples, one record each, validate-clean
    code, c, _ = invoke("convert", "grit2odvg", out, "-o", out / "vg.jsonl", "--json")
    assert code == 0 and c["records"] == c["samples"] == 5
    code, v, _ = invoke("validate", out / "vg.jsonl", "--images-root", out, "--json")
    assert code == 0 and v["errors"] == 0 and v["images_checked"] == 5


def test_missing_columns_and_invalid_spans_reported_per_shard(tmp_path: Path, cli) -> None:
    root = tmp_path / "processed"
    (root / "annotations").mkdir(parents=True)
    good = {"key": "000000000", "caption": "cat", "width": 10, "height": 10, "filename": "images/00000/000000000.jpg",
            "ref_exps": [[0.0, 3.0, 0.0, 0.0, 1.0, 1.0, 0.9], [2.0, 40.0, 0.0, 0.0, 1.0, 1.0, 0.9]]}
    (root / "annotations" / "00000.json").write_text(json.dumps([good]))
    (root / "annotations" / "00001.json").write_text(json.dumps([{"key": "000010000", "caption": "dog", "width": 5, "height": 5}]))
    (root / "annotations" / "00002.json").write_text('[{"key": "0000')
    code, s, output = invoke("convert", "grit2odvg", root, "-o", root / "vg.jsonl", "--json")
    assert code == 1, output
    shards = by_shard(s)
    assert shards["00000"]["records"] == 1 and shards["00000"]["refs_dropped:invalid-span"] == 1
    assert shards["00001"]["dropped:missing-column"] == 1 and shards["00001"]["records"] == 0
    assert shards["00002"]["unreadable_files"] == 1
    assert len((root / "vg.jsonl").read_text().splitlines()) == 1
    examples = " ".join(s["problems"]["examples"])
    assert "00001.json: samples[0]: ref_exps: missing" in examples and "00002.json" in examples
    # --strict: stop at the first error, and no output at all
    proc = cli("convert", "grit2odvg", root, "-o", root / "strict.jsonl", "--strict")
    assert proc.returncode == 1 and "00001.json: samples[0]: ref_exps: missing" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (root / "strict.jsonl").exists() and not list(root.glob(".strict.jsonl*"))


def test_user_mistakes_are_one_line_errors(tmp_path: Path, cli) -> None:
    proc = cli("grit", "process", tmp_path / "nope", tmp_path / "out")
    assert proc.returncode == 1 and "no such directory" in proc.stderr and "Traceback" not in proc.stderr
    proc = cli("convert", "grit2odvg", tmp_path)
    assert proc.returncode == 1 and "grit process" in proc.stderr and "Traceback" not in proc.stderr
    proc = cli("grit", "download", tmp_path / "missing.parquet", "-o", tmp_path / "raw")
    assert proc.returncode == 1 and "no such metadata file" in proc.stderr
    proc = cli("grit", "process", tmp_path, tmp_path / "o", "--engine", "ray")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
