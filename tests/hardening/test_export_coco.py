"""export coco: bad lines refused and reported once; image ids kept (record image_id / --reference)."""

from __future__ import annotations

import json

from conftest import TINY_COCO
from hardening._cli import count, examples, jsonl, od_record, summary, vg_record


def test_bad_records_are_reported_once_and_not_copied(work):
    recs = [
        od_record("a.jpg"),
        {k: v for k, v in od_record().items() if k != "filename"},
        od_record("c.jpg", height="30"),
        od_record("d.jpg", width=40.5),
        od_record("e.jpg", height=True),
    ]
    path = jsonl(work / "od.jsonl", recs)
    with path.open("a") as fh:
        fh.write("{not json\n")
    r, doc = summary(work, "export", "coco", "od.jsonl", "-o", "c.json")
    assert r.returncode == 1
    assert count(doc, "bad-image") == 4 and count(doc, "malformed-json") == 1  # once each, not twice
    ex = examples(doc)
    assert "od.jsonl:2: filename: missing or not a string: None" in ex
    assert "od.jsonl:3: height: must be a positive integer, got '30'" in ex
    assert "od.jsonl:4: width: must be a positive integer, got 40.5" in ex
    out = json.loads((work / "c.json").read_text())
    assert [im["file_name"] for im in out["images"]] == ["a.jpg"]
    assert [a["image_id"] for a in out["annotations"]] == [out["images"][0]["id"]]


def test_spans_outside_the_caption_are_not_copied(work):
    bad = vg_record("b.jpg")
    bad["grounding"]["regions"].append({"bbox": [1.0, 1.0, 5.0, 5.0], "phrase": "dog", "tokens_positive": [[4, 40]]})
    jsonl(work / "vg.jsonl", [vg_record("a.jpg"), bad])
    _r, doc = summary(work, "export", "coco", "vg.jsonl", "-o", "c.json")
    assert count(doc, "bad-span") == 1
    assert "vg.jsonl:2: grounding.regions[1].tokens_positive: span [4, 40] is outside the caption (length 11)" in examples(doc)
    out = json.loads((work / "c.json").read_text())
    assert len(out["images"]) == 2 and len(out["annotations"]) == 2
    assert all(a["tokens_positive"] == [[0, 11]] for a in out["annotations"])


def test_record_image_ids_are_kept(work):
    jsonl(work / "od.jsonl", [od_record("a.jpg", image_id=397133), od_record("b.jpg", image_id=42)])
    _r, doc = summary(work, "export", "coco", "od.jsonl", "-o", "c.json")
    out = json.loads((work / "c.json").read_text())
    assert [im["id"] for im in out["images"]] == [397133, 42]
    assert [a["image_id"] for a in out["annotations"]] == [397133, 42]
    assert doc["not exported (not in ODVG)"] == "crowd boxes, segmentation; area = box w*h"


def test_reference_gives_back_the_original_image_and_category_ids(work):
    """coco2odvg drops the ids; --reference maps them back by file name and category name, so
    the export's ids are the original file's (what COCO predictions refer to)."""
    original = TINY_COCO / "annotations" / "instances_val2017.json"
    summary(work, "convert", "coco2odvg", str(original), "-o", "od.jsonl", "--label-map", "lm.json")
    r, _doc = summary(work, "export", "coco", "od.jsonl", "--label-map", "lm.json", "--reference", str(original),
                     "-o", "c.json")
    assert r.returncode == 0, r.stderr
    src = json.loads(original.read_text())
    out = json.loads((work / "c.json").read_text())
    ids = {im["file_name"]: im["id"] for im in src["images"]}
    assert [im["id"] for im in out["images"]] == [ids[im["file_name"]] for im in out["images"]]
    assert {im["id"] for im in out["images"]} == set(ids.values())
    cats = {c["name"]: c["id"] for c in src["categories"]}
    assert all(c["id"] == cats[c["name"]] for c in out["categories"])
    # every exported box is a non-crowd original box of the same image and category
    orig = {(a["image_id"], a["category_id"], tuple(round(v, 3) for v in a["bbox"])) for a in src["annotations"] if not a["iscrowd"]}
    got = {(a["image_id"], a["category_id"], tuple(round(v, 3) for v in a["bbox"])) for a in out["annotations"]}
    assert got <= orig and len(got) > 0


def test_reference_without_the_image_is_a_named_error(work):
    from hardening._cli import coco_image, dump

    dump(work / "ref.json", {"images": [coco_image(1)], "annotations": [], "categories": [{"id": 5, "name": "cat"}]})
    jsonl(work / "od.jsonl", [od_record("000000000001.jpg"), od_record("zzz.jpg")])
    _r, doc = summary(work, "export", "coco", "od.jsonl", "--reference", "ref.json", "-o", "c.json")
    assert "od.jsonl:2: filename: 'zzz.jpg' is not an image of ref.json" in examples(doc)
    out = json.loads((work / "c.json").read_text())
    assert [im["id"] for im in out["images"]] == [1]
    assert [a["category_id"] for a in out["annotations"]] == [5]


