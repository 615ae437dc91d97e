"""fix-names o365, o365 image-info, o365 fix-wh on generated Objects365-style files."""

from __future__ import annotations

import json

from odvgkit.convert.objects365 import read_name_table


def test_packaged_name_table_has_the_13_fixes():
    table = read_name_table()
    assert len(table) == 365
    fixed = {i: new for i, (old, new) in table.items() if old != new}
    assert len(fixed) == 13
    assert fixed[53] == "Basket" and fixed[300] == "Tape Measure/ Ruler" and fixed[229] == "Hot air balloon"


def test_fix_names_streams_and_renames(tmp_path, dump, cli):
    src = dump(tmp_path / "zhiyuan_objv2_train.json", {
        "info": {"v": 2}, "custom_key": [1, 2],
        "images": [{"id": 1, "file_name": "images/v2/patch0/a.jpg", "height": 10, "width": 20}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 53, "bbox": [1, 2, 3, 4], "area": 12}],
        "categories": [{"id": 1, "name": "Person"}, {"id": 53, "name": "Bakset"}, {"id": 38, "name": "Moniter/TV"},
                       {"id": 999, "name": "Mystery"}],
    })
    r = cli("fix-names", "o365", src, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["renamed"] == 2
    out = json.loads((tmp_path / "zhiyuan_objv2_train_fixname.json").read_text())
    original = json.loads(src.read_text())
    assert [c["name"] for c in out["categories"]] == ["Person", "Basket", "Monitor/TV", "Mystery"]
    for key in ("info", "custom_key", "images", "annotations"):
        assert out[key] == original[key]
    assert "id 999 is not in the name table" in r.stderr or "not-in-table" in r.stdout


def _o365(tmp_path, dump, jpeg, name):
    jpeg(tmp_path / "imgs" / "patch0" / "a.jpg", (64, 32))
    jpeg(tmp_path / "imgs" / "patch0" / "b.jpg", (64, 32), orientation=8)  # true size 32 x 64
    return dump(tmp_path / name, {
        "licenses": [], "categories": [{"id": 1, "name": "Person"}],
        "images": [
            {"id": 1, "file_name": "patch0/a.jpg", "height": 32, "width": 64},
            {"id": 2, "file_name": "patch0/b.jpg", "height": 32, "width": 64},
            {"id": 3, "file_name": "patch0/missing.jpg", "height": 10, "width": 10},
        ],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2], "area": 4},
            {"id": 2, "image_id": 2, "category_id": 1, "bbox": [1, 1, 2, 2], "area": 4},
            {"id": 3, "image_id": 3, "category_id": 1, "bbox": [1, 1, 2, 2], "area": 4},
        ],
    })


def test_image_info_then_fix_wh(tmp_path, dump, jpeg, cli):
    src = _o365(tmp_path, dump, jpeg, "zhiyuan_objv2_val.json")
    r = cli("o365", "image-info", src, "--image-dir", tmp_path / "imgs", "--json")
    assert r.returncode == 1  # the missing image is an error, the others are measured
    assert "missing.jpg: image not found" in json.loads(r.stdout)["problems"]["examples"][0]
    info = tmp_path / "zhiyuan_objv2_val_info.tsv"
    assert info.read_text().splitlines() == [
        "id\tfile_name\theight\twidth", "1\tpatch0/a.jpg\t32\t64", "2\tpatch0/b.jpg\t64\t32",
    ]
    r = cli("o365", "fix-wh", src, "--info", info, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads((tmp_path / "zhiyuan_objv2_val_fixwh.json").read_text())  # named after val, not train
    assert [(i["id"], i["height"], i["width"]) for i in out["images"]] == [(1, 32, 64), (2, 64, 32)]
    assert [a["id"] for a in out["annotations"]] == [1, 2]
    s = json.loads(r.stdout)
    assert (s["resized"], s["dropped:not-measured"], s["dropped:annotations"]) == (1, 1, 1)
    r = cli("o365", "fix-wh", src, "--info", info, "--mode", "drop", "-o", tmp_path / "drop.json", "-q")
    assert r.returncode == 0, r.stderr
    out = json.loads((tmp_path / "drop.json").read_text())
    assert [i["id"] for i in out["images"]] == [1] and [a["id"] for a in out["annotations"]] == [1]


def test_fix_wh_reads_upstream_info_format(tmp_path, dump, jpeg, cli):
    src = _o365(tmp_path, dump, jpeg, "zhiyuan_objv2_train.json")
    info = tmp_path / "zhiyuan_objv2_train_info.txt"
    info.write_text("2 patch0/b.jpg 64 32 3\n1 patch0/a.jpg 32 64 3\n")
    r = cli("o365", "fix-wh", src, "--info", info, "-q")
    assert r.returncode == 0, r.stderr
    out = json.loads((tmp_path / "zhiyuan_objv2_train_fixwh.json").read_text())
    assert [(i["id"], i["height"], i["width"]) for i in out["images"]] == [(1, 32, 64), (2, 64, 32)]
    info.write_text("x patch0/b.jpg 64\n")
    r = cli("o365", "fix-wh", src, "--info", info, "-o", tmp_path / "bad.json")
    assert r.returncode == 1 and "zhiyuan_objv2_train_info.txt:1: expected 'id file_name height width'" in r.stderr
