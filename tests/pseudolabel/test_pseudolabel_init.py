"""``pseudolabel init``: unlabeled OD/VG records from generated images; bad input is one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from odvgkit.records import Record

from .conftest import run_cli


@pytest.fixture()
def images(tmp_path: Path) -> Path:
    root = tmp_path / "imgs"
    (root / "sub").mkdir(parents=True)
    Image.new("RGB", (40, 30)).save(root / "b.jpg")
    Image.new("RGB", (20, 50)).save(root / "sub" / "a.png")
    (root / "notes.txt").write_text("not an image")
    return root


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_init_od_classes(images: Path, tmp_path: Path) -> None:
    out = tmp_path / "r0.jsonl"
    summary = json.loads(run_cli("pseudolabel", "init", "--images", str(images), "--classes", "cat, dog", "-o", str(out), "--json").stdout)
    recs = _lines(out)
    assert recs == [
        {"filename": "b.jpg", "height": 30, "width": 40, "detection": {"instances": []}},
        {"filename": "sub/a.png", "height": 50, "width": 20, "detection": {"instances": []}},
    ]
    assert json.loads((tmp_path / "r0_label_map.json").read_text()) == {"0": "cat", "1": "dog"}
    assert summary["images"] == 2 and summary["classes"] == 2
    for r in recs:
        Record.model_validate(r)
    again = run_cli("pseudolabel", "init", "--images", str(images), "--classes", "cat", "-o", str(out), check=False)
    assert again.returncode != 0 and "never overwritten" in again.stderr
    assert (tmp_path / "r0_label_map.json").read_text() == '{"0": "cat", "1": "dog"}\n'


def test_init_vg_spans_phrases_and_heuristic(images: Path, tmp_path: Path) -> None:
    caps = tmp_path / "caps.jsonl"
    caps.write_text("\n".join(json.dumps(e) for e in [
        {"filename": "b.jpg", "caption": "a cat on a mat", "tokens_positive": [[[2, 5]]]},
        {"filename": "sub/a.png", "caption": "a dog and a dog bowl", "phrases": ["dog", "dog bowl"]},
        {"filename": "b.jpg", "caption": "two birds near the red house"},
    ]) + "\n")
    out = tmp_path / "vg.jsonl"
    run_cli("pseudolabel", "init", "--images", str(images), "--captions", str(caps), "-o", str(out))
    recs = _lines(out)
    regions = [[(r["phrase"], r["tokens_positive"], r["bbox"]) for r in rec["grounding"]["regions"]] for rec in recs]
    assert regions == [
        [("cat", [[2, 5]], [0.0, 0.0, 1.0, 1.0])],
        [("dog", [[2, 5]], [0.0, 0.0, 1.0, 1.0]), ("dog bowl", [[12, 20]], [0.0, 0.0, 1.0, 1.0])],
        [("two birds", [[0, 9]], [0.0, 0.0, 1.0, 1.0]), ("red house", [[19, 28]], [0.0, 0.0, 1.0, 1.0])],
    ]
    assert [(r["height"], r["width"]) for r in recs] == [(30, 40), (50, 20), (30, 40)]
    for r in recs:
        Record.model_validate(r)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--classes", "cat"], "no images"),
        (["--classes", "cat, cat"], "duplicate class names"),
        (["--label-map", "LM"], "label map keys must be label ids"),
        ([], "exactly one of"),
    ],
)
def test_init_bad_input_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    lm = tmp_path / "lm.json"
    lm.write_text('{"cat": "cat"}')
    args = [str(lm) if a == "LM" else a for a in args]
    folder = empty if message == "no images" else Path(__file__).parent
    out = tmp_path / "o.jsonl"
    proc = run_cli("pseudolabel", "init", "--images", str(folder), *args, "-o", str(out), check=False)
    assert proc.returncode != 0
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not out.exists()


def test_without_train_extra_label_hints_init_and_diff_work(images: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        code = ("import sys; sys.modules['torch'] = None; from odvgkit.cli import main; "
                f"sys.argv = ['odvgkit', *{list(args)!r}]; main()")
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)

    out = tmp_path / "r0.jsonl"
    assert cli("pseudolabel", "init", "--images", str(images), "--classes", "cat", "-o", str(out)).returncode == 0
    assert cli("pseudolabel", "diff", str(out), str(out), "--json").returncode == 0
    for cmd in (["label", str(out), "--checkpoint", "c.pth", "-o", str(tmp_path / "x.jsonl")],
                ["loop", "--rounds", "1", "--images", str(images), "--checkpoint", "c.pth", "--work-dir", str(tmp_path / "W"), "--classes", "cat"]):
        proc = cli("pseudolabel", *cmd)
        assert proc.returncode == 3
        assert proc.stderr.strip() == "odvgkit: error: torch is not installed; install the 'train' extra: pip install 'odvgkit[train]'"
    assert not (tmp_path / "W").exists()


def test_init_summary_counts_images_not_captions(images: Path, tmp_path: Path) -> None:
    caps = tmp_path / "caps.tsv"
    rows = [("b.jpg", "a cat on a mat"), ("sub/a.png", "a dog"), ("b.jpg", "two birds near the red house")]
    caps.write_text("".join(f"{f}\t{c}\n" for f, c in rows))
    out = tmp_path / "vg.jsonl"
    summary = json.loads(run_cli("pseudolabel", "init", "--images", str(images), "--captions", str(caps), "-o", str(out),
                                 "--json").stdout)
    assert summary["records"] == len(rows) == len(_lines(out))
    assert summary["images"] == len({f for f, _ in rows}) == 2
