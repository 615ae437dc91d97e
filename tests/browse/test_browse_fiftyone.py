"""ODVG ⇄ FiftyOne without the App: what a loaded dataset holds, the round trip, review edits, bad input.

Runs against a real mongod started on a tmp directory for the session (see conftest.fiftyone_db).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from odvgkit.browse import app as fapp
from odvgkit.browse.fiftyone_io import export_dataset, load_dataset
from odvgkit.cli import app
from odvgkit.errors import OdvgError, ProblemLog

from .conftest import VAL_IMAGES, coco_od_records, read_jsonl, vg_from_od, write_jsonl


def _close(a: list[Any], b: list[Any], tol: float = 1e-6) -> bool:
    return len(a) == len(b) and all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


@pytest.fixture
def mixed(tmp_path: Path) -> tuple[Path, list[dict[str, Any]], dict[str, str]]:
    """OD records (one with scores and an unknown extra field), VG records (flat and nested boxes)."""
    records, label_map = coco_od_records()
    od = [dict(r) for r in records[:3]]
    od[1] = json.loads(json.dumps(od[1]))
    for k, inst in enumerate(od[1]["detection"]["instances"]):
        inst["score"] = round(0.3 + 0.01 * k, 3)
    od[1]["source_id"] = "extra-field-kept"
    vg = [vg_from_od(r) for r in records[3:]]
    recs = od + vg
    return write_jsonl(tmp_path / "mixed.jsonl", recs), recs, label_map


def test_load_counts_fields_and_spans(fiftyone_db: Path, mixed: tuple[Path, list[dict[str, Any]], dict[str, str]]) -> None:
    import fiftyone as fo

    path, recs, label_map = mixed
    problems = ProblemLog()
    stats = load_dataset(path, VAL_IMAGES, "t_load", label_map=label_map, overwrite=True, problems=problems)
    n_boxes = sum(len(r["detection"]["instances"]) for r in recs[:3]) + sum(
        len(rg["bbox"]) if isinstance(rg["bbox"][0], list) else 1 for r in recs[3:] for rg in r["grounding"]["regions"])
    assert (stats.samples, stats.od, stats.vg, stats.detections, stats.images_missing) == (6, 3, 3, n_boxes, 0)
    ds = fo.load_dataset("t_load")
    assert ds.persistent and len(ds) == 6
    assert ds.count("ground_truth.detections") == n_boxes
    samples = list(ds.sort_by("odvg_line"))
    assert [s["odvg_line"] for s in samples] == [1, 2, 3, 4, 5, 6]
    assert {s["odvg_source"] for s in samples} == {str(path.resolve())}
    # OD: label names from the label map, relative boxes, scores as confidence
    s1 = samples[1]
    inst0 = recs[1]["detection"]["instances"][0]
    d0 = s1["ground_truth"].detections[0]
    w, h = recs[1]["width"], recs[1]["height"]
    x1, y1, x2, y2 = inst0["bbox"]
    assert d0.label == label_map[str(inst0["label"])] and d0["odvg_label"] == inst0["label"]
    assert _close(d0.bounding_box, [x1 / w, y1 / h, (x2 - x1) / w, (y2 - y1) / h])
    assert d0.confidence == pytest.approx(inst0["score"])
    assert s1["caption"] is None and s1["filepath"] == str((VAL_IMAGES / recs[1]["filename"]).resolve())
    # VG: caption per sample, phrase and tokens_positive per detection, spans match the phrase
    for s, rec in zip(samples[3:], recs[3:], strict=True):
        caption = rec["grounding"]["caption"]
        assert s["caption"] == caption and s["odvg_kind"] == "vg"
        for det in s["ground_truth"].detections:
            (a, b), = det["tokens_positive"]
            assert caption[a:b] == det["phrase"] == det.label
    # the schema declares the attributes, so the App can filter on them
    schema = ds.get_field_schema(flat=True)
    assert "ground_truth.detections.phrase" in schema and "ground_truth.detections.tokens_positive" in schema


def test_round_trip_gives_the_same_records(fiftyone_db: Path, mixed: tuple[Path, list[dict[str, Any]], dict[str, str]], tmp_path: Path) -> None:
    path, recs, label_map = mixed
    load_dataset(path, VAL_IMAGES, "t_rt", label_map=label_map, overwrite=True)
    out = tmp_path / "back.jsonl"
    stats = export_dataset("t_rt", out)
    assert stats.written == 6 and stats.boxes_moved == 0
    assert read_jsonl(out) == recs  # unchanged boxes keep their exact numbers; extra fields survive


def test_review_edits_show_up_in_the_export(fiftyone_db: Path, mixed: tuple[Path, list[dict[str, Any]], dict[str, str]], tmp_path: Path) -> None:
    import fiftyone as fo

    path, recs, label_map = mixed
    load_dataset(path, VAL_IMAGES, "t_edit", label_map=label_map, overwrite=True)
    ds = fo.load_dataset("t_edit")
    samples = {s["odvg_line"]: s for s in ds}
    # line 1: delete the first detection, reject the second, move the third
    s = samples[1]
    dets = s["ground_truth"].detections
    dets[1].tags = ["reject"]
    dets[2].bounding_box = [0.1, 0.2, 0.3, 0.4]
    s["ground_truth"].detections = dets[1:]
    s.save()
    # line 2: reject the whole sample
    samples[2].tags = ["reject"]
    samples[2].save()
    # line 3: relabel the first detection to another class of the label map
    s = samples[3]
    s["ground_truth"].detections[0].label = label_map["0"]
    s.save()
    # line 4 (VG): drop every box of the first region, change a confidence
    s = samples[4]
    first = [d for d in s["ground_truth"].detections if d["odvg_item"] == 0]
    s["ground_truth"].detections = [d for d in s["ground_truth"].detections if d["odvg_item"] != 0]
    s["ground_truth"].detections[0].confidence = 0.5
    s.save()
    assert first
    out = tmp_path / "reviewed.jsonl"
    stats = export_dataset("t_edit", out)
    got = read_jsonl(out)
    assert [r["filename"] for r in got] == [recs[i]["filename"] for i in (0, 2, 3, 4, 5)]
    assert (stats.rejected_samples, stats.rejected_detections, stats.boxes_moved) == (1, 1, 1)
    # line 1
    want = recs[0]["detection"]["instances"][2:]
    inst = got[0]["detection"]["instances"]
    assert len(inst) == len(want)
    w, h = recs[0]["width"], recs[0]["height"]
    assert _close(inst[0]["bbox"], [0.1 * w, 0.2 * h, 0.4 * w, 0.6 * h])
    assert inst[0]["label"] == want[0]["label"] and inst[1:] == want[1:]
    # line 3
    first3 = got[1]["detection"]["instances"][0]
    assert first3["label"] == 0 and first3["category"] == label_map["0"]
    assert got[1]["detection"]["instances"][1:] == recs[2]["detection"]["instances"][1:]
    # line 4
    regions = got[2]["grounding"]["regions"]
    assert regions[1:] == recs[3]["grounding"]["regions"][2:]
    assert regions[0]["score"] in (0.5, [0.5])
    assert {k: v for k, v in regions[0].items() if k != "score"} == recs[3]["grounding"]["regions"][1]
    assert got[3:] == recs[4:]


def test_missing_images_are_counted_and_the_rest_load(fiftyone_db: Path, tmp_path: Path) -> None:
    records, _ = coco_od_records()
    gone = dict(records[0], filename="missing/nothing.jpg")
    path = write_jsonl(tmp_path / "m.jsonl", [records[0], gone, records[1]])
    problems = ProblemLog()
    stats = load_dataset(path, VAL_IMAGES, "t_missing", overwrite=True, problems=problems)
    assert (stats.records_read, stats.samples, stats.images_missing) == (3, 2, 1)
    assert problems.counts[("warning", "image-missing")] == 1
    (example,) = problems.examples["image-missing"]
    assert example.format().startswith(f"{path.resolve()}:2: filename: ") and "nothing.jpg" in example.message
    out = tmp_path / "back.jsonl"
    assert export_dataset("t_missing", out).not_loaded == 1
    assert read_jsonl(out) == [records[0], records[1]]


def test_existing_dataset_needs_overwrite(fiftyone_db: Path, tmp_path: Path) -> None:
    records, _ = coco_od_records()
    path = write_jsonl(tmp_path / "e.jsonl", records[:1])
    load_dataset(path, VAL_IMAGES, "t_exists", overwrite=True)
    with pytest.raises(OdvgError, match="'t_exists' exists; pass --overwrite"):
        load_dataset(path, VAL_IMAGES, "t_exists")


def test_cli_load_and_export(fiftyone_db: Path, tmp_path: Path) -> None:
    records, _label_map = coco_od_records()
    path = write_jsonl(tmp_path / "cli_od.jsonl", records)
    runner = CliRunner()
    res = runner.invoke(app, ["browse", "fiftyone", str(path), "-i", str(VAL_IMAGES), "--no-launch", "--overwrite", "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["dataset"] == "cli_od" and summary["samples"] == 6
    out = tmp_path / "cli_back.jsonl"
    res = runner.invoke(app, ["browse", "export-fiftyone", "cli_od", "-o", str(out), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["records written"] == 6
    assert read_jsonl(out) == records
    res = runner.invoke(app, ["browse", "export-fiftyone", "no_such_dataset", "-o", str(out)])
    assert res.exit_code != 0 and "no FiftyOne dataset named 'no_such_dataset'" in str(res.exception)


def test_port_in_use_is_a_clear_error(fiftyone_db: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        res = CliRunner().invoke(app, ["browse", "fiftyone", "--name", "whatever", "--port", str(port)])
    assert res.exit_code != 0
    assert str(res.exception) == f"port {port} on 127.0.0.1 is in use; choose another with --port"


def test_only_loopback_addresses_are_served() -> None:
    with pytest.raises(OdvgError, match="only loopback addresses"):
        fapp.check_loopback("0.0.0.0")
    fapp.check_loopback("127.0.0.1")
    fapp.check_loopback("::1")


def test_mongod_failing_to_start_names_its_log(fiftyone_db: Path) -> None:
    """A second mongod on the session's (locked) directory cannot start: the error names the log."""
    with pytest.raises(OdvgError) as err, fapp.mongod_server(fiftyone_db):
        pass
    message = str(err.value)
    assert message.startswith("mongod failed to start")
    assert f"log: {fiftyone_db / 'log' / 'mongod.log'}" in message


