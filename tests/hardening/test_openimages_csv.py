"""OpenImages box CSV: unterminated quotes are one error at the row's line; NaN/inf are bad values."""

from __future__ import annotations

import json

from hardening._cli import count, examples, jpeg, refused, summary

HEADER = "ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,IsTruncated,IsGroupOf,IsDepiction,IsInside\n"


def _row(image_id: str, x_min: str = "0.1", x_max: str = "0.5", y_min: str = "0.2") -> str:
    return f"{image_id},xclick,/m/01,1,{x_min},{x_max},{y_min},0.6,0,0,0,0,0\n"


def _args(work, body: str):
    (work / "boxes.csv").write_text(HEADER + body, encoding="utf-8")
    (work / "classes.csv").write_text("/m/01,Cat\n", encoding="utf-8")
    for name in ("i0", "i1", "i2", "i3"):
        jpeg(work / "img" / f"{name}.jpg", (40, 30))
    return ("convert", "openimages2odvg", ".", "--images-root", "img", "--bbox-csv", "boxes.csv",
            "--classes-csv", "classes.csv", "-o", "out.jsonl")


def test_unterminated_quote_in_a_big_file(work):
    # the quote swallows the rest of the file: longer than the csv module's field limit (128 KiB)
    body = _row("i0") + 'i1,"xclick,/m/01,1,0.1,0.5,0.2,0.6,0,0,0,0,0\n' + _row("i2") * 6000
    refused(work, *_args(work, body), fragments=("boxes.csv:3: malformed CSV: a quoted field never ends",))


def test_unterminated_quote_near_the_end(work):
    body = _row("i0") + 'i1,"xclick,/m/01,1,0.1,0.5,0.2,0.6,0,0,0,0,0\n' + _row("i2")
    refused(work, *_args(work, body), fragments=("boxes.csv:3: expected 13 columns, got 2 (a quoted field runs over several lines",))


def test_nan_and_inf_coordinates_are_bad_values(work):
    body = _row("i0") + _row("i1", x_min="nan") + _row("i2", x_max="inf") + _row("i3", y_min="-Infinity") + _row("i0", x_min="0.2")
    r, doc = summary(work, *_args(work, body))
    assert r.returncode == 1
    assert count(doc, "bad-value") == 3
    ex = examples(doc)
    assert "boxes.csv:3: XMin: not a finite number: 'nan'" in ex
    assert "boxes.csv:4: XMax: not a finite number: 'inf'" in ex
    assert "boxes.csv:5: YMin: not a finite number: '-Infinity'" in ex
    recs = [json.loads(line) for line in (work / "out.jsonl").read_text().splitlines()]
    assert [r["filename"] for r in recs] == ["i0.jpg"]  # i1..i3 lost their only box
    boxes = [i["bbox"] for i in recs[0]["detection"]["instances"]]
    assert boxes == [[0.1 * 40, 0.2 * 30, 0.5 * 40, 0.6 * 30], [0.2 * 40, 0.2 * 30, 0.5 * 40, 0.6 * 30]]
    assert "null" not in (work / "out.jsonl").read_text()
