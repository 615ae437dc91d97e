"""Synthetic COCO-style files at real dataset scale (deterministic, written as a stream).

Shapes follow the real files: COCO annotations carry polygon segmentations (~400 bytes a box),
Objects365 annotations carry ``isfake``/``isreflected`` flags and no segmentation (~180 bytes).
A few percent of boxes are crowd, zero-size or outside the image so every filter does work.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import orjson

SCALES = {
    # name: (images, boxes, categories, style)
    "coco": (118_287, 860_001, 80, "coco"),
    "o365": (600_000, 9_000_000, 365, "o365"),
    "o365-full": (1_742_292, 25_400_000, 365, "o365"),
    "small": (5_000, 36_000, 80, "coco"),
}


def write_coco_like(path: Path, n_images: int, n_boxes: int, n_cats: int, style: str, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    cat_ids = np.arange(1, n_cats + 1) if style == "o365" else np.array(
        [i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)][:n_cats])
    with open(path, "wb") as fh:
        fh.write(b'{"info": {"description": "synthetic"}, "licenses": [], "images": [')
        widths = rng.integers(320, 1025, n_images)
        heights = rng.integers(240, 1025, n_images)
        for start in range(0, n_images, 50_000):
            stop = min(start + 50_000, n_images)
            chunk = [
                {"id": i + 1, "file_name": (f"images/v2/patch{i % 50}/objects365_v2_{i + 1:08d}.jpg" if style == "o365" else f"{i + 1:012d}.jpg"),
                 "height": int(heights[i]), "width": int(widths[i]), "license": 1}
                for i in range(start, stop)
            ]
            fh.write((b"," if start else b"") + b",".join(map(orjson.dumps, chunk)))
        fh.write(b'], "annotations": [')
        for start in range(0, n_boxes, 200_000):
            stop = min(start + 200_000, n_boxes)
            n = stop - start
            img = rng.integers(0, n_images, n)
            w_img, h_img = widths[img], heights[img]
            x = np.round(rng.uniform(-10, w_img * 0.9), 2)
            y = np.round(rng.uniform(-10, h_img * 0.9), 2)
            w = np.round(rng.uniform(0.5, w_img * 0.3), 2)
            h = np.round(rng.uniform(0.5, h_img * 0.3), 2)
            crowd = rng.random(n) < 0.01
            cats = cat_ids[rng.integers(0, len(cat_ids), n)]
            out = []
            for k in range(n):
                ann = {"id": start + k + 1, "image_id": int(img[k]) + 1, "category_id": int(cats[k]),
                       "bbox": [float(x[k]), float(y[k]), float(w[k]), float(h[k])],
                       "area": float(round(w[k] * h[k] * 0.7, 3)), "iscrowd": int(crowd[k])}
                if style == "o365":
                    ann["isfake"] = 0
                    ann["isreflected"] = 0
                else:
                    poly = np.round(rng.uniform(0, 600, 36), 2).tolist()
                    ann["segmentation"] = [poly]
                out.append(ann)
            fh.write((b"," if start else b"") + b",".join(map(orjson.dumps, out)))
        fh.write(b'], "categories": [')
        fh.write(b",".join(orjson.dumps({"id": int(c), "name": f"class {c}", "supercategory": "x"}) for c in cat_ids))
        fh.write(b"]}")
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("scale", choices=SCALES)
    ap.add_argument("output", type=Path)
    args = ap.parse_args()
    n_images, n_boxes, n_cats, style = SCALES[args.scale]
    write_coco_like(args.output, n_images, n_boxes, n_cats, style)


if __name__ == "__main__":
    main()
