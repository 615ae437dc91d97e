"""A faithful port of upstream MMDetection ``tools/dataset_converters/coco2odvg.py`` (rev e5f9f353).

Written from the behavioural reference (shared/spec/upstream-converters.md §3.1) *independently of
odvgkit*: it loads the whole file with pycocotools like upstream does, so tests can compare
odvgkit's records against it and the benchmark can time it side by side. Deliberate differences
from upstream are only those that would make it unusable as an oracle: it returns the records
instead of writing them, and ``-d coco`` takes the COCO-80 names from the COCO categories given
(upstream hard-codes the same 80 names).
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

from pycocotools.coco import COCO

COCO80_IDS = [
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28,
    31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55,
    56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84,
    85, 86, 87, 88, 89, 90,
]
SKIP = {"o365v1": {6, 19, 23}, "o365v2": {908726, 320532, 320534}}


def upstream_coco2odvg(path: str, dataset: str) -> tuple[list[dict[str, Any]], dict[str, str]]:
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(path)
    nms = {cat["id"]: cat["name"] for cat in coco.dataset["categories"]}
    if dataset == "coco":
        label_map = {str(i): nms[cid] for i, cid in enumerate(COCO80_IDS)}
    else:
        label_map = {str(c["id"] - 1): c["name"] for c in coco.dataset["categories"]}
    records = []
    for img_id, img in coco.imgs.items():
        if img_id in SKIP.get(dataset, ()):
            continue
        file_name = img["file_name"]
        if dataset == "o365v2":
            file_name = file_name.replace("images/v2/", "").replace("images/v1/", "")
        height, width = img["height"], img["width"]
        instances = []
        for ann_id in coco.getAnnIds(imgIds=[img_id]):
            ann = coco.anns[ann_id]
            if ann.get("ignore", False):
                continue
            x1, y1, w, h = ann["bbox"]
            inter_w = max(0, min(x1 + w, width) - max(x1, 0))
            inter_h = max(0, min(y1 + h, height) - max(y1, 0))
            if inter_w * inter_h == 0:
                continue
            if ann["area"] <= 0 or w < 1 or h < 1:
                continue
            if ann.get("iscrowd", False):
                continue
            cid = ann["category_id"]
            label = COCO80_IDS.index(cid) if dataset == "coco" else cid - 1
            instances.append({"bbox": [x1, y1, x1 + w, y1 + h], "label": label, "category": nms[cid]})
        records.append({"filename": file_name, "height": height, "width": width, "detection": {"instances": instances}})
    return records, label_map
