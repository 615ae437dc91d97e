"""coco2odvg on Roboflow COCO exports: the unused root category is left out, labels are not shifted."""

from __future__ import annotations

import json

from odvgkit.convert.coco import coco_to_odvg
from odvgkit.errors import ProblemLog


def roboflow_export(root_used: bool = False) -> dict:
    """The shape of a Roboflow 'COCO JSON' export (Brain Tumor style): category 0 is the project."""
    cats = [
        {"id": 0, "name": "tumor-xYz1", "supercategory": "none"},
        {"id": 1, "name": "glioma", "supercategory": "tumor-xYz1"},
        {"id": 2, "name": "meningioma", "supercategory": "tumor-xYz1"},
        {"id": 3, "name": "pituitary", "supercategory": "tumor-xYz1"},
    ]
    images = [
        {"id": 0, "license": 1, "file_name": "img0_jpg.rf.3f1a.jpg", "height": 640, "width": 640, "date_captured": "2023-08-21T10:00:00+00:00"},
        {"id": 1, "license": 1, "file_name": "img1_jpg.rf.9c2b.jpg", "height": 640, "width": 640, "date_captured": "2023-08-21T10:00:00+00:00"},
    ]
    anns = [
        {"id": 0, "image_id": 0, "category_id": 2, "bbox": [100, 120, 50.5, 40], "area": 2020, "segmentation": [], "iscrowd": 0},
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 30], "area": 600, "segmentation": [], "iscrowd": 0},
        {"id": 2, "image_id": 1, "category_id": 3, "bbox": [300, 200, 64, 64], "area": 4096, "segmentation": [], "iscrowd": 0},
    ]
    if root_used:
        anns.append({"id": 3, "image_id": 0, "category_id": 0, "bbox": [1, 1, 5, 5], "area": 25, "segmentation": [], "iscrowd": 0})
    return {"info": {"year": "2023", "description": "Exported from roboflow.com"},
            "licenses": [{"id": 1, "url": "https://creativecommons.org/licenses/by/4.0/", "name": "CC BY 4.0"}],
            "categories": cats, "images": images, "annotations": anns}


def test_roboflow_root_category_is_dropped_and_labels_start_at_zero(tmp_path, cli, read_jsonl, dump):
    src = dump(tmp_path / "train" / "_annotations.coco.json", roboflow_export())
    out = tmp_path / "train_od.jsonl"
    r = cli("convert", "coco2odvg", src, "-o", out, "--label-map", tmp_path / "lm.json", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "lm.json").read_text()) == {"0": "glioma", "1": "meningioma", "2": "pituitary"}
    assert read_jsonl(out) == [
        {"filename": "img0_jpg.rf.3f1a.jpg", "height": 640, "width": 640, "detection": {"instances": [
            {"bbox": [100.0, 120.0, 150.5, 160.0], "label": 1, "category": "meningioma"}]}},
        {"filename": "img1_jpg.rf.9c2b.jpg", "height": 640, "width": 640, "detection": {"instances": [
            {"bbox": [10.0, 10.0, 30.0, 40.0], "label": 0, "category": "glioma"},
            {"bbox": [300.0, 200.0, 364.0, 264.0], "label": 2, "category": "pituitary"}]}},
    ]
    s = json.loads(r.stdout)
    assert s["categories_dropped:roboflow-root"] == 1
    assert s["problems"]["errors"] == 0
    assert s["problems"]["examples"] == [
        f"{src}: categories[id=0]: name: 'tumor-xYz1' has no annotations and is the supercategory of every "
        "other category (a Roboflow export's root): left out of the label map"]


def test_a_used_root_or_a_plain_coco_file_is_left_alone(tmp_path, tiny_coco):
    used = tmp_path / "used.json"
    used.write_text(json.dumps(roboflow_export(root_used=True)))
    conv = coco_to_odvg(used, problems=ProblemLog())
    assert conv.label_map == {"0": "tumor-xYz1", "1": "glioma", "2": "meningioma", "3": "pituitary"}
    list(conv.records)
    assert conv.stats["categories_dropped:roboflow-root"] == 0
    # real COCO: person is its own supercategory (and used); nothing may be dropped
    coco = coco_to_odvg(tiny_coco / "instances_val2017.json", problems=ProblemLog())
    assert len(coco.label_map) == 80 and coco.label_map["0"] == "person"
    # opting out keeps upstream's shifted labels
    kept = coco_to_odvg(tmp_path / "used.json", problems=ProblemLog(), drop_roboflow_root=False)
    assert len(kept.label_map) == 4
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps(roboflow_export()))
    shifted = coco_to_odvg(plain, problems=ProblemLog(), drop_roboflow_root=False)
    assert shifted.label_map["0"] == "tumor-xYz1"
    assert [i["label"] for r in shifted.records for i in r["detection"]["instances"]] == [2, 1, 3]
