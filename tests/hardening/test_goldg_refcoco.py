"""goldg2odvg / refcoco2odvg: a file without annotations is refused; problems name annotations[i]
(the index in the file); refcoco2odvg checks every input before it writes anything."""

from __future__ import annotations

import json

import pytest
from hardening._cli import count, dump, examples, mdetr_ann, mdetr_image, refused, summary


def _good(path):
    return dump(path, {"images": [mdetr_image(1), mdetr_image(2)], "annotations": [mdetr_ann(1, 1), mdetr_ann(2, 2)],
                       "categories": []})


@pytest.mark.parametrize("missing", ["annotations", "images"])
def test_goldg_without_a_top_level_key(work, missing):
    doc = {"images": [mdetr_image(1)], "annotations": [mdetr_ann(1, 1)], "categories": []}
    del doc[missing]
    dump(work / "in.json", doc)
    refused(work, "convert", "goldg2odvg", "in.json", "-o", "out.jsonl",
            fragments=(f"in.json: missing top-level key '{missing}' (not a MDETR grounding file?)",))


def test_problems_name_the_annotation_index_in_the_file(work):
    anns = [mdetr_ann(1, 1), {"id": 2, "bbox": "x"}, mdetr_ann(3, 9), mdetr_ann(4, 2, spans=[[0, 99]]), mdetr_ann(5, 2)]
    dump(work / "in.json", {"images": [mdetr_image(1), {"id": "bad"}, mdetr_image(2)], "annotations": anns, "categories": []})
    _r, doc = summary(work, "convert", "goldg2odvg", "in.json", "-o", "out.jsonl")
    ex = examples(doc)
    assert "in.json: annotations[2]: image_id: image id 9 is not in images[]" in ex
    assert "in.json: annotations[3] (image 2): tokens_positive: span [0, 99] is outside the caption (length 11)" in ex
    assert any(e.startswith("in.json: annotations[1]: ") for e in ex)
    assert any(e.startswith("in.json: images[1]: ") for e in ex)
    recs = [json.loads(line) for line in (work / "out.jsonl").read_text().splitlines()]
    assert [r["filename"] for r in recs] == ["1.jpg", "2.jpg"]


@pytest.mark.parametrize("strict", [False, True])
def test_refcoco_checks_every_input_before_writing(work, strict):
    _good(work / "finetune_refcoco_train.json")
    dump(work / "finetune_refcocog_train.json", {"images": [mdetr_image(1)], "categories": []})  # no annotations
    flags = ("--strict",) if strict else ()
    refused(work, "convert", "refcoco2odvg", "finetune_refcoco_train.json", "finetune_refcocog_train.json", *flags,
            fragments=("finetune_refcocog_train.json: missing top-level key 'annotations'",))


def test_refcoco_strict_stops_on_a_bad_record_of_the_second_input_before_writing(work):
    _good(work / "a_train.json")
    dump(work / "b_train.json", {"images": [mdetr_image(1)], "annotations": [mdetr_ann(1, 1), mdetr_ann(2, 7)],
                                 "categories": []})
    refused(work, "convert", "refcoco2odvg", "a_train.json", "b_train.json", "--strict",
            fragments=("b_train.json: annotations[1]: image_id: image id 7 is not in images[]",))
    _r, doc = summary(work, "convert", "refcoco2odvg", "a_train.json", "b_train.json")  # without --strict: both written
    assert count(doc, "unknown-image") == 1
    assert (work / "a_train_vg.json").is_file() and (work / "b_train_vg.json").is_file()
