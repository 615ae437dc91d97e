"""browse render: records without an image name are skipped and counted; far-off boxes are drawn."""

from __future__ import annotations

from hardening._cli import count, examples, jpeg, jsonl, od_record, summary
from PIL import Image


def test_record_without_filename_is_a_counted_skip(work):
    jpeg(work / "img" / "a.jpg")
    recs = [od_record("a.jpg"), {k: v for k, v in od_record().items() if k != "filename"}, od_record(None), od_record("")]
    jsonl(work / "od.jsonl", recs)
    _r, doc = summary(work, "browse", "render", "od.jsonl", "--images-root", "img", "-o", "out")
    assert doc["images written"] == 1
    assert doc["records skipped (no filename)"] == 3
    assert count(doc, "missing-filename") == 3
    assert "od.jsonl:2: filename: missing or not an image path (None); record not drawn" in examples(doc)
    assert sorted(p.name for p in (work / "out").iterdir()) == ["000001_a.jpg"]


def test_astronomical_coordinates_are_drawn_clamped(work):
    jpeg(work / "img" / "a.jpg", (40, 30))
    boxes = [[1, 1e300, 5, 1e301], [1e300, 1e300, 1e301, 1e301], [-1e300, -1e300, 2**80, 2**80], [2.0, 3.0, 12.0, 11.0]]
    rec = od_record("a.jpg", detection={"instances": [{"bbox": b, "label": 0, "category": "cat"} for b in boxes]})
    jsonl(work / "od.jsonl", [rec])
    r, doc = summary(work, "browse", "render", "od.jsonl", "--images-root", "img", "-o", "out", "--format", "png")
    assert r.returncode == 0, r.stderr
    assert doc["images written"] == 1 and doc["boxes drawn"] == 4
    with Image.open(work / "out" / "000001_a.png") as im:
        assert im.width >= 40
