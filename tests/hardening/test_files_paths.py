"""Per-record files never land outside the output folder; split copies images before it commits
records; a dead process's temporaries are swept, a live one's and a user's files never."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from odvgkit.errors import OdvgError, ProblemLog
from odvgkit.io.atomic import sweep, temp_name
from odvgkit.io.paths import UnsafePath, inside, inside_or_report


def _image(path: Path, colour: tuple[int, int, int]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 6), colour).save(path, "PNG")
    return path


def _rec(filename: str) -> str:
    return json.dumps({"filename": filename, "height": 6, "width": 8,
                       "detection": {"instances": [{"bbox": [1, 1, 4, 4], "label": 0, "category": "cat"}]}}) + "\n"


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _one_error_line(stderr: str) -> str:
    lines = [x for x in stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("odvgkit: error: "), stderr
    return lines[0]


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    _image(root / "images" / "ok.png", (10, 20, 30))
    _image(root / "images" / "sub" / "ok2.png", (40, 50, 60))
    return root


@pytest.mark.parametrize("bad", ["../annotations/victim.json", "sub/../../annotations/victim.json", "ABSOLUTE"])
@pytest.mark.parametrize("mode", ["--copy-images", "--link-images"])
def test_split_never_writes_outside_the_output_folder(dataset: Path, tmp_path: Path, cli, bad: str, mode: str):
    victim = dataset / "annotations" / "victim.json"
    victim.parent.mkdir()
    victim.write_text('{"precious": true}')
    if bad == "ABSOLUTE":
        bad = str(victim)
    records = dataset / "annotations" / "train.jsonl"
    records.write_text(_rec("ok.png") + _rec(bad) + _rec("sub/ok2.png"))
    # the image the bad name points at, seen from the images root, exists: only the target is wrong
    (dataset / "images" / "annotations").mkdir()
    (dataset / "images" / "annotations" / "victim.json").write_text("attacker")
    inputs = _tree(dataset)
    out = tmp_path / "out"

    # without --strict: the record is named, counted and its image skipped; the rest is written
    r = cli("split", records, "-o", out, "--images-root", dataset / "images", mode, "--json")
    assert r.returncode == 1
    summary = json.loads(r.stdout)
    assert summary["problems"]["by_code"] == [{"severity": "error", "code": "unsafe-path", "count": 1}]
    assert summary["problems"]["examples"][0].startswith(f"{records}:2: filename: {bad!r}")
    assert summary["images_copied" if mode == "--copy-images" else "images_linked"] == 2
    assert _tree(dataset) == inputs  # the victim (and every other input) untouched
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if not p.is_dir()) == [
        "images/ok.png", "images/sub/ok2.png", "train.jsonl"]

    # with --strict: one line naming record and field, nothing written at all
    out2 = tmp_path / "out2"
    r = cli("split", records, "-o", out2, "--images-root", dataset / "images", mode, "--strict")
    assert r.returncode == 1
    assert _one_error_line(r.stderr).startswith(f"odvgkit: error: {records}:2: filename: {bad!r}")
    assert "Traceback" not in r.stderr
    assert not out2.exists() or not any(out2.rglob("*"))
    assert _tree(dataset) == inputs


def test_split_through_a_symlinked_folder_is_refused(dataset: Path, tmp_path: Path, cli):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    out = tmp_path / "out"
    (out / "images").mkdir(parents=True)
    (out / "images" / "sub").symlink_to(outside, target_is_directory=True)  # e.g. left by an earlier tool
    records = dataset / "train.jsonl"
    records.write_text(_rec("sub/ok2.png"))
    r = cli("split", records, "-o", out, "--images-root", dataset / "images", "--copy-images", "--strict")
    assert r.returncode == 1
    assert "leads out of the folder through a symbolic link" in _one_error_line(r.stderr)
    assert list(outside.iterdir()) == []


def test_split_strict_with_a_missing_image_writes_nothing(dataset: Path, tmp_path: Path, cli):
    """Images are checked and copied before the records and label map are committed."""
    records = dataset / "train.jsonl"
    records.write_text(_rec("ok.png") + _rec("missing.png") + _rec("sub/ok2.png"))
    lm = dataset / "lm.json"
    lm.write_text('{"0": "cat"}')
    out = tmp_path / "out"
    r = cli("split", records, "-o", out, "-m", lm, "--images-root", dataset / "images", "--copy-images", "--strict")
    assert r.returncode == 1
    assert _one_error_line(r.stderr) == (
        f"odvgkit: error: {records}:2: filename: {dataset / 'images' / 'missing.png'}: image not found")
    assert not out.exists() or [p for p in out.rglob("*") if not p.is_dir()] == []
    # without --strict the rest is there, and a rerun finds the same images in place
    r = cli("split", records, "-o", out, "-m", lm, "--images-root", dataset / "images", "--copy-images", "--json")
    assert r.returncode == 1 and json.loads(r.stdout)["images_copied"] == 2
    r = cli("split", records, "-o", out, "-m", lm, "--images-root", dataset / "images", "--copy-images", "--json")
    s = json.loads(r.stdout)
    assert (s["images_copied"], s["images_already_in_place"]) == (0, 2)


def test_split_does_not_replace_a_different_image_without_force(dataset: Path, tmp_path: Path, cli):
    records = dataset / "train.jsonl"
    records.write_text(_rec("ok.png"))
    out = tmp_path / "out"
    _image(out / "images" / "ok.png", (255, 0, 0))
    mine = (out / "images" / "ok.png").read_bytes()
    r = cli("split", records, "-o", out, "--images-root", dataset / "images", "--copy-images")
    assert r.returncode == 1
    assert _one_error_line(r.stderr).startswith(f"odvgkit: error: {out / 'images' / 'ok.png'}: exists with different content")
    assert (out / "images" / "ok.png").read_bytes() == mine and not (out / "train.jsonl").exists()
    r = cli("split", records, "-o", out, "--images-root", dataset / "images", "--copy-images", "--force", "-q")
    assert r.returncode == 0, r.stderr
    assert (out / "images" / "ok.png").read_bytes() == (dataset / "images" / "ok.png").read_bytes()


@pytest.mark.parametrize(("name", "why"), [
    ("../x.jpg", "contains '..'"), ("a/../../x.jpg", "contains '..'"), ("/etc/passwd", "is an absolute path"),
    ("C:\\x.jpg", "is an absolute path"), ("..\\x.jpg", "contains '..'"), ("", "empty or not a string"),
    (None, "empty or not a string"), ("a\x00b", "contains a NUL byte"), (".", "names no file"),
])
def test_inside_refuses_names_that_escape(tmp_path: Path, name, why):
    with pytest.raises(UnsafePath) as err:
        inside(tmp_path, name, source="train.jsonl", where=7)
    assert str(err.value) == f"train.jsonl:7: filename: {name!r} {why}; refusing to write outside {tmp_path}"
    problems = ProblemLog()
    assert inside_or_report(tmp_path, name, problems, source="train.jsonl", where=7) is None
    assert problems.counts[("error", "unsafe-path")] == 1
    with pytest.raises(OdvgError):
        inside_or_report(tmp_path, name, ProblemLog(strict=True), source="train.jsonl", where=7)


def test_inside_accepts_ordinary_names(tmp_path: Path):
    assert inside(tmp_path, "a/b/c..d.jpg", source="f", where=1) == tmp_path / "a" / "b" / "c..d.jpg"
    assert inside(tmp_path, "..jpg", source="f", where=1) == tmp_path / "..jpg"


def test_sweep_removes_only_dead_processes_temporaries(tmp_path: Path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    with open(f"/proc/{os.getpid()}/stat", "rb") as fh:
        start = int(fh.read().rsplit(b")", 1)[1].split()[19])
    stale = tmp_path / f".out.jsonl.odvgkit-{dead_pid}-123-abcd1234.tmp"
    reused = tmp_path / f".out.jsonl.odvgkit-{os.getpid()}-{start + 1}-abcd1234.tmp"  # our pid, another start: dead
    live = tmp_path / temp_name("out.jsonl")  # this process's own
    user = [tmp_path / ".out.jsonl.tmp", tmp_path / "notes.odvgkit-1-2-ab.tmp", tmp_path / ".x.odvgkit-1-2-zz.tmp"]
    for p in [stale, reused, live, *user]:
        p.write_text("x")
    sweep(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in [live, *user])


def test_split_names_a_filename_that_is_not_a_string(dataset: Path, tmp_path: Path, cli):
    records = dataset / "train.jsonl"
    records.write_text(json.dumps({"filename": ["ok.png"], "height": 6, "width": 8}) + "\n" + _rec("ok.png"))
    r = cli("split", records, "-o", tmp_path / "out", "--images-root", dataset / "images", "--copy-images", "--json")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    s = json.loads(r.stdout)
    assert s["images_copied"] == 1
    assert s["problems"]["examples"] == [f"{records}:1: filename: expected a file name, got list; image not copied"]
