"""split: deterministic samples in file order, stratified OD splits, images and label map."""

from __future__ import annotations

import json
import random
from collections import Counter

from odvgkit.curate.split import rarest_strata, stratify


def test_sample_n_is_deterministic_in_file_order_with_images(cli, tmp_path, tiny_coco_dir, read_jsonl):
    src = tmp_path / "coco_od.jsonl"
    lm = tmp_path / "coco_label_map.json"
    r = cli("convert", "coco2odvg", tiny_coco_dir / "annotations" / "instances_train2017.json", "-o", src,
            "--label-map", lm, "-q")
    assert r.returncode == 0, r.stderr
    all_recs = read_jsonl(src)
    outs = []
    for d in ("a", "b"):
        res = cli("split", src, "-n", "7", "--seed", "3", "-m", lm, "--images-root",
                  tiny_coco_dir / "images" / "train2017", "--copy-images", "-o", tmp_path / d, "--json")
        assert res.returncode == 0, res.stderr
        outs.append((tmp_path / d / "coco_od.jsonl").read_bytes())
    assert outs[0] == outs[1]
    sub = read_jsonl(tmp_path / "a" / "coco_od.jsonl")
    assert len(sub) == 7
    order = [all_recs.index(r) for r in sub]
    assert order == sorted(order)
    expected = sorted(random.Random(3).sample(range(len(all_recs)), 7))
    assert order == expected
    assert json.loads((tmp_path / "a" / "coco_label_map.json").read_text()) == json.loads(lm.read_text())
    for r in sub:
        copied = tmp_path / "a" / "images" / r["filename"]
        assert copied.read_bytes() == (tiny_coco_dir / "images" / "train2017" / r["filename"]).read_bytes()
    res = cli("split", src, "-n", "-1", "-o", tmp_path / "all", "-q")
    assert res.returncode == 0 and read_jsonl(tmp_path / "all" / "coco_od.jsonl") == all_recs  # upstream: N-1


def test_link_images_and_missing_image_is_counted(cli, tmp_path, write_jsonl, od):
    root = tmp_path / "img"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.jpg").write_bytes(b"x")
    src = write_jsonl(tmp_path / "d.jsonl", [od("sub/a.jpg", [0]), od("b.jpg", [0])])
    res = cli("split", src, "--images-root", root, "--link-images", "-o", tmp_path / "o", "--json")
    assert res.returncode == 1
    assert (tmp_path / "o" / "images" / "sub" / "a.jpg").resolve() == (root / "sub" / "a.jpg").resolve()
    assert json.loads(res.stdout)["problems"]["by_code"][0]["code"] == "missing-image"


def test_stratified_split_keeps_rare_classes_in_both_parts(cli, tmp_path, write_jsonl, read_jsonl, od):
    recs = []
    for i in range(90):
        recs.append(od(f"common{i}.jpg", [0, 1]))
    for i in range(10):  # rare class 7 (10 images) should get 1 val image at ratio 0.9
        recs.append(od(f"rare{i}.jpg", [0, 7]))
    for i in range(20):  # class 5 in 20 images → 2 in val
        recs.append(od(f"mid{i}.jpg", [5]))
    src = write_jsonl(tmp_path / "od.jsonl", recs)
    res = cli("split", src, "--ratio", "0.9", "--seed", "1", "-o", tmp_path / "s", "--json")
    assert res.returncode == 0, res.stderr
    s = json.loads(res.stdout)
    assert s["method"] == "stratified" and s["train_records"] == 108 and s["val_records"] == 12
    val = read_jsonl(tmp_path / "s" / "od_val.jsonl")
    train = read_jsonl(tmp_path / "s" / "od_train.jsonl")
    count = Counter(r["filename"].rstrip("0123456789.jpg") for r in val)
    assert count == {"common": 9, "rare": 1, "mid": 2}
    assert {r["filename"] for r in val}.isdisjoint(r["filename"] for r in train)
    assert len(train) + len(val) == len(recs)


def test_stratify_quota_arithmetic():
    strata = [0] * 5 + [1] * 5 + [2] * 3
    val = stratify(strata, 0.8, seed=0)
    # 13 * 0.2 = 2.6 → 3 in val; floors are 1, 1, 0; remainders .0, .0, .6 → stratum 2 gets the extra one
    got = Counter(strata[p] for p in val)
    assert len(val) == 3 and got == {0: 1, 1: 1, 2: 1}
    assert rarest_strata([[1, 2], [2], [2, 3], []]) == [1, 2, 3, -1]


def test_vg_split_is_random_and_bad_ratio_fails(cli, tmp_path, write_jsonl):
    recs = [{"filename": f"{i}.jpg", "height": 5, "width": 5, "grounding": {"caption": "a", "regions": []}} for i in range(10)]
    src = write_jsonl(tmp_path / "vg.jsonl", recs)
    res = cli("split", src, "--ratio", "0.7", "-o", tmp_path / "s", "--json")
    assert res.returncode == 0 and json.loads(res.stdout)["method"] == "random"
    assert json.loads(res.stdout)["val_records"] == 3
    for bad in ("0", "1.2", "-0.5"):
        res = cli("split", src, "--ratio", bad, "-o", tmp_path / "bad")
        assert res.returncode != 0 and "--ratio" in res.stderr and not (tmp_path / "bad").exists()
