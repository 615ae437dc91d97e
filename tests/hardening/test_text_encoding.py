"""Non-UTF-8 text is one error naming file and line; a UTF-8 BOM is accepted by every reader."""

from __future__ import annotations

import codecs
import json

import pytest
from hardening._cli import CATS, coco_ann, coco_image, jpeg, jsonl, od_record, refused, summary

BOM = codecs.BOM_UTF8
LATIN1 = "Café".encode("latin-1")  # b"Caf\xe9": what a Latin-1 export writes

OI_HEADER = "ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,IsTruncated,IsGroupOf,IsDepiction,IsInside\n"


def _oi_row(image_id: str, x_min: str = "0.1", x_max: str = "0.5") -> str:
    return f"{image_id},xclick,/m/01,1,{x_min},{x_max},0.2,0.6,0,0,0,0,0\n"


def _openimages(work, boxes: bytes, classes: bytes = b"/m/01,Cat\n"):
    (work / "boxes.csv").write_bytes(boxes)
    (work / "classes.csv").write_bytes(classes)
    for i in range(3):
        jpeg(work / "img" / f"i{i}.jpg")
    return ("convert", "openimages2odvg", ".", "--images-root", "img", "--bbox-csv", "boxes.csv",
            "--classes-csv", "classes.csv", "-o", "out.jsonl")


def test_label_map_not_utf8(work):
    jsonl(work / "od.jsonl", [od_record()])
    (work / "lm.json").write_bytes(b'{"0": "' + LATIN1 + b'"}')
    refused(work, "validate", "od.jsonl", "--label-map", "lm.json",
            fragments=("lm.json:1: not UTF-8 text: byte 0xe9 at column 11",))


def test_rename_table_not_utf8(work):
    (work / "lm.json").write_text('{"0": "cat"}')
    (work / "t.csv").write_bytes(b"old,new\ncat," + LATIN1 + b"\n")
    refused(work, "labels", "rename", "lm.json", "--table", "t.csv", "-o", "new.json",
            fragments=("t.csv:2: not UTF-8 text: byte 0xe9",))


def test_openimages_box_csv_not_utf8(work):
    args = _openimages(work, (OI_HEADER + _oi_row("i0")).encode() + _oi_row("i1").encode().replace(b"i1", b"i\xe9"))
    refused(work, *args, fragments=("boxes.csv:3: not UTF-8 text: byte 0xe9",))


def test_openimages_classes_csv_not_utf8(work):
    args = _openimages(work, (OI_HEADER + _oi_row("i0")).encode(), classes=b"/m/01," + LATIN1 + b"\n")
    refused(work, *args, fragments=("classes.csv:1: not UTF-8 text: byte 0xe9",))


def test_mixture_manifest_not_utf8(tmp_path):
    from odvgkit.curate.mix import load_manifest
    from odvgkit.errors import OdvgError

    p = tmp_path / "mix.json"
    p.write_bytes(b'{"odvgkit_mixture": 1, "note": "' + LATIN1 + b'"}')
    with pytest.raises(OdvgError, match=r"mix.json:1: not UTF-8 text: byte 0xe9"):
        load_manifest(p)


@pytest.mark.parametrize("where", ["categories", "images"])
def test_invalid_utf8_inside_a_json_document_is_not_called_truncated(work, where):
    doc = json.dumps({"images": [coco_image(1, file_name="CAFE.jpg")], "annotations": [coco_ann(1, 1)],
                      "categories": [{"id": 1, "name": "CAFE"}]}).encode()
    target = b'"CAFE"' if where == "categories" else b'"CAFE.jpg"'
    data = doc.replace(target, target.replace(b"CAFE", b"CAF\xe9"))
    (work / "in.json").write_bytes(data)
    column = data.index(b"\xe9") + 1
    line = refused(work, "convert", "coco2odvg", "in.json", "-o", "out.jsonl",
                   fragments=(f"in.json:1:{column}: malformed JSON: invalid UTF-8 byte 0xe9",))
    assert "truncated" not in line


def test_odvg_line_not_utf8_is_a_named_bad_line(work):
    (work / "od.jsonl").write_bytes(json.dumps(od_record()).encode() + b"\n" +
                                    json.dumps(od_record("CAFE.jpg")).encode().replace(b"CAFE", b"CAF\xe9") + b"\n")
    _r, doc = summary(work, "stats", "od.jsonl")
    assert "od.jsonl:2: not UTF-8 text (save the file as UTF-8)" in doc["problems"]["examples"]


def test_bom_is_accepted_everywhere(work):
    """Same BOM, every kind of text input: all of them read it as if it were not there."""
    from odvgkit.curate.labels import read_table
    from odvgkit.curate.mix import load_manifest
    from odvgkit.io import read_label_map, read_records

    (work / "lm.json").write_bytes(BOM + b'{"0": "cat"}')
    assert read_label_map(work / "lm.json") == {"0": "cat"}
    (work / "t.csv").write_bytes(BOM + b"old,new\ncat,kitty\n")
    assert read_table(work / "t.csv") == {"cat": "kitty"}
    (work / "od.jsonl").write_bytes(BOM + json.dumps(od_record()).encode() + b"\n")
    assert [r for _, r in read_records(work / "od.jsonl")] == [od_record()]
    (work / "mix.json").write_bytes(BOM + json.dumps({
        "odvgkit_mixture": 1, "seed": 0, "epoch_size": 1, "sources": [
            {"name": "a", "path": "od.jsonl", "kind": "od", "label_map": "lm.json", "num_records": 1,
             "samples": 1, "samples_per_epoch": 1}]}).encode())
    assert load_manifest(work / "mix.json").epoch_size == 1
    from odvgkit.convert.grefcoco import read_grefs
    from odvgkit.curate.sources import detect_kind

    assert detect_kind(work / "od.jsonl") == "odvg"
    (work / "grefs.json").write_bytes(BOM + b'[{"ref_id": 1, "image_id": 2, "split": "val", "sentences": []}]')
    assert [g.image_id for g in read_grefs(work / "grefs.json")] == [2]
    # the CLI on BOM'd inputs: COCO json, OpenImages CSVs
    (work / "in.json").write_bytes(BOM + json.dumps({"images": [coco_image(1)], "annotations": [coco_ann(1, 1)],
                                                     "categories": CATS}).encode())
    r, doc = summary(work, "convert", "coco2odvg", "in.json", "-o", "coco.jsonl")
    assert r.returncode == 0 and doc["records_written"] == 1, r.stderr
    args = _openimages(work, BOM + (OI_HEADER + _oi_row("i0")).encode(), classes=BOM + b"/m/01,Cat\n")
    r, doc = summary(work, *args)
    assert r.returncode == 0, r.stderr
    rec = json.loads((work / "out.jsonl").read_text())
    assert rec["filename"] == "i0.jpg" and rec["detection"]["instances"][0]["category"] == "Cat"
