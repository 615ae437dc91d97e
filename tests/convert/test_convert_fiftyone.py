"""fiftyone2odvg on a generated KITTI folder: FiftyOne's real importer, a private mongod, the real CLI.

The expected boxes are the numbers the test writes into the KITTI label files (KITTI stores
absolute ``left top right bottom``), so they are independent of both FiftyOne and odvgkit.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from odvgkit.errors import OdvgError, ProblemLog

pytest.importorskip("fiftyone")  # the 'browse' extra; CI installs it (nox -s tests)

ROW = "{cls} 0.00 0 -1.58 {x1} {y1} {x2} {y2} 1.5 1.6 3.7 -3.0 1.5 10.0 -1.5\n"


def kitti(root: Path, files: dict[str, tuple[tuple[int, int], list[tuple]]]) -> Path:
    (root / "data").mkdir(parents=True)
    (root / "labels").mkdir()
    for stem, (size, rows) in files.items():
        Image.new("RGB", size).save(root / "data" / f"{stem}.png")
        (root / "labels" / f"{stem}.txt").write_text(
            "".join(ROW.format(cls=c, x1=a, y1=b, x2=d, y2=e) for c, a, b, d, e in rows))
    return root


@pytest.fixture(scope="module")
def db_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fo-db")


def test_kitti_converts_with_absolute_boxes_from_headers(tmp_path, cli, read_jsonl, db_dir):
    root = kitti(tmp_path / "training", {
        "000002": ((40, 30), [("Cyclist", "0.00", "0.00", "39.99", "30.00")]),
        "000001": ((64, 48), [("Car", "5.00", "4.00", "20.50", "18.00"),
                              ("Pedestrian", "30.25", "10.00", "64.00", "48.00"),
                              ("DontCare", "1.00", "1.00", "3.00", "3.00")]),
        "000003": ((20, 10), []),
    })
    out = tmp_path / "kitti_od.jsonl"
    r = cli("convert", "fiftyone2odvg", root, "--type", "KITTIDetectionDataset", "--skip-class", "DontCare",
            "--db-dir", db_dir, "-o", out, "--json")
    assert r.returncode == 0, r.stderr
    assert read_jsonl(out) == [
        {"filename": "data/000001.png", "height": 48, "width": 64, "detection": {"instances": [
            {"bbox": [5.0, 4.0, 20.5, 18.0], "label": 0, "category": "Car"},
            {"bbox": [30.25, 10.0, 64.0, 48.0], "label": 2, "category": "Pedestrian"}]}},
        {"filename": "data/000002.png", "height": 30, "width": 40, "detection": {"instances": [
            {"bbox": [0.0, 0.0, 39.99, 30.0], "label": 1, "category": "Cyclist"}]}},
        {"filename": "data/000003.png", "height": 10, "width": 20, "detection": {"instances": []}},
    ]
    assert json.loads((tmp_path / "kitti_od_label_map.json").read_text()) == {"0": "Car", "1": "Cyclist", "2": "Pedestrian"}
    s = json.loads(r.stdout)
    assert (s["boxes"], s["boxes_skipped:DontCare"], s["class_order"]) == (3, 1, "sorted by name (3)")


@pytest.fixture(scope="module")
def in_process_db(tmp_path_factory):
    """One mongod for the in-process tests (a CLI call starts its own: ~15 s on a loaded machine)."""
    from odvgkit.browse.app import database

    with database(tmp_path_factory.mktemp("fo-db-lib")):
        yield


def test_bad_boxes_are_named_and_strict_stops(tmp_path, in_process_db):
    from odvgkit.convert.fiftyone_dir import fiftyone_to_odvg

    root = kitti(tmp_path / "bad", {
        "a": ((32, 24), [("Car", "1.00", "1.00", "5.00", "5.00"), ("Car", "-2.00", "1.00", "5.00", "5.00"),
                         ("Car", "10.00", "1.00", "33.00", "5.00"), ("Tram", "1.00", "1.00", "5.00", "5.00")]),
    })
    img = root / "data" / "a.png"
    problems = ProblemLog()
    conv, source = fiftyone_to_odvg(root, "KITTIDetectionDataset", classes=["Car"], problems=problems)
    (rec,) = list(conv.records)
    assert rec["detection"]["instances"] == [{"bbox": [1.0, 1.0, 5.0, 5.0], "label": 0, "category": "Car"}]
    assert source == "--classes"
    assert [p.format() for ps in problems.examples.values() for p in ps] == [
        f"{img}: ground_truth.detections[1]: bounding_box: negative coordinate in box [-2, 1, 5, 5]",
        f"{img}: ground_truth.detections[2]: bounding_box: box [10, 1, 33, 5] goes outside the 32x24 image",
        f"{img}: ground_truth.detections[3]: label: class 'Tram' is not in the class list"]
    conv, _ = fiftyone_to_odvg(root, "KITTIDetectionDataset", classes=["Car"], problems=ProblemLog(strict=True))
    with pytest.raises(OdvgError) as err:
        list(conv.records)
    assert str(err.value) == f"{img}: ground_truth.detections[1]: bounding_box: negative coordinate in box [-2, 1, 5, 5]"
    with pytest.raises(OdvgError) as err:
        fiftyone_to_odvg(root, "VOCDetectionDataset")
    assert str(err.value) == f"{root}: FiftyOne found no samples reading it as VOCDetectionDataset (is that the format?)"
    with pytest.raises(OdvgError, match=r"--type 'KITTIDataset': not a FiftyOne labeled image dataset type; one of: .*KITTIDetectionDataset"):
        fiftyone_to_odvg(root, "KITTIDataset")
    import fiftyone as fo

    assert not [n for n in fo.list_datasets() if n.startswith("odvgkit-import-")]  # temporary datasets are gone


def test_missing_extra_is_one_line(tmp_path, cli):
    fake = tmp_path / "site"
    (fake / "fiftyone").mkdir(parents=True)
    (fake / "fiftyone" / "__init__.py").write_text("raise ImportError(\"No module named 'fiftyone'\", name='fiftyone')\n")
    import os

    env = {"PYTHONPATH": os.pathsep.join([str(fake), os.environ.get("PYTHONPATH", "")])}
    r = cli("convert", "fiftyone2odvg", tmp_path, "--type", "KITTIDetectionDataset", env=env)
    assert r.returncode == 3
    assert r.stderr.splitlines() == [
        "odvgkit: error: fiftyone is not installed; install the 'browse' extra: pip install 'odvgkit[browse]'"]


def test_yolov5_keeps_the_declared_class_order_and_takes_importer_args(tmp_path, in_process_db):
    from odvgkit.convert.fiftyone_dir import fiftyone_to_odvg, parse_importer_args

    root = tmp_path / "yolo"
    for split, rows in (("train", "1 0.5 0.5 0.2 0.4\n0 0.25 0.5 0.1 0.2\n"), ("val", "0 0.5 0.5 0.5 0.5\n")):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        Image.new("RGB", (100, 50)).save(root / "images" / split / f"{split}.jpg")
        (root / "labels" / split / f"{split}.txt").write_text(rows)
    (root / "dataset.yaml").write_text("path: .\ntrain: ./images/train/\nval: ./images/val/\nnames:\n  0: zebra\n  1: apple\n")
    args = parse_importer_args(["split=train"])
    assert args == {"split": "train"} and parse_importer_args(["max_samples=3"]) == {"max_samples": 3}
    conv, source = fiftyone_to_odvg(root, "YOLOv5Dataset", importer_args=args, problems=ProblemLog(strict=True))
    # YOLO: centre x, centre y, w, h relative → x1 = (cx - w/2) W …
    assert list(conv.records) == [{"filename": "images/train/train.jpg", "height": 50, "width": 100, "detection": {"instances": [
        {"bbox": [40.0, 15.0, 60.0, 35.0], "label": 1, "category": "apple"},
        {"bbox": [20.0, 20.0, 30.0, 30.0], "label": 0, "category": "zebra"}]}}]
    assert conv.label_map == {"0": "zebra", "1": "apple"} and source == "the dataset's classes"
    with pytest.raises(OdvgError, match="expected KEY=VALUE"):
        parse_importer_args(["split"])
