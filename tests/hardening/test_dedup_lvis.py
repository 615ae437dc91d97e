"""dedup lvis: --lvis-val must be an LVIS file (COCO train given by mistake would remove everything)."""

from __future__ import annotations

from hardening._cli import (
    CATS,
    LVIS_CATS,
    coco_ann,
    coco_image,
    dump,
    jsonl,
    lvis_image,
    od_record,
    refused,
    summary,
)


def test_coco_file_as_lvis_val_is_refused(work):
    dump(work / "train.json", {"images": [coco_image(i) for i in (1, 2)], "annotations": [coco_ann(1, 1)], "categories": CATS})
    refused(work, "dedup", "lvis", "--coco-train", "train.json", "--lvis-val", "train.json", "-o", "out.json",
            fragments=("train.json: --lvis-val expects the LVIS v1 val json", "got a coco file"))


def test_odvg_or_mdetr_as_lvis_val_is_refused(work):
    dump(work / "train.json", {"images": [coco_image(1)], "annotations": [], "categories": CATS})
    jsonl(work / "od.jsonl", [od_record()])
    refused(work, "dedup", "lvis", "--coco-train", "train.json", "--lvis-val", "od.jsonl", "-o", "out.json",
            fragments=("od.jsonl: expected the LVIS v1 val json, got ODVG records",))
    dump(work / "m.json", {"images": [{"id": 1, "file_name": "x.jpg", "original_id": 1}], "annotations": []})
    refused(work, "dedup", "lvis", "--coco-train", "train.json", "--lvis-val", "m.json", "-o", "out.json",
            fragments=("got a mdetr file",))


def test_real_lvis_val_still_works(work):
    dump(work / "train.json", {"images": [coco_image(i) for i in (1, 2, 3)], "annotations": [], "categories": CATS})
    dump(work / "val.json", {"images": [lvis_image(2)], "annotations": [], "categories": LVIS_CATS})
    r, doc = summary(work, "dedup", "lvis", "--coco-train", "train.json", "--lvis-val", "val.json", "-o", "out.json")
    assert r.returncode == 0, r.stderr
    assert doc["removed_images"] == 1 and doc["train_images"] == 3
