"""export coco: a COCO json any COCO tool reads, and coco2odvg ∘ export coco is lossless."""

from __future__ import annotations

import json
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odvgkit.convert.coco import coco_to_odvg
from odvgkit.convert.export_coco import exact_extent, export_coco
from odvgkit.convert.goldg import goldg_to_odvg
from odvgkit.io import write_label_map, write_records

coord = st.floats(min_value=-50, max_value=700, allow_nan=False, allow_infinity=False)
extent = st.one_of(st.floats(min_value=0, max_value=400, allow_nan=False), st.sampled_from([0.0, 0.5, 1.0, 1.5]))


@st.composite
def coco_docs(draw):
    cat_ids = draw(st.lists(st.integers(1, 500), min_size=1, max_size=6, unique=True))
    n_img = draw(st.integers(1, 5))
    images = [{"id": 1000 - i, "file_name": f"d/{i}é.jpg", "height": draw(st.integers(1, 640)),
               "width": draw(st.integers(1, 640))} for i in range(n_img)]
    anns = []
    for k in range(draw(st.integers(0, 25))):
        w, h = draw(extent), draw(extent)
        anns.append({"id": k + 1, "image_id": images[draw(st.integers(0, n_img - 1))]["id"],
                     "category_id": draw(st.sampled_from(cat_ids)), "bbox": [draw(coord), draw(coord), w, h],
                     "area": w * h, "iscrowd": draw(st.sampled_from([0, 0, 0, 1]))})
    cats = [{"id": c, "name": f"class {c} ünï"} for c in cat_ids]
    return {"images": images, "annotations": anns, "categories": cats}


def _od(conv):
    return [(r["filename"], r["height"], r["width"],
             [(i["bbox"], i["label"], i["category"]) for i in r["detection"]["instances"]]) for r in conv.records]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=coco_docs())
def test_coco2odvg_of_export_is_lossless(tmp_path_factory, doc):
    d = tmp_path_factory.mktemp("rt")
    src = d / "in.json"
    src.write_text(json.dumps(doc), "utf-8")
    first = coco_to_odvg(src)
    records = list(first.records)
    write_records(d / "od.jsonl", records)
    write_label_map(d / "lm.json", first.label_map)
    export_coco(d / "od.jsonl", d / "coco.json", label_map=first.label_map)
    again = coco_to_odvg(d / "coco.json")
    assert again.label_map == first.label_map
    expected = [(r["filename"], r["height"], r["width"],
                 [(i["bbox"], i["label"], i["category"]) for i in r["detection"]["instances"]]) for r in records]
    assert _od(again) == expected  # every kept box, bit for bit


@given(lo=st.floats(-1e4, 1e4), w=st.floats(1, 1e4))
def test_exact_extent_gives_back_x2_and_keeps_the_1px_threshold(lo, w):
    hi = lo + w
    got = exact_extent(lo, hi)
    assert lo + got == hi
    assert got >= 1
    assert math.isclose(got, w, rel_tol=1e-9, abs_tol=1e-9)


def test_export_is_readable_by_pycocotools_and_keeps_extras(tmp_path):
    from pycocotools.coco import COCO

    write_records(tmp_path / "od.jsonl", [
        {"filename": "a.jpg", "height": 10, "width": 20, "detection": {"instances": [
            {"bbox": [1, 2, 4, 6], "label": 1, "category": "dog", "score": 0.5, "is_group_of": True}]},
         "neg_category_ids": [0]},
        {"filename": "b.jpg", "height": 10, "width": 20, "detection": {"instances": []}},
    ])
    export_coco(tmp_path / "od.jsonl", tmp_path / "c.json", label_map={"0": "cat", "1": "dog"}, category_ids="coco80")
    coco = COCO(str(tmp_path / "c.json"))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["cat", "dog"]
    (ann,) = coco.loadAnns(coco.getAnnIds())
    assert ann["category_id"] == 2 and ann["bbox"] == [1, 2, 3, 4] and ann["area"] == 12
    assert ann["score"] == 0.5 and ann["is_group_of"] is True
    assert coco.loadImgs([1])[0]["neg_category_ids"] == [1]
    assert len(coco.getImgIds()) == 2


def test_vg_export_round_trips_through_goldg(tmp_path, read_jsonl):
    records = [
        {"filename": "a.jpg", "height": 100, "width": 200, "grounding": {
            "caption": "the dog near the dog and a red cat", "regions": [
                {"bbox": [[1, 2, 11, 12], [50, 2, 60, 12]], "phrase": "dog", "tokens_positive": [[4, 7]]},
                {"bbox": [5, 5, 25, 25], "phrase": "red cat", "tokens_positive": [[27, 30], [31, 34]]},
            ]}},
        {"filename": "b.jpg", "height": 50, "width": 50, "grounding": {
            "caption": "blue-green boat", "regions": [
                {"bbox": [0, 0, 10, 10], "phrase": ["blue", "green boat"], "tokens_positive": [[0, 4], [5, 10], [11, 15]]},
            ]}},
    ]
    write_records(tmp_path / "vg.jsonl", records)
    stats = export_coco(tmp_path / "vg.jsonl", tmp_path / "vg_coco.json")
    doc = json.loads((tmp_path / "vg_coco.json").read_text("utf-8"))
    assert [c["name"] for c in doc["categories"]] == ["dog", "red cat", "blue green boat"]
    assert doc["images"][0]["caption"] == "the dog near the dog and a red cat"
    assert stats["annotations"] == 4
    assert list(goldg_to_odvg(tmp_path / "vg_coco.json").records) == records
