"""End to end on loopback, local engine, through the real console entry point:
download (img2dataset against a 127.0.0.1 server) → process → grit2odvg → validate."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from odvgkit.records import Record

pytestmark = pytest.mark.slow


def odvgkit(*args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "odvgkit", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env={**__import__("os").environ, "COLUMNS": "200"})


def summary(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert proc.stdout.count("\n") == 1, f"stdout must hold only the JSON summary:\n{proc.stdout}\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def pipeline(grit_data, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("grit_e2e")
    raw, out = root / "raw", root / "out"
    dl = odvgkit("grit", "download", grit_data.metadata, "-o", raw, "--samples-per-shard", "4",
                 "--image-size", "240", "--threads", "4", "--timeout", "5", "--json")
    assert dl.returncode == 0, dl.stderr[-3000:]
    pr = odvgkit("grit", "process", raw, out, "--workers", "2", "--json")
    assert pr.returncode == 0, pr.stderr[-3000:]
    cv = odvgkit("convert", "grit2odvg", out, "-o", out / "grit_vg.jsonl", "--workers", "2",
                 "--stats", out / "grit_stats.json", "--json")
    assert cv.returncode == 0, cv.stderr[-3000:]
    return {"raw": raw, "out": out, "download": summary(dl), "process": summary(pr), "convert": summary(cv)}


def test_download_counts_every_row(pipeline, grit_data) -> None:
    dl = pipeline["download"]
    assert (dl["rows"], dl["downloaded"], dl["failed_to_download"], dl["failed_to_resize"]) == (8, 5, 2, 1)
    assert dl["shards"] == 2
    # grounding columns saved; img2dataset's reserved key/width/height are not passed as extras
    assert dl["columns_saved"].split(",") == ["clip_similarity_vitb32", "clip_similarity_vitl14", "id", "noun_chunks", "ref_exps"]


def test_download_resumes_without_redoing_shards(pipeline, grit_data) -> None:
    raw: Path = pipeline["raw"]
    before = {p.name: p.stat().st_mtime_ns for p in raw.glob("*.tar")}
    again = odvgkit("grit", "download", grit_data.metadata, "-o", raw, "--samples-per-shard", "4",
                    "--image-size", "240", "--threads", "4", "--json")
    assert again.returncode == 0, again.stderr[-3000:]
    assert {p.name: p.stat().st_mtime_ns for p in raw.glob("*.tar")} == before
    assert summary(again)["rows"] == 8
    other = odvgkit("grit", "download", grit_data.metadata, "-o", raw, "--samples-per-shard", "3")
    assert other.returncode == 1
    assert "samples_per_shard=4" in other.stderr and "Traceback" not in other.stderr


def test_process_accounts_for_every_input_row(pipeline) -> None:
    pr = pipeline["process"]
    assert pr["rows"] == 8
    assert pr["written"] == 5
    assert pr["dropped:failed_to_download"] == 2 and pr["dropped:failed_to_resize"] == 1
    for shard in pr["per_shard"]:
        dropped = sum(v for k, v in shard.items() if k.startswith("dropped:"))
        assert shard["rows"] == shard["written"] + dropped
    errors = " ".join(s["download_errors"] for s in pr["per_shard"])
    assert "HTTP Error 404: 1" in errors and "Connection refused: 1" in errors


def test_process_writes_images_with_downloaded_sizes(pipeline, grit_data) -> None:
    out: Path = pipeline["out"]
    samples = [s for f in sorted((out / "annotations").glob("*.json")) for s in json.loads(f.read_text())]
    by_caption = {s["caption"]: s for s in samples}
    expected = {r.caption: r.resized for r in grit_data.rows if r.kind == "good"}
    assert set(by_caption) == set(expected)
    for caption, (w, h) in expected.items():
        s = by_caption[caption]
        with Image.open(out / s["filename"]) as im:
            assert im.size == (w, h)
        assert (s["width"], s["height"]) == (w, h)
        assert s["ref_exps"] == [[float(v) for v in ref] for ref in next(r.ref_exps for r in grit_data.rows if r.caption == caption)]
        assert "noun_chunks" in s and s["id"] >= 1000
    assert not list((out / "images").glob("*.partial"))


def test_grit2odvg_records_and_boxes(pipeline, expected_records) -> None:
    out: Path = pipeline["out"]
    records = [json.loads(line) for line in (out / "grit_vg.jsonl").read_text().splitlines()]
    assert [r["grounding"]["caption"] for r in records] == list(expected_records)  # shard order, key order
    for rec in records:
        Record.model_validate(rec)
        want = expected_records[rec["grounding"]["caption"]]
        assert (rec["width"], rec["height"]) == (want["width"], want["height"])
        assert rec["grounding"]["regions"] == want["regions"]
        assert (out / rec["filename"]).is_file()


def test_grit2odvg_stats_account_for_every_sample(pipeline) -> None:
    cv = pipeline["convert"]
    assert cv["samples"] == pipeline["process"]["written"] == 5
    assert cv["records"] == 3
    assert cv["dropped:too-many-tokens"] == 1 and cv["dropped:no-regions"] == 1
    assert cv["refs_dropped:invalid-span"] == 1 and cv["refs_dropped:multi-word"] == 1 and cv["refs_dropped:non-ascii"] == 1
    stats = json.loads((pipeline["out"] / "grit_stats.json").read_text())
    for shard in stats["shards"]:
        dropped = sum(v for k, v in shard.items() if k.startswith("dropped:"))
        assert shard["samples"] == shard["records"] + dropped
    # end to end: every metadata row is a record or dropped for a counted reason
    pr = pipeline["process"]
    lost_before = sum(v for k, v in pr.items() if k.startswith("dropped:"))
    lost_after = sum(v for k, v in cv.items() if k.startswith("dropped:"))
    assert pr["rows"] == cv["records"] + lost_before + lost_after


def test_validate_is_clean(pipeline) -> None:
    out: Path = pipeline["out"]
    proc = odvgkit("validate", out / "grit_vg.jsonl", "--images-root", out, "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = summary(proc)
    assert report["errors"] == 0 and report["warnings"] == 0
    assert report["vg_records"] == 3 and report["images_checked"] == 3


def test_process_rerun_skips_done_shards(pipeline) -> None:
    out: Path = pipeline["out"]
    before = (out / "annotations" / "00000.json").stat().st_mtime_ns
    again = odvgkit("grit", "process", pipeline["raw"], out, "--json")
    assert again.returncode == 0, again.stderr[-2000:]
    s = summary(again)
    assert s["shards_skipped"] == 2 and "shards_processed" not in s
    assert (s["rows"], s["written"]) == (8, 5)
    assert (out / "annotations" / "00000.json").stat().st_mtime_ns == before
