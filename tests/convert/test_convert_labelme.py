"""labelme2odvg: LabelMe / X-AnyLabeling folders with the quirks real exports have.

Expected records are written out by hand from the shapes the test draws (a box is the min/max
of the points the test chose), never computed by the importer's own helpers.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from odvgkit.convert.labelme import labelme_to_odvg
from odvgkit.errors import OdvgError, ProblemLog


def shape(label, points, kind="rectangle", **extra):
    d = {"label": label, "points": points, "group_id": None, "description": "", "shape_type": kind, "flags": {}}
    d.update(extra)
    return d


def labelme(path: Path, image_path: str, w: int, h: int, shapes: list, image_data: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"version": "5.4.1", "flags": {}, "shapes": shapes, "imagePath": image_path,
           "imageData": image_data, "imageHeight": h, "imageWidth": w}
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return path


@pytest.fixture
def dataset(tmp_path, jpeg):
    """ann/ + images/ as LabelMe users lay them out, with Windows paths and X-AnyLabeling files."""
    root = tmp_path / "ds"
    jpeg(root / "images" / "a.jpg", (64, 48))
    jpeg(root / "images" / "sub" / "b.jpg", (40, 30))
    # EXIF orientation 6: stored 30x20, displayed (and annotated, and decoded) 20x30
    jpeg(root / "images" / "rot.jpg", (30, 20), orientation=6)
    buf = io.BytesIO()
    Image.new("RGB", (64, 48)).save(buf, "PNG")
    labelme(root / "ann" / "a.json", "..\\images\\a.jpg", 64, 48, [
        shape("dog", [[40, 30], [10, 5]], group_id=3, description="left dog"),          # corners reversed
        shape("cat", [[12.5, 4], [20, 9], [15, 22.25], [11, 10]], "polygon"),
        shape("cat", [[30, 20], [34, 20]], "circle"),                                 # r = 4
        shape("dog", [[1, 1], [5, 5]], "line"),
        shape("dog", [[2, 2]], "point"),
    ], image_data=base64.b64encode(buf.getvalue()).decode())
    # X-AnyLabeling: rectangles as four corners, a difficult flag, a rotated box
    labelme(root / "ann" / "sub" / "b.json", "../../images/sub/b.jpg", 40, 30, [
        shape("person", [[5, 6], [25, 6], [25, 16], [5, 16]], difficult=True),
        shape("person", [[20, 2], [30, 5], [27, 14], [17, 11]], "rotation", direction=0.3),
    ])
    # LabelMe < 3: no shape_type means polygon; the JSON carries the displayed size
    doc = {"shapes": [{"label": "cat", "points": [[1, 2], [10, 2], [4, 25]]}],
           "imagePath": "../images/rot.jpg", "imageHeight": 30, "imageWidth": 20}
    (root / "ann" / "rot.json").write_text(json.dumps(doc), encoding="utf-8")
    # not LabelMe: a class list someone keeps beside the annotations
    (root / "ann" / "classes.json").write_text(json.dumps({"names": ["cat"]}), encoding="utf-8")
    return root


EXPECTED = [
    {"filename": "images/a.jpg", "height": 48, "width": 64, "detection": {"instances": [
        {"bbox": [10, 5, 40, 30], "label": 1, "category": "dog", "group_id": 3, "description": "left dog"},
        {"bbox": [11, 4, 20, 22.25], "label": 0, "category": "cat"},
        {"bbox": [26.0, 16.0, 34.0, 24.0], "label": 0, "category": "cat"},
    ]}},
    {"filename": "images/rot.jpg", "height": 30, "width": 20, "detection": {"instances": [
        {"bbox": [1, 2, 10, 25], "label": 0, "category": "cat"},
    ]}},
    {"filename": "images/sub/b.jpg", "height": 30, "width": 40, "detection": {"instances": [
        {"bbox": [5, 6, 25, 16], "label": 2, "category": "person", "difficult": True},
        {"bbox": [17, 2, 30, 14], "label": 2, "category": "person"},
    ]}},
]


def test_labelme_folder_converts_with_real_quirks(dataset, cli, read_jsonl):
    out = dataset / "out" / "train_od.jsonl"
    r = cli("convert", "labelme2odvg", dataset / "ann", "--images-root", dataset, "-o", out, "--json")
    assert r.returncode == 0, r.stderr
    assert read_jsonl(out) == EXPECTED
    lm_path = dataset / "out" / "train_od_label_map.json"
    assert json.loads(lm_path.read_text()) == {"0": "cat", "1": "dog", "2": "person"}
    summary = json.loads(r.stdout)
    assert summary["class_order"] == "sorted by name (3)"
    assert summary["images"] == 3 and summary["boxes"] == 6 and summary["files"] == 4
    assert summary["shapes_skipped:line"] == 1 and summary["shapes_skipped:point"] == 1
    assert summary["files_skipped:not-labelme"] == 1
    assert summary["problems"]["errors"] == 0 and summary["problems"]["warnings"] == 1
    first = out.read_bytes()
    r = cli("convert", "labelme2odvg", dataset / "ann", "--images-root", dataset, "-o", out, "-q")
    assert r.returncode == 0 and out.read_bytes() == first  # deterministic, and a rerun ignores its own output
    r = cli("validate", out, "-m", lm_path, "--images-root", dataset, "-q")
    assert r.returncode == 0, r.stderr  # what a loader would drop or misread: nothing


def test_classes_file_fixes_the_order_and_refuses_other_classes(dataset, cli, read_jsonl, tmp_path):
    classes = tmp_path / "labels.txt"
    classes.write_text("__ignore__\n_background_\nperson\ndog\n\n", encoding="utf-8")
    out = tmp_path / "o.json"
    r = cli("convert", "labelme2odvg", dataset / "ann", "--images-root", dataset, "--classes", classes, "-o", out)
    assert r.returncode == 1
    assert json.loads((tmp_path / "o_label_map.json").read_text()) == {"0": "person", "1": "dog"}
    assert f"{dataset / 'ann' / 'a.json'}: shapes[1]: label: class 'cat' is not in the class list" in r.stderr
    recs = read_jsonl(out)
    assert [[i["category"] for i in rec["detection"]["instances"]] for rec in recs] == [["dog"], [], ["person", "person"]]
    assert [i["label"] for i in recs[2]["detection"]["instances"]] == [0, 0]


def test_filenames_default_to_the_folder_and_no_images_trusts_the_json(tmp_path, cli, read_jsonl):
    root = tmp_path / "flat"
    labelme(root / "x.json", "x.jpg", 50, 40, [shape("a", [[1, 1], [3, 4]])])  # no image on disk
    r = cli("convert", "labelme2odvg", root, "--no-images", "--json")
    assert r.returncode == 0, r.stderr
    assert read_jsonl(tmp_path / "flat_od.json") == [
        {"filename": "x.jpg", "height": 40, "width": 50,
         "detection": {"instances": [{"bbox": [1, 1, 3, 4], "label": 0, "category": "a"}]}}]
    assert (tmp_path / "flat_od_label_map.json").is_file()


BAD = {
    # name: (write the bad file, expected problem line after the file name)
    "malformed-json": (lambda d: (d / "bad.json").write_text('{"shapes": [\n  {"label": "a",,}\n]}'), ":2: malformed JSON: Expecting property name enclosed in double quotes (column 17)"),
    "outside": (lambda d: labelme(d / "bad.json", "img.jpg", 32, 24, [shape("a", [[10, 10], [33, 20]])]), ": shapes[0]: points: box [10, 10, 33, 20] goes outside the 32x24 image"),
    "polygon-2-points": (lambda d: labelme(d / "bad.json", "img.jpg", 32, 24, [shape("a", [[-1, 10], [5, 20]], "polygon")]), ": shapes[0]: points: needs at least 3 points, got 2"),
    "negative": (lambda d: labelme(d / "bad.json", "img.jpg", 32, 24, [shape("a", [[-1, 10], [5, 20], [3, 3]], "polygon")]), ": shapes[0]: points: negative coordinate in box [-1, 3, 5, 20]"),
    "nan": (lambda d: (d / "bad.json").write_text('{"shapes": [{"label": "a", "points": [[1, 2], [NaN, 5]], "shape_type": "rectangle"}], "imagePath": "img.jpg", "imageHeight": 24, "imageWidth": 32}'), ": shapes[0]: points: coordinate is not finite: [nan, 5]"),
    "unknown-class": (lambda d: labelme(d / "bad.json", "img.jpg", 32, 24, [shape("zebra", [[1, 1], [5, 5]])]), ": shapes[0]: label: class 'zebra' is not in the class list"),
    "missing-image": (lambda d: labelme(d / "bad.json", "gone.jpg", 32, 24, [shape("a", [[1, 1], [5, 5]])]), ": imagePath: image {d}/gone.jpg not found"),
    "unreadable-image": (lambda d: ((d / "junk.jpg").write_bytes(b"not an image"), labelme(d / "bad.json", "junk.jpg", 32, 24, [])), ": imagePath: unreadable image header: {d}/junk.jpg"),
    "size-mismatch": (lambda d: labelme(d / "bad.json", "img.jpg", 320, 24, []), ": imageWidth/imageHeight: 320x24 in the JSON but the image img.jpg is 32x24"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_named_skipped_and_counted_or_stops_under_strict(case, tmp_path, jpeg, cli, read_jsonl):
    d = tmp_path / "ann"
    d.mkdir()
    jpeg(d / "img.jpg", (32, 24))
    labelme(d / "good.json", "img.jpg", 32, 24, [shape("a", [[1, 1], [5, 5]])])
    write, message = BAD[case]
    write(d)
    message = message.format(d=d)
    out = tmp_path / "o.jsonl"
    r = cli("convert", "labelme2odvg", d, "--classes", "a", "-o", out)
    assert r.returncode == 1
    assert f"{d / 'bad.json'}{message}" in r.stderr
    good = {"filename": "img.jpg", "height": 24, "width": 32,
            "detection": {"instances": [{"bbox": [1, 1, 5, 5], "label": 0, "category": "a"}]}}
    assert good in read_jsonl(out)  # the rest is converted
    out.unlink()
    (tmp_path / "o_label_map.json").unlink()
    r = cli("convert", "labelme2odvg", d, "--classes", "a", "-o", out, "--strict")
    assert r.returncode == 1
    assert r.stderr.splitlines() == [f"odvgkit: error: {d / 'bad.json'}{message}"]
    assert not out.exists() and not (tmp_path / "o_label_map.json").exists()


def test_a_folder_without_labelme_files_is_named_as_such(tmp_path, cli, dump):
    dump(tmp_path / "coco" / "instances.json", {"images": [], "annotations": [], "categories": []})
    r = cli("convert", "labelme2odvg", tmp_path / "coco", "--no-images")
    assert r.returncode == 1
    assert r.stderr.splitlines() == [
        f"odvgkit: error: {tmp_path / 'coco'}: none of the 1 .json files is a LabelMe/X-AnyLabeling file "
        "(no 'shapes' and 'imagePath'; a COCO json goes through 'convert coco2odvg')"]
    r = cli("convert", "labelme2odvg", tmp_path / "empty")
    assert r.returncode == 1 and "not a directory" in r.stderr


def test_output_over_an_annotation_is_refused(tmp_path, cli):
    labelme(tmp_path / "d" / "x.json", "x.jpg", 5, 5, [])
    before = (tmp_path / "d" / "x.json").read_bytes()
    r = cli("convert", "labelme2odvg", tmp_path / "d", "--no-images", "-o", tmp_path / "d" / "x.json")
    assert r.returncode == 1 and "is one of the LabelMe input files" in r.stderr
    assert (tmp_path / "d" / "x.json").read_bytes() == before


coord = st.integers(0, 99)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(boxes=st.lists(st.tuples(coord, coord, st.integers(1, 50), st.integers(1, 50), st.integers(0, 3)), max_size=8))
def test_polygon_boxes_are_the_extremes_of_their_points(tmp_path_factory, boxes):
    """Each polygon is drawn inside a known box touching all four sides: that box must come back."""
    d = tmp_path_factory.mktemp("lm")
    shapes, expected = [], []
    for x, y, w, h, extra in boxes:
        x2, y2 = x + w, y + h
        pts = [[x, y + h // 2], [x + w // 2, y], [x2, y2 - h // 3], [x + w // 3, y2]]
        pts += [[x + (k % (w + 1)), y + (k % (h + 1))] for k in range(extra)]  # interior points
        shapes.append(shape("c", pts, "polygon"))
        expected.append([x, y, x2, y2])
    labelme(d / "p.json", "p.jpg", 200, 200, shapes)
    conv = labelme_to_odvg(d, read_images=False, problems=ProblemLog(strict=True))
    recs = list(conv.records)
    assert [i["bbox"] for i in recs[0]["detection"]["instances"]] == expected


def test_library_call_rejects_a_file_path(tmp_path):
    f = tmp_path / "a.json"
    f.write_text("{}")
    with pytest.raises(OdvgError, match="not a directory"):
        labelme_to_odvg(f)