def test_fiftyone_missing_gives_a_one_line_hint(tmp_path: Path) -> None:
    code = ("import sys; sys.modules['fiftyone'] = None\n"
            "sys.argv = ['odvgkit', 'browse', 'export-fiftyone', 'x', '-o', 'x.jsonl']\n"
            "from odvgkit.cli import main; main()")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                         env={**os.environ, "NO_COLOR": "1"}, timeout=120)
    assert res.returncode == 3
    assert res.stderr.strip() == ("odvgkit: error: fiftyone is not installed; install the 'browse' extra: "
                                  "pip install 'odvgkit[browse]'")


def test_limit_loads_the_first_records(fiftyone_db: Path, tmp_path: Path) -> None:
    records, _ = coco_od_records()
    path = write_jsonl(tmp_path / "lim.jsonl", records)
    stats = load_dataset(path, VAL_IMAGES, "t_limit", overwrite=True, limit=2)
    assert (stats.records_read, stats.samples) == (2, 2)
    out = tmp_path / "lim_back.jsonl"
    export_dataset("t_limit", out)
    assert read_jsonl(out) == records[:2]


def test_detections_added_in_fiftyone_are_exported(fiftyone_db: Path, mixed: tuple[Path, list[dict[str, Any]], dict[str, str]], tmp_path: Path) -> None:
    import fiftyone as fo

    path, recs, label_map = mixed
    load_dataset(path, VAL_IMAGES, "t_add", label_map=label_map, overwrite=True)
    samples = {s["odvg_line"]: s for s in fo.load_dataset("t_add")}
    od = samples[1]
    od["ground_truth"].detections.append(fo.Detection(label=label_map["5"], bounding_box=[0.5, 0.5, 0.25, 0.25], confidence=0.75))
    od.save()
    vg = samples[4]
    caption = recs[3]["grounding"]["caption"]
    phrase = caption[caption.index("the "):].split(",")[0].rstrip(".")
    vg["ground_truth"].detections.append(fo.Detection(label=phrase.upper(), bounding_box=[0.0, 0.0, 0.5, 0.5]))
    vg["ground_truth"].detections.append(fo.Detection(label="a unicorn", bounding_box=[0.0, 0.0, 0.5, 0.5]))
    vg.save()
    problems = ProblemLog()
    out = tmp_path / "added.jsonl"
    export_dataset("t_add", out, problems)
    got = read_jsonl(out)
    w, h = recs[0]["width"], recs[0]["height"]
    assert got[0]["detection"]["instances"][:-1] == recs[0]["detection"]["instances"]
    new = got[0]["detection"]["instances"][-1]
    assert new["label"] == 5 and new["category"] == label_map["5"] and new["score"] == 0.75
    assert _close(new["bbox"], [0.5 * w, 0.5 * h, 0.75 * w, 0.75 * h])
    regions = got[3]["grounding"]["regions"]
    assert regions[:-1] == recs[3]["grounding"]["regions"]
    (a, b), = regions[-1]["tokens_positive"]
    assert caption[a:b] == phrase and regions[-1]["phrase"] == phrase.upper()
    assert problems.counts[("error", "phrase-not-in-caption")] == 1


