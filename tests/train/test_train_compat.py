"""The real consumer: outputs of every ``odvgkit convert`` command loaded by mmdet's own ODVGDataset.

Each case runs a real converter (CLI, subprocess) on a small generated input, then loads its output
with ``mmdet.datasets.ODVGDataset`` and its text transforms (``LoadAnnotations`` +
``RandomSamplingNegPos``) and checks every instance against expectations derived here from the
ODVG records with mmdet's documented rules (box inside image, ≥ 1 px, region index as label).
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from .conftest import run_cli

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures"


def _dump(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")
    return path


def _coco(tmp: Path) -> tuple[Path, Path | None]:
    src = tmp / "tiny_coco"
    shutil.copytree(SHARED / "tiny_coco", src)
    run_cli("convert", "coco2odvg", str(src / "annotations" / "instances_val2017.json"), "-o", str(tmp / "coco_od.jsonl"),
            "--label-map", str(tmp / "coco_lm.json"), "-q")
    return tmp / "coco_od.jsonl", tmp / "coco_lm.json"


def _coco_image_ids(tmp: Path) -> tuple[Path, Path | None]:
    """--image-ids adds a record field ODVGDataset does not know: it must be ignored."""
    src = SHARED / "tiny_coco" / "annotations" / "instances_val2017.json"
    run_cli("convert", "coco2odvg", str(src), "--image-ids", "-o", str(tmp / "coco_ids_od.jsonl"),
            "--label-map", str(tmp / "coco_ids_lm.json"), "-q")
    return tmp / "coco_ids_od.jsonl", tmp / "coco_ids_lm.json"


def _coco_ovd(tmp: Path) -> tuple[Path, Path | None]:
    src = tmp / "tiny_coco"
    shutil.copytree(SHARED / "tiny_coco", src)
    ann = src / "annotations"
    run_cli("convert", "coco2ovd", "--train", str(ann / "instances_train2017.json"), "--val", str(ann / "instances_val2017.json"),
            "--out-dir", str(tmp / "ovd"), "-q")
    run_cli("convert", "coco2odvg", str(tmp / "ovd" / "instances_train2017_seen_2.json"), "-o", str(tmp / "seen_od.jsonl"),
            "--label-map", str(tmp / "seen_lm.json"), "-q")
    return tmp / "seen_od.jsonl", tmp / "seen_lm.json"


GOLDG = {
    "images": [
        {"id": 1, "file_name": "a.jpg", "height": 50, "width": 60, "caption": "blue-green boat and a café"},
        {"id": 2, "file_name": "b.jpg", "height": 100, "width": 200, "caption": "the building near the building."},
    ],
    "annotations": [
        {"id": 1, "image_id": 1, "bbox": [0, 0, 5, 5], "area": 25, "iscrowd": 0, "tokens_positive": [[11, 15], [0, 4], [5, 10]]},
        {"id": 2, "image_id": 1, "bbox": [10, 10, 5, 5], "area": 25, "iscrowd": 0, "tokens_positive": [[22, 26]]},
        {"id": 3, "image_id": 2, "bbox": [1, 2, 10, 10], "area": 100, "iscrowd": 0, "tokens_positive": [[4, 12]]},
        {"id": 4, "image_id": 2, "bbox": [190.5, 2, 20, 10], "area": 100, "iscrowd": 0, "tokens_positive": [[22, 30]]},
    ],
    "categories": [],
}


def _goldg(tmp: Path) -> tuple[Path, Path | None]:
    src = _dump(tmp / "final_flickr_separateGT_train.json", GOLDG)
    run_cli("convert", "goldg2odvg", str(src), "-o", str(tmp / "goldg_vg.jsonl"), "-q")
    return tmp / "goldg_vg.jsonl", None


def _refcoco(tmp: Path) -> tuple[Path, Path | None]:
    _dump(tmp / "mdetr" / "finetune_refcoco_train.json", {
        "images": [
            {"id": 1, "file_name": "COCO_train2014_000000000009.jpg", "height": 40, "width": 50, "caption": "the cat on the left"},
            {"id": 2, "file_name": "COCO_train2014_000000000009.jpg", "height": 40, "width": 50, "caption": "left dog"},
        ],
        "annotations": [
            {"image_id": 1, "bbox": [1, 1, 13, 13], "area": 169, "iscrowd": 0, "tokens_positive": [[4, 7]]},
            {"image_id": 2, "bbox": [20, 2, 30, 30], "area": 900, "iscrowd": 0, "tokens_positive": [[5, 8]]},
        ],
    })
    run_cli("convert", "refcoco2odvg", str(tmp / "mdetr"), "--out-dir", str(tmp / "vg"), "-q")
    return tmp / "vg" / "finetune_refcoco_train_vg.json", None


LVIS = {
    "annotations": [
        {"id": 1, "image_id": 42, "category_id": 3, "bbox": [10.5, 20.25, 30, 40], "area": 1200, "segmentation": []},
        {"id": 2, "image_id": 42, "category_id": 1, "bbox": [1, 1, 2, 2], "area": 4, "segmentation": []},
        {"id": 3, "image_id": 7, "category_id": 2, "bbox": [5, 5, 10, 10], "area": 100, "segmentation": []},
        {"id": 4, "image_id": 7, "category_id": 4, "bbox": [50, 5, 10, 10], "area": 100, "segmentation": []},
        {"id": 5, "image_id": 7, "category_id": 3, "bbox": [99.5, 5, 10, 10], "area": 100, "segmentation": []},
    ],
    "images": [
        {"id": 42, "coco_url": "http://images.cocodataset.org/train2017/000000000042.jpg", "height": 480, "width": 640,
         "neg_category_ids": [2], "not_exhaustive_category_ids": [3]},
        {"id": 7, "coco_url": "http://images.cocodataset.org/val2017/000000000007.jpg", "height": 100, "width": 100,
         "neg_category_ids": [], "not_exhaustive_category_ids": []},
    ],
    "categories": [
        {"id": 1, "name": "aerosol_can", "frequency": "c"},
        {"id": 2, "name": "air_conditioner", "frequency": "r"},
        {"id": 3, "name": "café_table", "frequency": "f"},
        {"id": 4, "name": "blinder_(for_horses)", "frequency": "f"},
    ],
}


def _lvis(tmp: Path) -> tuple[Path, Path | None]:
    src = _dump(tmp / "lvis_v1_train.json", LVIS)
    run_cli("convert", "lvis2odvg", str(src), "-o", str(tmp / "lvis_od.jsonl"), "--label-map", str(tmp / "lvis_lm.json"), "-q")
    return tmp / "lvis_od.jsonl", tmp / "lvis_lm.json"


def _lvis_norare(tmp: Path) -> tuple[Path, Path | None]:
    od, lm = _lvis(tmp)
    run_cli("convert", "lvis2ovd", str(od), "--lvis-json", str(tmp / "lvis_v1_train.json"), "--label-map", str(lm),
            "--out-label-map", str(tmp / "norare_lm.json"), "--renumber", "-o", str(tmp / "norare_od.jsonl"), "-q")
    return tmp / "norare_od.jsonl", tmp / "norare_lm.json"


def _openimages(tmp: Path) -> tuple[Path, Path | None]:
    ann, imgs = tmp / "ann", tmp / "imgs"
    ann.mkdir()
    imgs.mkdir()
    for name, size in (("aaa", (64, 48)), ("bbb", (32, 32))):
        Image.new("RGB", size, (10, 20, 30)).save(imgs / f"{name}.jpg")
    (ann / "class-descriptions-boxable.csv").write_text('/m/01,Cat\n/m/02,"Dog, big"\n', "utf-8")
    header = ["ImageID", "Source", "LabelName", "Confidence", "XMin", "XMax", "YMin", "YMax",
              "IsOccluded", "IsTruncated", "IsGroupOf", "IsDepiction", "IsInside"]
    with (ann / "oidv6-train-annotations-bbox.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerow(["aaa", "xclick", "/m/01", 1, 0.1, 0.5, 0.2, 0.9, 0, 0, 0, 0, 0])
        w.writerow(["aaa", "xclick", "/m/02", 1, 0.5, 1.0, 0.0, 0.5, 1, 0, 1, 0, 0])
        w.writerow(["bbb", "xclick", "/m/02", 1, 0.0, 0.25, 0.0, 0.25, 0, 0, 0, 0, 0])
    run_cli("convert", "openimages2odvg", str(ann), "--images-root", str(imgs), "-o", str(tmp / "oi_od.jsonl"),
            "--label-map", str(tmp / "oi_lm.json"), "--workers", "1", "-q")
    return tmp / "oi_od.jsonl", tmp / "oi_lm.json"


def _grefcoco(tmp: Path) -> tuple[Path, Path | None]:
    refs = [
        {"ref_id": 1, "image_id": 1, "split": "train", "ann_id": [10, 11], "category_id": [18, 18], "no_target": False,
         "sentences": [{"sent": "two dogs", "raw": "Two dogs!", "sent_id": 5}]},
        {"ref_id": 2, "image_id": 1, "split": "train", "ann_id": [10], "category_id": [18], "no_target": False,
         "sentences": [{"sent": "the left dog", "raw": "the left dog", "sent_id": 6}]},
    ]
    inst = {
        "images": [{"id": 1, "file_name": "COCO_train2014_000000000001.jpg", "height": 100, "width": 120}],
        "annotations": [
            {"id": 10, "image_id": 1, "bbox": [1, 2, 10, 20], "area": 200, "category_id": 18},
            {"id": 11, "image_id": 1, "bbox": [50.5, 2, 10, 20], "area": 200, "category_id": 18},
        ],
        "categories": [{"id": 18, "name": "dog"}],
    }
    g = _dump(tmp / "grefs(unc).json", refs)
    i = _dump(tmp / "instances.json", inst)
    run_cli("convert", "grefcoco2odvg", str(g), str(i), "-o", str(tmp / "gref_vg.jsonl"), "-q")
    return tmp / "gref_vg.jsonl", None


def _grit(tmp: Path) -> tuple[Path, Path | None]:
    samples = [
        {"key": "000000001", "caption": "A dog on a sofa.", "width": 100, "height": 50, "filename": "images/00000/000000001.jpg",
         "ref_exps": [[2, 5, 0.1, 0.2, 0.5, 0.6, 0.9], [11, 15, 0.5, 0.5, 0.9, 0.9, 0.8]]},
        {"key": "000000002", "caption": "Cats and dogs", "width": 64, "height": 64, "filename": "images/00000/000000002.jpg",
         "ref_exps": [[0, 4, 0.0, 0.0, 0.5, 0.5, 0.9], [9, 13, 0.5, 0.5, 1.0, 1.0, 0.7]]},
    ]
    _dump(tmp / "grit" / "annotations" / "00000.json", samples)
    (tmp / "grit" / "images").mkdir()
    run_cli("convert", "grit2odvg", str(tmp / "grit"), "-o", str(tmp / "grit_vg.jsonl"), "-q")
    return tmp / "grit_vg.jsonl", None


CASES: dict[str, Callable[[Path], tuple[Path, Path | None]]] = {
    "coco2odvg": _coco,
    "coco2odvg --image-ids": _coco_image_ids,
    "coco2ovd+coco2odvg": _coco_ovd,
    "goldg2odvg": _goldg,
    "refcoco2odvg": _refcoco,
    "lvis2odvg": _lvis,
    "lvis2ovd": _lvis_norare,
    "openimages2odvg": _openimages,
    "grefcoco2odvg": _grefcoco,
    "grit2odvg": _grit,
}


def _keep(box: list[float], w: int, h: int) -> bool:
    """mmdet ODVGDataset's filter, restated: positive overlap with the image and ≥ 1 px each side."""
    x1, y1, x2, y2 = box
    inter = max(0, min(x2, w) - max(x1, 0)) * max(0, min(y2, h) - max(y1, 0))
    return inter != 0 and (x2 - x1) >= 1 and (y2 - y1) >= 1


