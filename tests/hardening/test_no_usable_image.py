"""coco2odvg / lvis2odvg with annotations but no usable image: one error, not an IndexError."""

from __future__ import annotations

import pytest
from hardening._cli import CATS, LVIS_CATS, coco_ann, coco_image, dump, lvis_image, refused, summary

CASES = {
    "images-empty": ([], "images[] is empty"),
    "file_name-wrong-type": ([{"id": 1, "file_name": 7, "height": 30, "width": 40}], "1 malformed"),
    "file_name-missing": ([{"id": 1, "height": 30, "width": 40}], "1 malformed"),
    "height-missing": ([{"id": 1, "file_name": "a.jpg", "width": 40}], "1 malformed"),
    "width-string": ([{"id": 1, "file_name": "a.jpg", "height": 30, "width": "40"}], "1 malformed"),
    "zero-size": ([{"id": 1, "file_name": "a.jpg", "height": 0, "width": 40},
                   {"id": 2, "file_name": "b.jpg", "height": 30, "width": -1}], "2 without a positive size"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_coco2odvg(work, case):
    images, why = CASES[case]
    dump(work / "in.json", {"images": images, "annotations": [coco_ann(1, 1), coco_ann(2, 2)], "categories": CATS})
    line = refused(work, "convert", "coco2odvg", "in.json", "-o", "out.jsonl",
                   fragments=("in.json: images: no usable image for 2 annotations", why))
    assert line.count("odvgkit: error:") == 1


@pytest.mark.parametrize("case", sorted(CASES))
def test_lvis2odvg(work, case):
    images, why = CASES[case]
    # LVIS names images by coco_url; file_name is accepted instead, so the same cases apply
    images = [{k: v for k, v in im.items()} for im in images]
    dump(work / "in.json", {"images": images, "annotations": [coco_ann(1, 1), coco_ann(2, 2)], "categories": LVIS_CATS})
    refused(work, "convert", "lvis2odvg", "in.json", "-o", "out.jsonl", "--label-map", "lm.json",
            fragments=("in.json: images: no usable image for 2 annotations", why))


def test_lvis2odvg_image_without_any_name(work):
    dump(work / "in.json", {"images": [lvis_image(1, coco_url=None)], "annotations": [coco_ann(1, 1)],
                            "categories": LVIS_CATS})
    refused(work, "convert", "lvis2odvg", "in.json", "-o", "out.jsonl", "--label-map", "lm.json",
            fragments=("no usable image for 1 annotation:", "1 malformed"))


def test_images_present_but_no_annotations_is_a_valid_empty_conversion(work):
    """No annotation at all is not this mistake: images without boxes are records upstream writes."""
    dump(work / "in.json", {"images": [coco_image(1)], "annotations": [], "categories": CATS})
    r, doc = summary(work, "convert", "coco2odvg", "in.json", "-o", "out.jsonl")
    assert r.returncode == 0, r.stderr
    assert doc["records_written"] == 1
