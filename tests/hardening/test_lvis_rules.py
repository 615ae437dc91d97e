"""lvis2odvg shares coco2odvg's rules: duplicate category ids refused, duplicate image ids resolved
the same way (warned), federated ids that name no category left out (warned, counted)."""

from __future__ import annotations

import json

from hardening._cli import (
    CATS,
    LVIS_CATS,
    coco_ann,
    coco_image,
    count,
    dump,
    examples,
    lvis_image,
    refused,
    summary,
)


def _records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_duplicate_category_id_is_refused_like_coco(work):
    cats = [*LVIS_CATS, {"id": 2, "name": "wolf", "frequency": "r"}]
    dump(work / "l.json", {"images": [lvis_image(1)], "annotations": [coco_ann(1, 1)], "categories": cats})
    dump(work / "c.json", {"images": [coco_image(1)], "annotations": [coco_ann(1, 1)], "categories": [*CATS, {"id": 2, "name": "wolf"}]})
    a = refused(work, "convert", "lvis2odvg", "l.json", "-o", "l.jsonl", "--label-map", "lm.json",
                fragments=("l.json: categories: duplicate category id 2",))
    b = refused(work, "convert", "coco2odvg", "c.json", "-o", "c.jsonl", "--label-map", "lm.json",
                fragments=("c.json: categories: duplicate category id 2",))
    assert a.replace("l.json", "X") == b.replace("c.json", "X")


def test_duplicate_image_id_same_rule_as_coco(work):
    """Image 1 appears twice (the second with another size): one record at the first position,
    the last entry's content, the boxes of image 1 stay on image 1 — as coco2odvg does."""
    images = [lvis_image(1), lvis_image(2), lvis_image(1, width=80)]
    anns = [coco_ann(1, 1), coco_ann(2, 2, bbox=[20.0, 10.0, 5.0, 5.0])]
    dump(work / "l.json", {"images": images, "annotations": anns, "categories": LVIS_CATS})
    r, doc = summary(work, "convert", "lvis2odvg", "l.json", "-o", "l.jsonl", "--label-map", "lm.json")
    assert r.returncode == 0, r.stderr
    assert count(doc, "duplicate-image-id") == 1
    assert "l.json: images[2]: id: image id 1 appears again; its last entry is used" in examples(doc)
    recs = _records(work / "l.jsonl")
    assert [(r["filename"], r["width"]) for r in recs] == [("train2017/000000000001.jpg", 80), ("train2017/000000000002.jpg", 40)]
    assert [i["bbox"] for i in recs[0]["detection"]["instances"]] == [[2.0, 3.0, 12.0, 11.0]]
    assert [i["bbox"] for i in recs[1]["detection"]["instances"]] == [[20.0, 10.0, 25.0, 15.0]]
    # coco2odvg on the same images (file_name instead of coco_url) gives the same images and boxes
    cimages = [coco_image(1), coco_image(2), coco_image(1, width=80)]
    dump(work / "c.json", {"images": cimages, "annotations": anns, "categories": CATS})
    summary(work, "convert", "coco2odvg", "c.json", "-o", "c.jsonl", "--label-map", "clm.json")
    crecs = _records(work / "c.jsonl")
    assert [(r["width"], r["detection"]["instances"]) for r in crecs] == [(r["width"], r["detection"]["instances"]) for r in recs]


def test_federated_ids_not_in_categories(work):
    images = [lvis_image(1, neg_category_ids=[2, 7]), lvis_image(2, not_exhaustive_category_ids=[9, 1])]
    dump(work / "l.json", {"images": images, "annotations": [coco_ann(1, 1), coco_ann(2, 2)], "categories": LVIS_CATS})
    r, doc = summary(work, "convert", "lvis2odvg", "l.json", "-o", "l.jsonl", "--label-map", "lm.json")
    assert r.returncode == 0, r.stderr
    assert count(doc, "unknown-federated-category") == 2
    assert doc["neg_category_ids_dropped:unknown-category"] == 1
    assert doc["not_exhaustive_category_ids_dropped:unknown-category"] == 1
    recs = _records(work / "l.jsonl")
    assert [r["neg_category_ids"] for r in recs] == [[1], []]
    assert [r["not_exhaustive_category_ids"] for r in recs] == [[], [0]]
    label_map = json.loads((work / "lm.json").read_text())
    assert all(str(k) in label_map for r in recs for k in r["neg_category_ids"] + r["not_exhaustive_category_ids"])


def test_unknown_image_is_named_by_annotation_index(work):
    anns = [coco_ann(1, 1), {"id": 2}, coco_ann(3, 5)]
    dump(work / "l.json", {"images": [lvis_image(1)], "annotations": anns, "categories": LVIS_CATS})
    _r, doc = summary(work, "convert", "lvis2odvg", "l.json", "-o", "l.jsonl", "--label-map", "lm.json")
    assert "l.json: annotations[2]: image_id: image id 5 is not in images[]" in examples(doc)
    assert any(e.startswith("l.json: annotations[1]: ") for e in examples(doc))


def test_missing_top_level_key_is_one_error(work):
    dump(work / "l.json", {"images": [lvis_image(1)], "categories": LVIS_CATS})
    refused(work, "convert", "lvis2odvg", "l.json", "-o", "l.jsonl", "--label-map", "lm.json",
            fragments=("l.json: missing top-level key 'annotations' (not an LVIS file?)",))
    dump(work / "m.json", {"annotations": [coco_ann(i, 1) for i in range(1, 50)], "categories": LVIS_CATS})
    refused(work, "convert", "lvis2odvg", "m.json", "-o", "l.jsonl", "--label-map", "lm.json",
            fragments=("m.json: missing top-level key 'images'",))
