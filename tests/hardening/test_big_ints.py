"""Integers beyond 64 bits (ids, category ids, tokens_positive): named and skipped, no OverflowError."""

from __future__ import annotations

import json

from hardening._cli import CATS, coco_ann, coco_image, count, dump, examples, mdetr_ann, mdetr_image, summary

HUGE = 2**70
TOO_BIG = "expected int <= 9223372036854775807"


def _records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_coco2odvg_huge_ids_are_bad_elements(work):
    doc = {
        "images": [coco_image(1), coco_image(HUGE)],
        "annotations": [coco_ann(1, 1), coco_ann(2, HUGE), coco_ann(3, 1, category_id=HUGE)],
        "categories": [*CATS, {"id": HUGE, "name": "giant"}],
    }
    dump(work / "in.json", doc)
    r, s = summary(work, "convert", "coco2odvg", "in.json", "-o", "out.jsonl")
    assert r.returncode == 1  # errors were counted
    ex = examples(s)
    assert f"in.json: images[1]: id: {TOO_BIG}" in ex
    assert f"in.json: annotations[1]: image_id: {TOO_BIG}" in ex
    assert f"in.json: annotations[2]: category_id: {TOO_BIG}" in ex
    assert f"in.json: categories[2]: id: {TOO_BIG}" in ex
    assert count(s, "bad-element") == 4
    recs = _records(work / "out.jsonl")  # the one good image and its one good box survive
    assert [r["filename"] for r in recs] == ["000000000001.jpg"]
    assert [i["label"] for i in recs[0]["detection"]["instances"]] == [0]


def test_goldg2odvg_huge_spans_and_ids(work):
    doc = {
        "images": [mdetr_image(1), mdetr_image(2)],
        "annotations": [mdetr_ann(1, 1), mdetr_ann(2, 2, spans=[[0, HUGE]]), mdetr_ann(3, HUGE),
                        mdetr_ann(4, 1, iscrowd=-HUGE)],
        "categories": [],
    }
    dump(work / "in.json", doc)
    _r, s = summary(work, "convert", "goldg2odvg", "in.json", "-o", "out.jsonl")
    ex = examples(s)
    assert f"in.json: annotations[1]: tokens_positive[0][1]: {TOO_BIG}" in ex
    assert f"in.json: annotations[2]: image_id: {TOO_BIG}" in ex
    assert "in.json: annotations[3]: iscrowd: expected int >= -9223372036854775808" in ex
    assert [r["filename"] for r in _records(work / "out.jsonl")] == ["1.jpg"]


def test_goldg2odvg_sizes_beyond_64_bits_or_infinite(work):
    doc = {"images": [mdetr_image(1, height="1e400"), mdetr_image(2, width=str(HUGE)), mdetr_image(3)],
           "annotations": [mdetr_ann(1, 1), mdetr_ann(2, 2), mdetr_ann(3, 3)], "categories": []}
    dump(work / "in.json", doc)
    _r, s = summary(work, "convert", "goldg2odvg", "in.json", "-o", "out.jsonl")
    assert count(s, "bad-size") == 2
    assert [r["filename"] for r in _records(work / "out.jsonl")] == ["3.jpg"]
