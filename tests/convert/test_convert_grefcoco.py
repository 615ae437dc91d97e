"""grefcoco2odvg from the official file layout (grefs(unc).json + instances.json)."""

from __future__ import annotations

import json

REFS = [
    {"ref_id": 1, "image_id": 1, "split": "train", "ann_id": [10, 11], "category_id": [18, 18], "no_target": False,
     "file_name": "COCO_train2014_000000000001_1.jpg",
     "sentences": [{"sent": "two dogs", "raw": "Two dogs!", "sent_id": 5, "tokens": ["two", "dogs"]},
                   {"sent": "both dogs", "raw": "both dogs", "sent_id": 6, "tokens": ["both", "dogs"]}]},
    {"ref_id": 2, "image_id": 1, "split": "train", "ann_id": [-1], "category_id": [-1], "no_target": True,
     "sentences": [{"sent": "the zebra", "raw": "the zebra", "sent_id": 7}]},
    {"ref_id": 3, "image_id": 1, "split": "val", "ann_id": [10], "category_id": [18], "no_target": False,
     "sentences": [{"sent": "left dog", "raw": "left dog", "sent_id": 8}]},
]
INSTANCES = {
    "images": [{"id": 1, "file_name": "COCO_train2014_000000000001.jpg", "height": 100, "width": 120}],
    "annotations": [
        {"id": 10, "image_id": 1, "bbox": [1, 2, 10, 20], "area": 200, "category_id": 18, "segmentation": [[1, 2]]},
        {"id": 11, "image_id": 1, "bbox": [50.5, 2, 10, 20], "area": 200, "category_id": 18, "segmentation": []},
    ],
    "categories": [{"id": 18, "name": "dog"}],
}
DOGS = [[1, 2, 11, 22], [50.5, 2, 60.5, 22]]


def test_grefcoco_train_excludes_no_target(tmp_path, dump, read_jsonl, cli):
    grefs = dump(tmp_path / "grefs(unc).json", REFS)
    inst = dump(tmp_path / "instances.json", INSTANCES)
    r = cli("convert", "grefcoco2odvg", grefs, inst, "-q")
    assert r.returncode == 0, r.stderr
    recs = read_jsonl(tmp_path / "grefcoco_train_vg.json")
    assert recs == [
        {"filename": "COCO_train2014_000000000001.jpg", "height": 100, "width": 120,
         "grounding": {"caption": "two dogs", "regions": [{"bbox": DOGS, "phrase": "two dogs", "tokens_positive": [[0, 8]]}]},
         "ref_id": 1, "sent_id": 5},
        {"filename": "COCO_train2014_000000000001.jpg", "height": 100, "width": 120,
         "grounding": {"caption": "both dogs", "regions": [{"bbox": DOGS, "phrase": "both dogs", "tokens_positive": [[0, 9]]}]},
         "ref_id": 1, "sent_id": 6},
    ]


def test_grefcoco_no_target_for_evaluation(tmp_path, dump, read_jsonl, cli):
    grefs = dump(tmp_path / "grefs(unc).json", REFS)
    inst = dump(tmp_path / "instances.json", INSTANCES)
    r = cli("convert", "grefcoco2odvg", grefs, inst, "--no-target", "only", "-o", tmp_path / "nt.jsonl", "-q")
    assert r.returncode == 0, r.stderr
    assert read_jsonl(tmp_path / "nt.jsonl") == [
        {"filename": "COCO_train2014_000000000001.jpg", "height": 100, "width": 120,
         "grounding": {"caption": "the zebra", "regions": []}, "ref_id": 2, "sent_id": 7, "no_target": True},
    ]
    r = cli("convert", "grefcoco2odvg", grefs, inst, "--split", "val", "--caption-field", "raw",
            "--no-target", "include", "-o", tmp_path / "val.jsonl", "-q")
    assert r.returncode == 0, r.stderr
    val = read_jsonl(tmp_path / "val.jsonl")
    assert [(x["grounding"]["caption"], x["grounding"]["regions"][0]["bbox"]) for x in val] == [("left dog", DOGS[0])]


def test_grefcoco_bad_references(tmp_path, dump, cli):
    refs = [{**REFS[0], "ann_id": [10, 77]}]
    grefs = dump(tmp_path / "grefs(unc).json", refs)
    inst = dump(tmp_path / "instances.json", INSTANCES)
    r = cli("convert", "grefcoco2odvg", grefs, inst, "-o", tmp_path / "o.jsonl")
    assert r.returncode == 1
    assert "[0]: ann_id: annotation 77 is not in instances.json" in r.stderr
    r = cli("convert", "grefcoco2odvg", grefs, inst, "--split", "testC", "-o", tmp_path / "o.jsonl")
    assert r.returncode == 1 and "no refs with split 'testC' (splits: train)" in r.stderr


def test_grefcoco_crowd_targets_and_scalar_ann_id(tmp_path, dump, read_jsonl, cli):
    """``ann_id`` may be a bare int (grefer's ``_toList``); crowd targets are skipped as the official
    loaders skip them; an expression left with only crowd targets has no training record."""
    instances = {**INSTANCES, "annotations": [*INSTANCES["annotations"],
                 {"id": 12, "image_id": 1, "bbox": [0, 0, 100, 90], "area": 9000, "iscrowd": 1, "category_id": 18}]}
    refs = [
        {"ref_id": 4, "image_id": 1, "split": "train", "ann_id": 11, "category_id": 18,
         "sentences": [{"sent": "right dog", "raw": "right dog", "sent_id": 9, "tokens": ["right", "dog"]}]},
        {"ref_id": 5, "image_id": 1, "split": "train", "ann_id": [10, 12], "category_id": [18, 18],
         "sentences": [{"sent": "dogs", "raw": "dogs", "sent_id": 10, "tokens": ["dogs"]}]},
        {"ref_id": 6, "image_id": 1, "split": "train", "ann_id": [12], "category_id": [18],
         "sentences": [{"sent": "crowd", "raw": "crowd", "sent_id": 11, "tokens": ["crowd"]}]},
    ]
    grefs = dump(tmp_path / "grefs(unc).json", refs)
    inst = dump(tmp_path / "instances.json", instances)
    r = cli("convert", "grefcoco2odvg", grefs, inst, "-o", tmp_path / "o.jsonl", "--json")
    assert r.returncode == 0, r.stderr
    recs = read_jsonl(tmp_path / "o.jsonl")
    assert [(x["ref_id"], x["grounding"]["regions"][0]["bbox"]) for x in recs] == [(4, DOGS[1]), (5, DOGS[0])]
    summary = json.loads(r.stdout)
    assert summary["dropped:crowd-target"] == 2
    assert summary["dropped:expression-without-valid-box"] == 1
