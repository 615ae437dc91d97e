"""cityscapes2odvg: the boxes MMDetection's cityscapes.py + coco2odvg produce, on generated gtFine files.

The expectation is computed the upstream way, independently of the importer: rectangles are
painted into a numpy instance image in file order (later objects on top, ids as cityscapesScripts
assigns them), every instance id >= 1000 of the 8 evaluated classes is encoded with pycocotools
and ``toBbox`` gives ``[x, y, w, h]`` → ``[x, y, x + w, y + h]``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pycocotools.mask as mask_utils
import pytest
from PIL import Image

from odvgkit.convert.cityscapes import cityscapes_to_odvg
from odvgkit.errors import ProblemLog

CLASSES = ["person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle"]
IDS = {"unlabeled": 0, "road": 7, "building": 11, "person": 24, "rider": 25, "car": 26, "bus": 28, "caravan": 29,
       "license plate": -1}


def rect(label, x1, y1, x2, y2, **extra):
    return {"label": label, "polygon": [[x1, y1], [x2, y1], [x2, y2], [x1, y2]], **extra}


AACHEN = [
    rect("road", 0, 24, 63, 31),
    rect("car", 10, 10, 30, 20),
    rect("person", 25, 5, 35, 25),            # hides the right part of the car
    rect("cargroup", 40, 2, 50, 8),           # crowd: dropped
    rect("caravan", 50, 20, 60, 30),          # ignored in evaluation
    rect("car", 0, 0, 3, 3),
    rect("building", 0, 0, 5, 5),             # hides that car completely
    rect("license plate", 26, 6, 34, 12),     # id -1: never painted
    rect("person", 1, 20, 6, 30, deleted=1),  # deleted: not painted, takes no instance number
    rect("person", 55, 1, 60, 6),
    rect("car", 12, 22, 20, 28),              # on top of the road
]
BOCHUM = [rect("bus", 2, 3, 40, 20)]


def expected_instances(objects, w, h):
    canvas = np.zeros((h, w), dtype=np.int64)
    count: dict[str, int] = {}
    for obj in objects:
        if obj.get("deleted"):
            continue
        name, group = obj["label"], False
        if name not in IDS and name.endswith("group"):
            name, group = name[:-5], True
        pid = IDS[name]
        if name in [*CLASSES, "caravan"] and not group:
            pid = pid * 1000 + count.get(name, 0)
            count[name] = count.get(name, 0) + 1
        if pid < 0:
            continue
        (x1, y1), _, (x2, y2), _ = obj["polygon"]
        canvas[y1 : y2 + 1, x1 : x2 + 1] = pid
    out = []
    for pid in np.unique(canvas[canvas >= 24]):
        cid = pid // 1000 if pid >= 1000 else pid
        name = next((n for n, i in IDS.items() if i == cid), None)
        if pid < 1000 or name not in CLASSES:
            continue
        rle = mask_utils.encode(np.asfortranarray((canvas == pid).astype(np.uint8)))
        x, y, bw, bh = mask_utils.toBbox(rle).tolist()
        out.append({"bbox": [x, y, x + bw, y + bh], "label": CLASSES.index(name), "category": name})
    return out


def write_city(root: Path, split: str, city: str, stem: str, objects, w=64, h=32, image=True) -> Path:
    gt = root / "gtFine" / split / city / f"{stem}_gtFine_polygons.json"
    gt.parent.mkdir(parents=True, exist_ok=True)
    gt.write_text(json.dumps({"imgHeight": h, "imgWidth": w, "objects": objects}, indent=4), encoding="utf-8")
    if image:
        img = root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png"
        img.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (w, h)).save(img)
    return gt


@pytest.fixture
def cityscapes(tmp_path):
    root = tmp_path / "cityscapes"
    write_city(root, "train", "bochum", "bochum_000000_000313", BOCHUM)
    write_city(root, "train", "aachen", "aachen_000000_000019", AACHEN)
    write_city(root, "train", "aachen", "aachen_000001_000019", [])
    write_city(root, "val", "lindau", "lindau_000000_000019", [rect("rider", 1, 1, 4, 4)])
    return root


def test_boxes_are_upstreams_visible_pixel_extents(cityscapes, cli, read_jsonl):
    r = cli("convert", "cityscapes2odvg", cityscapes, "--split", "train", "--json")
    assert r.returncode == 0, r.stderr
    recs = read_jsonl(cityscapes / "cityscapes_train_od.json")
    assert [x["filename"] for x in recs] == [
        "aachen/aachen_000000_000019_leftImg8bit.png", "aachen/aachen_000001_000019_leftImg8bit.png",
        "bochum/bochum_000000_000313_leftImg8bit.png"]
    assert all((x["height"], x["width"]) == (32, 64) for x in recs)
    aachen = expected_instances(AACHEN, 64, 32)
    assert recs[0]["detection"]["instances"] == aachen
    # spelled out, as a reader would check it: persons first (ascending instance ids), then cars
    assert [(i["category"], i["bbox"]) for i in aachen] == [
        ("person", [25.0, 5.0, 36.0, 26.0]), ("person", [55.0, 1.0, 61.0, 7.0]),
        ("car", [10.0, 10.0, 25.0, 21.0]), ("car", [12.0, 22.0, 21.0, 29.0])]
    assert recs[1]["detection"]["instances"] == []
    assert recs[2]["detection"]["instances"] == expected_instances(BOCHUM, 64, 32)
    lm = json.loads((cityscapes / "cityscapes_train_od_label_map.json").read_text())
    assert lm == {str(i): n for i, n in enumerate(CLASSES)}
    s = json.loads(r.stdout)
    assert (s["images"], s["boxes"], s["boxes_dropped:crowd"], s["instances_hidden"], s["instances_skipped:ignored-in-eval"]) == (3, 5, 1, 1, 1)


def test_a_non_rectangular_polygon_covers_its_vertices(tmp_path):
    root = tmp_path / "cs"
    write_city(root, "val", "x", "x_1", [{"label": "rider", "polygon": [[40, 20], [50, 20], [45, 28]]}])
    (rec,) = cityscapes_to_odvg(root, "val", problems=ProblemLog(strict=True)).records
    assert rec["detection"]["instances"] == [{"bbox": [40.0, 20.0, 51.0, 29.0], "label": 1, "category": "rider"}]


@pytest.mark.parametrize("case", ["polygon-2-points", "unknown-class", "nan", "missing-image", "size-mismatch", "malformed-json"])
def test_bad_input_is_named_and_skipped_or_stops_under_strict(case, tmp_path, cli, read_jsonl):
    root = tmp_path / "cs"
    write_city(root, "val", "a", "a_0", [rect("car", 1, 1, 5, 5)])
    objects = [rect("car", 2, 2, 9, 9)]
    where = "b/b_0_gtFine_polygons.json"
    if case == "polygon-2-points":
        objects.append({"label": "car", "polygon": [[1, 1], [5, 5]]})
        message = "objects[1]: polygon: needs at least 3 points, got 2"
    elif case == "unknown-class":
        objects.append(rect("spaceship", 1, 1, 5, 5))
        message = "objects[1]: label: 'spaceship' is not a Cityscapes label"
    elif case == "nan":
        objects.append({"label": "car", "polygon": [[1, 1], [float("nan"), 5], [3, 3]]})
        message = "objects[1]: polygon: coordinate is not finite: [nan, 5]"
    gt = write_city(root, "val", "b", "b_0", objects, image=case not in ("missing-image", "size-mismatch"))
    img = root / "leftImg8bit" / "val" / "b" / "b_0_leftImg8bit.png"
    if case == "missing-image":
        message = f"image: image {img} not found"
    elif case == "size-mismatch":
        img.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (65, 32)).save(img)
        message = "imgWidth/imgHeight: 64x32 in the JSON but the image b_0_leftImg8bit.png is 65x32"
    elif case == "malformed-json":
        gt.write_text('{"imgHeight": 32,\n "imgWidth": 64,\n "objects": [}\n')
        message = ":3: malformed JSON: Expecting value (column 14)"
    line = f"{root / 'gtFine' / 'val' / where}{message if message.startswith(':') else ': ' + message}"
    out = tmp_path / "o.jsonl"
    r = cli("convert", "cityscapes2odvg", root, "--split", "val", "-o", out)
    assert r.returncode == 1
    assert line in r.stderr
    recs = read_jsonl(out)
    assert recs[0]["detection"]["instances"] == [{"bbox": [1.0, 1.0, 6.0, 6.0], "label": 2, "category": "car"}]
    if case in ("polygon-2-points", "unknown-class", "nan"):  # the image stays with its good box
        assert recs[1]["detection"]["instances"] == [{"bbox": [2.0, 2.0, 10.0, 10.0], "label": 2, "category": "car"}]
    else:
        assert len(recs) == 1
    r = cli("convert", "cityscapes2odvg", root, "--split", "val", "-o", tmp_path / "s.jsonl", "--strict")
    assert r.returncode == 1
    assert r.stderr.splitlines() == [f"odvgkit: error: {line}"]
    assert not (tmp_path / "s.jsonl").exists()


def test_not_a_cityscapes_root_is_named(tmp_path, cli):
    r = cli("convert", "cityscapes2odvg", tmp_path, "--split", "val")
    assert r.stderr.splitlines() == [
        f"odvgkit: error: {tmp_path / 'gtFine' / 'val'}: no such directory (ROOT must hold gtFine/val/<city>/*_gtFine_polygons.json)"]
    r = cli("convert", "cityscapes2odvg", tmp_path, "--split", "test")
    assert r.stderr.splitlines() == ["odvgkit: error: --split 'test': choose one of train, val"]
