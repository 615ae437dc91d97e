"""Commands that copy a COCO document element by element (o365 fix-wh / fix-names, coco2ovd,
extract coco-from-mixed) name an element they cannot read and leave it out — no ValidationError."""

from __future__ import annotations

import json

from hardening._cli import CATS, coco_ann, coco_image, count, dump, examples, summary


def test_fix_wh_and_fix_names(work):
    images = [coco_image(1), {"id": "two", "file_name": "b.jpg"}, coco_image(3)]
    dump(work / "o365.json", {"images": images, "annotations": [coco_ann(1, 1), {"image_id": [3]}],
                              "categories": [*CATS, {"id": [7], "name": "x"}, 5]})
    (work / "info.tsv").write_text("id\tfile_name\theight\twidth\n1\t000000000001.jpg\t30\t40\n3\t000000000003.jpg\t60\t80\n")
    r, doc = summary(work, "o365", "fix-wh", "o365.json", "--info", "info.tsv", "-o", "fixed.json")
    assert "Traceback" not in r.stderr
    assert any(e.startswith("o365.json: images[1]: id: ") for e in examples(doc))
    assert any(e.startswith("o365.json: annotations[1]: image_id: ") for e in examples(doc))
    out = json.loads((work / "fixed.json").read_text())
    assert [(im["id"], im["height"]) for im in out["images"]] == [(1, 30), (3, 60)]
    assert [a["image_id"] for a in out["annotations"]] == [1]
    r, doc = summary(work, "fix-names", "o365", "o365.json", "-o", "named.json")
    assert r.returncode == 0, r.stderr
    assert count(doc, "not-in-table") >= 2  # the list id and the non-object category, kept as they are