def test_converter_image_ids_survive_export(work):
    """coco2odvg/lvis2odvg --image-ids put the source id on each record (last field; the fast
    JSONL path and the record path agree); export coco then writes the original ids."""
    from hardening._cli import CATS, LVIS_CATS, coco_ann, coco_image, dump, lvis_image

    dump(work / "c.json", {"images": [coco_image(397133), coco_image(5)], "annotations": [coco_ann(1, 5)], "categories": CATS})
    dump(work / "l.json", {"images": [lvis_image(139), lvis_image(285)], "annotations": [coco_ann(1, 285)],
                           "categories": LVIS_CATS})
    summary(work, "convert", "coco2odvg", "c.json", "--image-ids", "-o", "c.jsonl", "--label-map", "clm.json")
    summary(work, "convert", "coco2odvg", "c.json", "--image-ids", "-o", "c.parquet", "--label-map", "clm2.json")
    summary(work, "convert", "lvis2odvg", "l.json", "--image-ids", "-o", "l.jsonl", "--label-map", "llm.json")
    summary(work, "convert", "lvis2odvg", "l.json", "--image-ids", "-o", "l.parquet", "--label-map", "llm2.json")
    from odvgkit.io import read_records

    for stem, ids in (("c", [397133, 5]), ("l", [139, 285])):
        lines = [json.loads(line) for line in (work / f"{stem}.jsonl").read_text().splitlines()]
        assert [r["image_id"] for r in lines] == ids and all(list(r)[-1] == "image_id" for r in lines)
        assert [r for _, r in read_records(work / f"{stem}.parquet")] == lines
        summary(work, "export", "coco", f"{stem}.jsonl", "-o", f"{stem}_coco.json")
        out = json.loads((work / f"{stem}_coco.json").read_text())
        assert [im["id"] for im in out["images"]] == ids
        assert [a["image_id"] for a in out["annotations"]] == [ids[1]]
    summary(work, "convert", "coco2odvg", "c.json", "-o", "plain.jsonl", "--label-map", "clm3.json")
    assert "image_id" not in (work / "plain.jsonl").read_text()  # off by default: upstream's records


def test_vg_records_of_one_image_keep_the_source_id_as_original_id(work):
    """RefCOCO-style VG files have several records (captions) per image: MDETR's layout, one image
    entry per caption (``id`` = position) with the source id in ``original_id``."""
    from hardening._cli import coco_image, dump

    dump(work / "ref.json", {"images": [coco_image(9)], "annotations": [], "categories": []})
    jsonl(work / "vg.jsonl", [vg_record("000000000009.jpg"), vg_record("000000000009.jpg"), vg_record("other.jpg", image_id=4)])
    r, _doc = summary(work, "export", "coco", "vg.jsonl", "--reference", "ref.json", "-o", "c.json")
    assert r.returncode == 0, r.stderr
    out = json.loads((work / "c.json").read_text())
    assert [(im["id"], im.get("original_id")) for im in out["images"]] == [(1, 9), (2, 9), (3, 4)]
    assert [a["image_id"] for a in out["annotations"]] == [1, 2, 3]
    summary(work, "export", "coco", "vg.jsonl", "-o", "plain.json")
    plain = json.loads((work / "plain.json").read_text())
    assert [(im["id"], im.get("original_id")) for im in plain["images"]] == [(1, None), (2, None), (3, 4)]


def test_wrong_shapes_are_named_not_crashes(work):
    """Found by the fuzz test: blocks of the wrong JSON type crashed export coco and stats."""
    od = [
        od_record("a.jpg"),
        od_record("b.jpg", detection=[1]),
        od_record("c.jpg", detection={"instances": 5}),
        od_record("f.jpg", detection={"instances": [7, {"bbox": [1, 1, 5, 5], "label": True}]}),
    ]
    vg = [
        vg_record("a.jpg"),
        {**vg_record("d.jpg"), "grounding": {"caption": None, "regions": []}},
        {**vg_record("e.jpg"), "grounding": {"caption": "x", "regions": [3]}},
    ]
    jsonl(work / "od.jsonl", od)
    jsonl(work / "vg.jsonl", vg)
    r, doc = summary(work, "export", "coco", "od.jsonl", "-o", "od.json")
    ex = examples(doc)
    assert "od.jsonl:2: detection: must be an object, got list" in ex
    assert "od.jsonl:3: detection.instances: must be a list, got int" in ex
    assert count(doc, "bad-instance") == 2
    r, doc = summary(work, "export", "coco", "vg.jsonl", "-o", "vg.json")
    ex = examples(doc)
    assert "vg.jsonl:2: grounding.caption: must be a string, got None" in ex
    assert "vg.jsonl:3: grounding.regions[0]: must be an object" in ex
    for name in ("od.jsonl", "vg.jsonl"):
        r, doc = summary(work, "stats", name)
        assert r.returncode == 0, r.stderr
