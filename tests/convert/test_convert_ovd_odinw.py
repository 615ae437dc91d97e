"""coco2ovd (48/17 split) and odinw-override on generated COCO files."""

from __future__ import annotations

import json

from odvgkit.convert.ovd import coco_ovd_split

CATS = [{"id": 1, "name": "person", "supercategory": "p"}, {"id": 5, "name": "airplane"},
        {"id": 10, "name": "traffic light"}]


def _coco(dump, path, tag):
    return dump(path, {
        "info": {"split": tag}, "licenses": [],
        "images": [{"id": i, "file_name": f"{tag}{i}.jpg", "height": 10, "width": 10} for i in (4, 1, 2, 3)],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 1, "bbox": [0, 0, 2, 2], "area": 4},
            {"id": 2, "image_id": 2, "category_id": 5, "iscrowd": 0, "bbox": [0, 0, 2, 2], "area": 4},
            {"id": 3, "image_id": 3, "category_id": 10, "iscrowd": 0, "bbox": [0, 0, 2, 2], "area": 4},
            {"id": 4, "image_id": 4, "category_id": 1, "iscrowd": 0, "bbox": [0, 0, 2, 2], "area": 4},
        ],
        "categories": CATS,
    })


def test_split_table():
    base, novel = coco_ovd_split()
    assert (len(base), len(novel)) == (48, 17) and not set(base) & set(novel)


def test_coco2ovd(tmp_path, dump, cli):
    ann = tmp_path / "coco" / "annotations"
    _coco(dump, ann / "instances_train2017.json", "t")
    _coco(dump, ann / "instances_val2017.json", "v")
    r = cli("convert", "coco2ovd", tmp_path / "coco", "-q")
    assert r.returncode == 0, r.stderr
    train = json.loads((ann / "instances_train2017_seen_2.json").read_text())
    val = json.loads((ann / "instances_val2017_all_2.json").read_text())
    assert [i["id"] for i in train["images"]] == [4, 1]  # file order; images without kept boxes gone
    assert [a["id"] for a in train["annotations"]] == [1, 4]  # crowd kept
    assert train["categories"] == [{"id": 1, "name": "person", "supercategory": "p", "split": "seen"}]
    assert [i["id"] for i in val["images"]] == [4, 1, 2]
    assert [(c["name"], c["split"]) for c in val["categories"]] == [("person", "seen"), ("airplane", "unseen")]
    assert train["info"] == {"split": "t"} and val["info"] == {"split": "v"}


def test_odinw_override(tmp_path, dump, cli):
    from odvgkit.convert.odinw import OVERRIDES

    originals = {}
    for rel in OVERRIDES:
        originals[rel] = dump(tmp_path / rel, {
            "images": [{"id": 1, "file_name": "a.jpg"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1}],
            "categories": [{"id": 1, "name": "Cottontail-Rabbit"}, {"id": 2, "name": "x"}],
        })
    before = {rel: p.read_bytes() for rel, p in originals.items()}
    r = cli("convert", "odinw-override", tmp_path, "-q")
    assert r.returncode == 0, r.stderr
    rabbits = json.loads((tmp_path / "CottontailRabbits/valid/new_annotations_without_background.json").read_text())
    assert rabbits["categories"] == [{"id": 1, "name": "rabbit", "supercategory": "Cottontail-Rabbit"}]
    assert rabbits["annotations"] == [{"id": 1, "image_id": 1, "category_id": 1}]
    chess = json.loads((tmp_path / "ChessPieces/Chess Pieces.v23-raw.coco/valid/new_annotations_without_background.json").read_text())
    assert [c["name"] for c in chess["categories"]][:3] == ["  ", "black bishop", "black king"]
    assert {rel: p.read_bytes() for rel, p in originals.items()} == before  # originals untouched
    # an annotation whose category the override does not define is refused, nothing written
    table = dump(tmp_path / "t.json", {"CottontailRabbits/valid/annotations_without_background.json": [{"id": 7, "name": "r"}]})
    r = cli("convert", "odinw-override", tmp_path, "--table", table, "--output-name", "other.json")
    assert r.returncode == 1 and "category id 1 which the override does not define" in r.stderr
    assert not (tmp_path / "CottontailRabbits/valid/other.json").exists()
