"""openimages2odvg on generated CSVs and real JPEG headers (EXIF orientation included)."""

from __future__ import annotations

import json

HEADER = "ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,IsTruncated,IsGroupOf,IsDepiction,IsInside\n"


def _dataset(tmp_path, jpeg, rows: str, header: str = HEADER):
    ann = tmp_path / "annotations"
    ann.mkdir()
    (ann / "class-descriptions-boxable.csv").write_text('/m/01,Cat\n/m/02,"Dog, big"\n/m/03,Café\n', "utf-8")
    (ann / "oidv6-train-annotations-bbox.csv").write_text(header + rows, "utf-8")
    imgs = tmp_path / "train"
    jpeg(imgs / "aaa.jpg", (200, 100))
    jpeg(imgs / "bbb.jpg", (1024, 576), orientation=6)  # decoders see 576 x 1024
    jpeg(imgs / "ccc.jpg", (100, 100))
    return ann, imgs


ROWS = (
    "aaa,xclick,/m/01,1,0.1,0.5,0.2,0.6,0,1,0,-1,0\n"
    "bbb,xclick,/m/02,1,-0.1,0.5,0.1,1.5,1,0,1,0,0\n"
    "aaa,xclick,/m/03,1,0.25,0.25,0.2,0.6,0,0,0,0,0\n"  # zero width → dropped
    "ccc,xclick,/m/01,1,0.0,1.0,0.0,1.0,0,0,1,0,0\n"  # only a group-of row
    "aaa,xclick,/m/02,1,0.5,1.0,0.0,0.5,0,0,0,1,1\n"  # aaa again, not adjacent
)


def test_openimages_records(tmp_path, jpeg, read_jsonl, cli):
    ann, imgs = _dataset(tmp_path, jpeg, ROWS)
    r = cli("convert", "openimages2odvg", ann, "--images-root", f"{imgs}/", "--json")  # trailing slash
    assert r.returncode == 0, r.stderr
    recs = read_jsonl(ann / "oidv6-train-annotations_od.json")
    assert recs == [
        {"filename": "aaa.jpg", "height": 100, "width": 200, "detection": {"instances": [
            {"bbox": [20.0, 20.0, 100.0, 60.0], "label": 0, "category": "Cat", "is_group_of": False,
             "is_occluded": False, "is_truncated": True, "is_inside": False},
            {"bbox": [100.0, 0.0, 200.0, 50.0], "label": 1, "category": "Dog, big", "is_group_of": False,
             "is_occluded": False, "is_truncated": False, "is_depiction": True, "is_inside": True},
        ]}},
        {"filename": "bbb.jpg", "height": 1024, "width": 576, "detection": {"instances": [
            {"bbox": [0, 102.4, 288.0, 1024], "label": 1, "category": "Dog, big", "is_group_of": True,
             "is_occluded": True, "is_truncated": False, "is_depiction": False, "is_inside": False},
        ]}},
        {"filename": "ccc.jpg", "height": 100, "width": 100, "detection": {"instances": [
            {"bbox": [0.0, 0.0, 100.0, 100.0], "label": 0, "category": "Cat", "is_group_of": True,
             "is_occluded": False, "is_truncated": False, "is_depiction": False, "is_inside": False},
        ]}},
    ]
    assert json.loads((ann / "openimages_label_map.json").read_text("utf-8")) == {"0": "Cat", "1": "Dog, big", "2": "Café"}
    assert json.loads(r.stdout)["dropped:no-area"] == 1


def test_openimages_drop_group_of(tmp_path, jpeg, read_jsonl, cli):
    ann, imgs = _dataset(tmp_path, jpeg, ROWS)
    r = cli("convert", "openimages2odvg", ann, "--images-root", imgs, "--drop-group-of", "-o", tmp_path / "o.jsonl", "--json")
    assert r.returncode == 0, r.stderr
    recs = read_jsonl(tmp_path / "o.jsonl")
    assert [x["filename"] for x in recs] == ["aaa.jpg"]  # bbb and ccc had only group-of boxes
    s = json.loads(r.stdout)
    assert (s["dropped:group-of"], s["dropped:image-without-boxes"]) == (2, 2)


def test_openimages_bad_inputs(tmp_path, jpeg, cli):
    ann, imgs = _dataset(tmp_path, jpeg, "aaa,x,/m/09,1,0.1,0.5,0.2,0.6,0,1,0,0,0\nzzz,x,/m/01,1,0.1,0.5,0.2,0.6,0,1,0,0,0\n")
    r = cli("convert", "openimages2odvg", ann, "--images-root", imgs, "-o", tmp_path / "o.jsonl")
    assert r.returncode == 1
    assert "oidv6-train-annotations-bbox.csv:2: LabelName: MID '/m/09' is not in the class descriptions" in r.stderr
    assert "zzz.jpg: image not found" in r.stderr
    assert "Traceback" not in r.stderr
    bad = tmp_path / "b"
    bad.mkdir()
    ann2, _ = _dataset(bad, jpeg, "aaa,x,/m/01,0.1,0.5\n", header="ImageID,Source,LabelName,XMin,XMax\n")
    r = cli("convert", "openimages2odvg", ann2, "--images-root", imgs, "-o", tmp_path / "o2.jsonl")
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        f"odvgkit: error: {ann2 / 'oidv6-train-annotations-bbox.csv'}:1: missing column(s) YMin, YMax "
        "(header: ImageID,Source,LabelName,XMin,XMax)"
    ]
    assert not (tmp_path / "o2.jsonl").exists()


def test_openimages_bad_values_name_line_and_column(tmp_path, jpeg, read_jsonl, cli):
    rows = (
        "aaa,x,/m/01,1,0.1,abc,0.2,0.6,0,1,0,0,0\n"  # line 2: XMax not a number
        "aaa,x,/m/01,1,0.1,0.5,,0.6,0,1,0,0,0\n"  # line 3: YMin empty
        "aaa,x,/m/02,1,0.1,0.5,0.2,0.6,-1,1,0,,0\n"  # kept; unknown/empty flags left out
    )
    ann, imgs = _dataset(tmp_path, jpeg, rows)
    r = cli("convert", "openimages2odvg", ann, "--images-root", imgs, "-o", tmp_path / "o.jsonl")
    assert r.returncode == 1
    assert "oidv6-train-annotations-bbox.csv:2: XMax: not a number: 'abc'" in r.stderr
    assert "oidv6-train-annotations-bbox.csv:3: YMin: empty" in r.stderr
    (rec,) = read_jsonl(tmp_path / "o.jsonl")
    assert rec["detection"]["instances"] == [{"bbox": [20.0, 20.0, 100.0, 60.0], "label": 1, "category": "Dog, big",
                                              "is_group_of": False, "is_truncated": True, "is_inside": False}]
    short = tmp_path / "short"
    short.mkdir()
    ann2, _ = _dataset(short, jpeg, "aaa,x,/m/01,1,0.1,0.5,0.2,0.6,0,1,0,0,0\naaa,x,/m/01\n")
    r = cli("convert", "openimages2odvg", ann2, "--images-root", imgs, "-o", tmp_path / "o2.jsonl")
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        f"odvgkit: error: {ann2 / 'oidv6-train-annotations-bbox.csv'}:3: expected 13 columns, got 3"]