def _expected(rec: dict[str, Any]) -> list[tuple[list[float], int]]:
    w, h = rec["width"], rec["height"]
    if "detection" in rec:
        return [(i["bbox"], int(i["label"])) for i in rec["detection"]["instances"] if _keep(i["bbox"], w, h)]
    out = []
    for k, region in enumerate(rec["grounding"]["regions"]):
        boxes = region["bbox"] if region["bbox"] and isinstance(region["bbox"][0], list) else [region["bbox"]]
        out += [(b, k) for b in boxes if _keep(b, w, h)]
    return out


@pytest.mark.parametrize("case", sorted(CASES))
def test_converter_output_loads_in_mmdet_odvgdataset(case: str, tmp_path: Path, bert_dir: Path) -> None:
    from mmcv.transforms import Compose
    from mmdet.datasets import ODVGDataset
    from mmdet.utils import register_all_modules

    import odvgkit_train.mmdet_plugin  # noqa: F401

    register_all_modules(init_default_scope=True)
    ann, label_map = CASES[case](tmp_path)
    records = [json.loads(line) for line in ann.read_text().splitlines()]
    assert records, f"{case}: converter wrote no records"
    ds = ODVGDataset(
        data_root="", ann_file=str(ann), label_map_file=str(label_map) if label_map else None,
        data_prefix=dict(img="imgs/"), filter_cfg=dict(filter_empty_gt=False), return_classes=True, pipeline=[],
    )
    assert ds.dataset_mode == ("OD" if label_map else "VG")
    assert len(ds) == len(records)
    names = json.loads(label_map.read_text()) if label_map else None
    text_pipeline = Compose([dict(type="LoadAnnotations", with_bbox=True),
                             dict(type="RandomSamplingNegPos", tokenizer_name=str(bert_dir), num_sample_negative=5, max_tokens=256)])
    np.random.seed(0)
    n_instances = 0
    for idx, rec in enumerate(records):
        info = ds.get_data_info(idx)
        assert info["img_path"] == "imgs/" + rec["filename"]
        assert (info["height"], info["width"]) == (rec["height"], rec["width"])
        got = [(list(map(float, i["bbox"])), i["bbox_label"]) for i in info["instances"]]
        want = [(list(map(float, b)), lab) for b, lab in _expected(rec)]
        assert got == want, (case, idx)
        n_instances += len(got)
        if names is not None:
            assert info["text"] == names and all(str(lab) in names for _, lab in got)
        else:
            assert info["text"] == rec["grounding"]["caption"]
        out = text_pipeline(dict(info))
        caption, spans = out["text"], out["tokens_positive"]
        labels = [int(v) for v in out["gt_bboxes_labels"]]
        assert len(labels) == len(got)
        for new, (_, old) in zip(labels, got, strict=True):
            pieces = [caption[s:e] for s, e in spans[new]]
            if names is not None:  # the span of the remapped label spells the class name
                expected_name = " ".join(re.sub(r"\(.*\)", "", names[str(old)]).replace("_", " ").split()).lower()
                assert " ".join(" ".join(pieces).split()) == expected_name, (case, idx, pieces, names[str(old)])
            else:  # the spans of a phrase point into the (lower-cased) caption at the phrase's text
                region = rec["grounding"]["regions"][old]
                orig = [rec["grounding"]["caption"][s:e].lower() for s, e in region["tokens_positive"]]
                assert pieces == orig, (case, idx)
                phrase = region["phrase"] if isinstance(region["phrase"], str) else " ".join(region["phrase"])
                norm = " ".join(phrase.lower().replace("-", " ").split())
                assert all(" ".join(p.replace("-", " ").split()) in norm for p in orig), (case, idx, orig, phrase)
    assert n_instances > 0, f"{case}: no instance survived; the case tests nothing"
