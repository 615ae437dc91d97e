"""lvis2odvg and lvis2ovd on a generated LVIS file with the quirks of the real one."""

from __future__ import annotations

import json

import pytest

from odvgkit.convert.lvis import lvis_to_odvg
from odvgkit.errors import OdvgError


def _lvis(dump, path):
    return dump(path, {
        "info": {"year": 2020},
        # LVIS lists annotations before images and categories last
        "annotations": [
            {"id": 1, "image_id": 42, "category_id": 3, "bbox": [10.5, 20.25, 30, 40], "area": 1200,
             "segmentation": [[10.5, 20.25, 40.5, 20.25, 40.5, 60.25]]},
            {"id": 2, "image_id": 7, "category_id": 1, "bbox": [0, 0, 0.5, 10], "area": 5, "segmentation": []},
            {"id": 3, "image_id": 7, "category_id": 2, "bbox": [700, 0, 10, 10], "area": 100, "segmentation": []},
            {"id": 4, "image_id": 7, "category_id": 2, "bbox": [5, 5, 10, 10], "area": 0, "segmentation": []},
            {"id": 5, "image_id": 42, "category_id": 1, "bbox": [1, 1, 2, 2], "area": 4, "segmentation": []},
        ],
        "images": [
            {"id": 42, "coco_url": "http://images.cocodataset.org/train2017/000000000042.jpg", "height": 480,
             "width": 640, "neg_category_ids": [2], "not_exhaustive_category_ids": [3], "license": 1},
            {"id": 7, "coco_url": "https://images.cocodataset.org/val2017/000000000007.jpg", "height": 100,
             "width": 100, "neg_category_ids": [], "not_exhaustive_category_ids": []},
            {"id": 99, "coco_url": "http://images.cocodataset.org/train2017/000000000099.jpg", "height": 10,
             "width": 10, "neg_category_ids": [1, 3], "not_exhaustive_category_ids": []},
        ],
        "licenses": [],
        "categories": [
            {"id": 1, "name": "aerosol_can", "frequency": "c", "synonyms": ["aerosol_can"]},
            {"id": 2, "name": "air_conditioner", "frequency": "r"},
            {"id": 3, "name": "café_table", "frequency": "f"},
        ],
    })


EXPECTED = [
    {"filename": "train2017/000000000042.jpg", "height": 480, "width": 640,
     "detection": {"instances": [
         {"bbox": [10.5, 20.25, 40.5, 60.25], "label": 2, "category": "café_table"},
         {"bbox": [1, 1, 3, 3], "label": 0, "category": "aerosol_can"}]},
     "neg_category_ids": [1], "not_exhaustive_category_ids": [2]},
    {"filename": "val2017/000000000007.jpg", "height": 100, "width": 100, "detection": {"instances": []},
     "neg_category_ids": [], "not_exhaustive_category_ids": []},
    {"filename": "train2017/000000000099.jpg", "height": 10, "width": 10, "detection": {"instances": []},
     "neg_category_ids": [0, 2], "not_exhaustive_category_ids": []},
]


def test_lvis2odvg_keeps_federated_fields(tmp_path, dump, read_jsonl, cli):
    src = _lvis(dump, tmp_path / "annotations" / "lvis_v1_train.json")
    r = cli("convert", "lvis2odvg", src, "--json")
    assert r.returncode == 0, r.stderr
    assert read_jsonl(tmp_path / "annotations" / "lvis_v1_train_od.json") == EXPECTED
    lm = json.loads((tmp_path / "annotations" / "lvis_v1_label_map.json").read_text("utf-8"))
    assert lm == {"0": "aerosol_can", "1": "air_conditioner", "2": "café_table"}
    s = json.loads(r.stdout)
    assert (s["dropped:too-small"], s["dropped:no-overlap"], s["boxes"]) == (2, 1, 2)


