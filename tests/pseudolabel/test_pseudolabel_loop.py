"""A real 2-round loop with the tiny model; resume; label/diff consistency; bad input."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from odvgkit.records import Record

from .conftest import CLASSES, Seed, run_cli


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): _sha(p) for p in sorted(root.rglob("*")) if p.is_file()}


def _boxes(rec: dict) -> list[tuple[str, list[float], float]]:
    return [(i["category"], i["bbox"], i["score"]) for i in rec["detection"]["instances"]]


LOOP_ARGS = ["--classes", ", ".join(CLASSES), "--score-thr", "0.05", "--nms", "0.7", "--max-iters", "2", "--batch-size", "2"]


@pytest.fixture(scope="module")
def loop(seed: Seed, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, str]:
    work = tmp_path_factory.mktemp("loop") / "W"
    proc = run_cli("pseudolabel", "loop", "--rounds", "2", "--images", str(seed.images), "--checkpoint", str(seed.checkpoint),
                   "--work-dir", str(work), "--labeled", str(seed.od_file), *LOOP_ARGS, "--json")
    return work, json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


def test_two_rounds_files_and_provenance(loop, seed: Seed) -> None:
    work, summary, _ = loop
    assert summary["rounds_done"] == [0, 1, 2] and summary["rounds_skipped"] == []
    assert sorted(p.name for p in work.iterdir()) == ["loop.json", "round_0", "round_1", "round_2"]
    r0 = _lines(work / "round_0" / "records.jsonl")
    assert [r["filename"] for r in r0] == [f"img_{i:04d}.jpg" for i in range(4)]
    assert all(r["detection"]["instances"] == [] for r in r0)
    assert json.loads((work / "round_0" / "label_map.json").read_text()) == {str(i): c for i, c in enumerate(CLASSES)}
    prev = seed.checkpoint
    for k in (1, 2):
        rd = work / f"round_{k}"
        man = json.loads((rd / "round.json").read_text())
        assert man["round"] == k
        assert man["checkpoint_in"] == str(prev.resolve()) and man["checkpoint_in_sha256"] == _sha(prev)
        assert man["checkpoint_sha256"] == _sha(rd / "checkpoint.pth")
        assert (man["score_thr"], man["nms"], man["class_thr"]) == (0.05, 0.7, {})
        assert (rd / "train" / "config.py").is_file() and man["train"]["iterations"] == 2
        assert "load_from" in (rd / "train" / "config.py").read_text()
        assert str(prev.resolve()) in (rd / "train" / "config.py").read_text()
        metrics = json.loads((rd / "metrics.json").read_text())
        assert metrics["metric"] == "coco" and 0.0 <= metrics["mAP"] <= 1.0 and metrics["images"] == 4
        labels = _lines(rd / "labels.jsonl")
        assert [r["filename"] for r in labels] == [r["filename"] for r in r0]
        n = 0
        for rec in labels:
            Record.model_validate(rec)
            assert rec["pseudolabel"] == {"round": k, "checkpoint": man["checkpoint_in_sha256"][:16]}
            scores = [i["score"] for i in rec["detection"]["instances"]]
            assert scores == sorted(scores, reverse=True) and all(s >= 0.05 for s in scores)
            for i in rec["detection"]["instances"]:
                assert CLASSES[i["label"]] == i["category"]
            n += len(scores)
        assert n == man["boxes"] > 0
        prev = rd / "checkpoint.pth"


def test_diff_consistent_with_round_files(loop) -> None:
    work, _, _ = loop
    a, b = work / "round_1" / "labels.jsonl", work / "round_2" / "labels.jsonl"
    out = json.loads(run_cli("pseudolabel", "diff", str(a), str(b), "--json", "--match-iou", "0.5").stdout)
    ra, rb = _lines(a), _lines(b)
    by_class_a = {c: sum(1 for r in ra for x in _boxes(r) if x[0] == c) for c in CLASSES}
    by_class_b = {c: sum(1 for r in rb for x in _boxes(r) if x[0] == c) for c in CLASSES}
    rows = {r["key"]: r for r in out["per_key"]}
    for c in CLASSES:
        row = rows.get(c, {"a": 0, "b": 0, "added": 0, "removed": 0, "moved": 0, "unchanged": 0})
        assert (row["a"], row["b"]) == (by_class_a[c], by_class_b[c])
        matched = row["moved"] + row["unchanged"]
        assert row["a"] - row["removed"] == matched == row["b"] - row["added"]
    # identical boxes (same image, class, coordinates) are always matched as unchanged
    from collections import Counter

    for c in CLASSES:
        identical = sum(sum((Counter(tuple(x[1]) for x in _boxes(r1) if x[0] == c)
                             & Counter(tuple(x[1]) for x in _boxes(r2) if x[0] == c)).values())
                        for r1, r2 in zip(ra, rb, strict=True))
        assert rows.get(c, {"unchanged": 0})["unchanged"] >= identical
    assert out["images_common"] == 4 and out["boxes_a"] == sum(by_class_a.values())


def test_resume_skips_complete_rounds(loop, seed: Seed, tmp_path: Path) -> None:
    work0, _, _ = loop
    work = tmp_path / "W"
    shutil.copytree(work0, work)
    # simulate an interruption during round 2: only a partial dir is left, no round_2
    shutil.rmtree(work / "round_2")
    (work / ".round_2.partial" / "train").mkdir(parents=True)
    (work / ".round_2.partial" / "train" / "junk.txt").write_text("half-written")
    before = _tree(work / "round_1"), _tree(work / "round_0")
    proc = run_cli("pseudolabel", "loop", "--rounds", "2", "--images", str(seed.images), "--checkpoint", str(seed.checkpoint),
                   "--work-dir", str(work), "--labeled", str(seed.od_file), *LOOP_ARGS, "--json")
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["rounds_skipped"] == [0, 1] and summary["rounds_done"] == [2]
    assert (_tree(work / "round_1"), _tree(work / "round_0")) == before
    assert not (work / ".round_2.partial").exists() and not (work / "round_2" / "train" / "junk.txt").exists()
    man = json.loads((work / "round_2" / "round.json").read_text())
    assert man["checkpoint_in_sha256"] == _sha(work / "round_1" / "checkpoint.pth")
    # the rerun labels with the same checkpoint as the original round 2: same labels
    assert (work / "round_2" / "labels.jsonl").read_bytes() == (work0 / "round_2" / "labels.jsonl").read_bytes()
    # all rounds complete: nothing runs, nothing changes
    full = _tree(work)
    proc = run_cli("pseudolabel", "loop", "--rounds", "2", "--images", str(seed.images), "--checkpoint", str(seed.checkpoint),
                   "--work-dir", str(work), "--labeled", str(seed.od_file), *LOOP_ARGS, "--json")
    assert json.loads(proc.stdout.strip().splitlines()[-1])["rounds_done"] == []
    assert _tree(work) == full
    # a resume with other options is refused before anything is touched
    bad = run_cli("pseudolabel", "loop", "--rounds", "3", "--images", str(seed.images), "--checkpoint", str(seed.checkpoint),
                  "--work-dir", str(work), *LOOP_ARGS[:-6], "--score-thr", "0.2", check=False)
    assert bad.returncode != 0 and "started with score_thr=0.05" in bad.stderr and "Traceback" not in bad.stderr
    assert _tree(work) == full


def test_label_cli_od_and_vg_with_provenance(seed: Seed, tmp_path: Path) -> None:
    r0 = tmp_path / "r0.jsonl"
    run_cli("pseudolabel", "init", "--images", str(seed.images), "--classes", ", ".join(CLASSES), "-o", str(r0))
    out = tmp_path / "r1.jsonl"
    summary = json.loads(run_cli("pseudolabel", "label", str(r0), "--image-root", str(seed.images), "--checkpoint", str(seed.checkpoint),
                                 "--score-thr", "0.05", "--class-thr", "red box=0.5", "--nms", "0.5", "-o", str(out), "--json").stdout)
    prov = json.loads((tmp_path / "r1.jsonl.provenance.json").read_text())
    assert prov["checkpoint_sha256"] == _sha(seed.checkpoint) and prov["round"] == 1 == summary["round"]
    assert prov["class_thr"] == {"red box": 0.5} and prov["score_thr"] == 0.05 and prov["nms"] == 0.5
    assert json.loads((tmp_path / "r1_label_map.json").read_text()) == {str(i): c for i, c in enumerate(CLASSES)}
    recs = _lines(out)
    total = 0
    for rec in recs:
        for cat, _, s in _boxes(rec):
            assert s >= (0.5 if cat == "red box" else 0.05)
        total += len(rec["detection"]["instances"])
    assert total == prov["boxes"]
    # VG: prompts are the caption spans; one region per kept box, spans from the input
    vg = tmp_path / "vg0.jsonl"
    caps = [{"filename": r["filename"], "caption": r["grounding"]["caption"]} for r in _lines(seed.vg_file)]
    (tmp_path / "caps.jsonl").write_text("\n".join(json.dumps(c) for c in caps) + "\n")
    run_cli("pseudolabel", "init", "--images", str(seed.images), "--captions", str(tmp_path / "caps.jsonl"), "-o", str(vg))
    vg1 = tmp_path / "vg1.jsonl"
    run_cli("pseudolabel", "label", str(vg), "--image-root", str(seed.images), "--checkpoint", str(seed.checkpoint),
            "--score-thr", "0.0", "--nms", "1", "-o", str(vg1))
    for before, after in zip(_lines(vg), _lines(vg1), strict=True):
        Record.model_validate(after)
        spans = [r["tokens_positive"] for r in before["grounding"]["regions"]]
        assert after["grounding"]["caption"] == before["grounding"]["caption"]
        assert after["grounding"]["regions"] and all(r["tokens_positive"] in spans for r in after["grounding"]["regions"])
        assert after["pseudolabel"]["round"] == 1


def test_label_bad_input_one_line(seed: Seed, tmp_path: Path) -> None:
    from odvgkit_train.text_encoder import make_tiny_bert

    r0 = tmp_path / "r0.jsonl"
    run_cli("pseudolabel", "init", "--images", str(seed.images), "--classes", ", ".join(CLASSES), "-o", str(r0))
    other = make_tiny_bert(tmp_path / "bert48", hidden_size=48)
    base = ["pseudolabel", "label", str(r0), "--image-root", str(seed.images), "--checkpoint", str(seed.checkpoint), "-o", str(tmp_path / "o.jsonl")]
    cases = [
        (["--score-thr", "1.5"], "--score-thr 1.5: must be within [0, 1]"),
        (["--nms", "-0.1"], "--nms -0.1: must be within [0, 1]"),
        (["--class-thr", "horse=0.3"], "'horse': not a class of the label map"),
        (["--text-encoder", str(other)], "checkpoint does not match the model"),
    ]
    for extra, message in cases:
        proc = run_cli(*base, *extra, check=False)
        assert proc.returncode != 0, extra
        err = proc.stderr.strip().splitlines()
        assert message in proc.stderr and len(err) == 1 and "Traceback" not in proc.stderr, (extra, proc.stderr[-2000:])
        assert not (tmp_path / "o.jsonl").exists()


def test_vg_loop_with_review_stop_and_resume(seed: Seed, tmp_path: Path) -> None:
    caps = tmp_path / "caps.jsonl"
    caps.write_text("\n".join(json.dumps({"filename": r["filename"], "caption": r["grounding"]["caption"]})
                              for r in _lines(seed.vg_file)) + "\n")
    work = tmp_path / "W"
    args = ["pseudolabel", "loop", "--rounds", "1", "--images", str(seed.images), "--checkpoint", str(seed.checkpoint),
            "--work-dir", str(work), "--captions", str(caps), "--score-thr", "0", "--max-iters", "1", "--review", "--json"]
    first = json.loads(run_cli(*args).stdout.strip().splitlines()[-1])
    assert first["waiting_review"] == 1 and first["rounds_done"] == [0]
    part = work / ".round_1.partial"
    assert not (work / "round_1").exists() and (part / "labels.jsonl").is_file()
    labels = _lines(part / "labels.jsonl")
    # the "review": keep the best region of each record (what an export from FiftyOne would give back)
    reviewed = [{**r, "grounding": {**r["grounding"], "regions": r["grounding"]["regions"][:1]}} for r in labels]
    mtime = (part / "labels.jsonl").stat().st_mtime_ns
    (part / "reviewed.jsonl").write_text("".join(json.dumps(r) + "\n" for r in reviewed))
    second = json.loads(run_cli(*args).stdout.strip().splitlines()[-1])
    assert second["rounds_done"] == [1] and second["rounds_skipped"] == [0] and "waiting_review" not in second
    man = json.loads((work / "round_1" / "round.json").read_text())
    assert man["sources"]["trained_on"] == "reviewed.jsonl" and man["boxes"] == len(reviewed) == 4
    assert (work / "round_1" / "labels.jsonl").stat().st_mtime_ns == mtime  # labelled once, not again on resume
    assert _lines(work / "round_1" / "labels.jsonl") == labels
    assert "label_map_file=None" in (work / "round_1" / "train" / "config.py").read_text().replace(" ", "")


def test_loop_bad_input_one_line(seed: Seed, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    work = tmp_path / "W"
    base = ["pseudolabel", "loop", "--rounds", "1", "--checkpoint", str(seed.checkpoint), "--work-dir", str(work), "--classes", "cat"]
    proc = run_cli(*base, "--images", str(empty), check=False)
    assert proc.returncode != 0 and "no images" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (work / "round_0").exists()
    proc = run_cli(*base, "--images", str(seed.images), "--score-thr", "-1", check=False)
    assert proc.returncode != 0 and proc.stderr.strip() == "odvgkit: error: --score-thr -1.0: must be within [0, 1]"
    proc = run_cli(*base, "--images", str(seed.images), "--class-thr", "dog=0.5", "--max-iters", "1", check=False)
    assert proc.returncode != 0 and "'dog': not a class of the label map" in proc.stderr and "Traceback" not in proc.stderr
    assert (work / "round_0").is_dir() and not (work / "round_1").exists()


def test_replay_source_is_mixed_into_the_finetune(seed: Seed, tmp_path: Path) -> None:
    """--replay FILE:RATIO adds the pretraining source, sampled at RATIO x the pseudo-labelled records."""
    work = tmp_path / "W"
    replay = f"{seed.od_file},images={seed.images},label_map={seed.label_map}:0.5"
    proc = run_cli("pseudolabel", "loop", "--rounds", "1", "--images", str(seed.images), "--checkpoint", str(seed.checkpoint),
                   "--work-dir", str(work), "--replay", replay, *LOOP_ARGS, "--json")
    assert proc.returncode == 0, proc.stderr
    man = json.loads((work / "round_1" / "round.json").read_text())
    assert man["sources"]["replay"] == [replay]
    config = (work / "round_1" / "train" / "config.py").read_text()
    assert str(seed.od_file) in config  # the replay source is a training dataset of the round
    n_pseudo = len(_lines(work / "round_0" / "records.jsonl"))
    assert f"samples_per_epoch={max(1, round(0.5 * n_pseudo))})" in config.replace(" ", "")  # 0.5 x 4 records