def test_unreachable_database_uri_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    port = fapp.free_port()  # nothing listens there
    monkeypatch.setenv("FIFTYONE_DATABASE_URI", f"mongodb://127.0.0.1:{port}")
    with pytest.raises(OdvgError, match=rf"^FIFTYONE_DATABASE_URI=mongodb://127.0.0.1:{port}: cannot reach MongoDB"), \
            fapp.database():
        pass


def test_boxes_fiftyone_cannot_show_are_kept(fiftyone_db: Path, tmp_path: Path) -> None:
    records, _ = coco_od_records()
    od = json.loads(json.dumps(records[0]))
    od["detection"]["instances"].insert(1, {"bbox": [1, 2, 3], "label": 0})  # malformed: not loaded
    vg = vg_from_od(records[1])
    vg["grounding"]["regions"].insert(0, {"bbox": [None, 0, 1, 1], "phrase": "x", "tokens_positive": [[0, 1]]})
    path = write_jsonl(tmp_path / "bad_boxes.jsonl", [od, vg])
    problems = ProblemLog()
    stats = load_dataset(path, VAL_IMAGES, "t_badbox", overwrite=True, problems=problems)
    assert problems.counts[("warning", "bad-box")] == 2
    assert stats.detections == len(records[0]["detection"]["instances"]) + sum(
        len(r["bbox"]) if isinstance(r["bbox"][0], list) else 1 for r in vg_from_od(records[1])["grounding"]["regions"])
    out = tmp_path / "bad_back.jsonl"
    export_dataset("t_badbox", out)
    assert read_jsonl(out) == [od, vg]