def test_lvis2ovd_sparse_and_renumbered(tmp_path, dump, read_jsonl, cli):
    src = _lvis(dump, tmp_path / "annotations" / "lvis_v1_train.json")
    assert cli("convert", "lvis2odvg", src, "-q").returncode == 0
    od = tmp_path / "annotations" / "lvis_v1_train_od.json"
    r = cli("convert", "lvis2ovd", od, "--lvis-json", src, "-q")
    assert r.returncode == 0, r.stderr
    sparse = read_jsonl(tmp_path / "annotations" / "lvis_v1_train_od_norare.json")
    lm = json.loads((tmp_path / "annotations" / "lvis_v1_label_map_norare.json").read_text("utf-8"))
    assert lm == {"0": "aerosol_can", "2": "café_table"}  # upstream: original keys, sparse
    assert [i["label"] for i in sparse[0]["detection"]["instances"]] == [2, 0]
    assert sparse[2]["neg_category_ids"] == [0, 2]
    r = cli("convert", "lvis2ovd", od, "--lvis-json", src, "--renumber", "-o", tmp_path / "dense.jsonl", "-q")
    assert r.returncode == 0, r.stderr
    dense = read_jsonl(tmp_path / "dense.jsonl")
    lm = json.loads((tmp_path / "lvis_v1_label_map_norare.json").read_text("utf-8"))
    assert lm == {"0": "aerosol_can", "1": "café_table"}
    assert [(i["label"], i["category"]) for i in dense[0]["detection"]["instances"]] == [(1, "café_table"), (0, "aerosol_can")]
    assert dense[0]["neg_category_ids"] == [] and dense[0]["not_exhaustive_category_ids"] == [1]
    assert dense[2]["neg_category_ids"] == [0, 1]


def test_lvis_bad_references(tmp_path, dump):
    path = dump(tmp_path / "bad.json", {
        "images": [{"id": 1, "coco_url": "http://images.cocodataset.org/val2017/1.jpg", "height": 10, "width": 10}],
        "annotations": [
            {"image_id": 5, "category_id": 1, "bbox": [0, 0, 5, 5], "area": 25},
            {"image_id": 1, "category_id": 9, "bbox": [0, 0, 5, 5], "area": 25},
        ],
        "categories": [{"id": 1, "name": "a"}],
    })
    from odvgkit.errors import ProblemLog

    problems = ProblemLog()
    conv = lvis_to_odvg(path, problems)
    assert [len(r["detection"]["instances"]) for r in conv.records] == [0]
    examples = problems.as_dict()["examples"]
    assert any("image id 5 is not in images[]" in e for e in examples)
    assert any("category id 9 is not in categories[]" in e for e in examples)
    with pytest.raises(OdvgError, match="categories: missing or empty"):
        lvis_to_odvg(dump(tmp_path / "nocat.json", {"images": [], "annotations": []}))


def test_fast_jsonl_path_is_byte_identical_to_the_records(tmp_path, dump):
    import random

    import orjson

    rng = random.Random(3)
    images = [{"id": i, "coco_url": f"http://images.cocodataset.org/val2017/{i:012d}.jpg", "height": 480, "width": 640,
               "neg_category_ids": rng.sample(range(1, 6), 2), "not_exhaustive_category_ids": []} for i in range(1, 40)]
    anns = [{"image_id": rng.randrange(1, 40), "category_id": rng.randrange(1, 6),
             "bbox": [rng.choice([0.1, 1e-05, 33.30001, rng.uniform(0, 600)]), rng.uniform(0, 400),
                      rng.uniform(1, 300), rng.choice([1, 2.5, rng.uniform(1, 300)])], "area": 10.0}
            for _ in range(300)]
    cats = [{"id": c, "name": f"thing “{c}”"} for c in range(1, 6)]
    path = dump(tmp_path / "lvis.json", {"images": images, "annotations": anns, "categories": cats})
    slow = b"".join(orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE) for r in lvis_to_odvg(path).records)
    fast = b"".join(chunk for chunk, _ in lvis_to_odvg(path).jsonl_chunks)
    assert fast == slow and slow.count(b"\n") == 39
