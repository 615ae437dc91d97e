"""Row ``o365``: an Objects365-v2-shaped ``zhiyuan_objv2_train.json`` → ``coco2odvg.py -d o365v2``.

The generator of ``coco.py`` (:func:`~realistic.coco.write_coco_like`) with Objects365's shape:
annotation keys ``id, iscrowd, isfake, area, isreflected, bbox, image_id, category_id`` (a few
percent in other orders), no segmentation, ~1 % ``iscrowd``, binary-fraction boxes
(``1232.265625``) and full-precision areas, 365 categories with ids 1..365, file names
``images/v2/patchN/objects365_v2_XXXXXXXX.jpg`` (upstream strips ``images/v2/``), sparse image
ids up to ~2.1M including one of the ids upstream skips as corrupt (320532), annotations not
grouped by image. ``full`` = the issue's 600k images, ~8.95M boxes, ~1.6 GB.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from .coco import Layout, compare_label_maps, compare_records, converter_rows, generate_once, write_coco_like

SCALES = {"full": {"images": 600_000, "boxes_per_image": 14.9}, "small": {"images": 8_000, "boxes_per_image": 14.9}}
SEED = 365
_SOME_NAMES = ["Person", "Sneakers", "Chair", "Other Shoes", "Hat", "Car", "Lamp", "Glasses", "Bottle", "Desk",
               "Cup", "Street Lights", "Cabinet/shelf", "Handbag/Satchel", "Bracelet", "Plate", "Picture/Frame"]


def o365_image(img_id: int, h: int, w: int, rng: np.random.Generator) -> dict[str, object]:
    return {"height": h * 2 if w > 600 else h, "id": img_id, "license": 5, "width": w * 2 if w > 600 else w,
            "file_name": f"images/v2/patch{img_id % 51}/objects365_v2_{img_id:08d}.jpg", "url": ""}


O365_LAYOUT = Layout(
    ann_keys=("id", "iscrowd", "isfake", "area", "isreflected", "bbox", "image_id", "category_id"),
    image=o365_image, segmentation=False, crowd_fraction=0.01, box_decimals=None,
    head={}, tail={"licenses": [{"name": "Creative Commons Attribution 4.0 License", "id": 5,
                                 "url": "https://creativecommons.org/licenses/by/4.0/"}]},
    max_image_id=2_100_000, ann_id_span=1.0,
)


def o365_categories() -> list[dict[str, object]]:
    names = _SOME_NAMES + [f"object {i}" for i in range(len(_SOME_NAMES), 365)]
    return [{"name": name, "id": i + 1} for i, name in enumerate(names)]


def generate(root: Path, scale: str) -> dict[str, Path]:
    return generate_once(root, "zhiyuan_objv2_train.json", _generate, scale)


def _generate(path: Path, scale: str) -> None:
    s = SCALES[scale]
    counts = write_coco_like(path, O365_LAYOUT, o365_categories(), s["images"], s["boxes_per_image"], SEED,
                             special_image_ids=(320532,))
    print(f"  generated {path} ({path.stat().st_size / 1e6:.0f} MB, {counts})", file=sys.stderr)


upstream, ours = converter_rows("coco2odvg.py", "coco2odvg", "-d", "o365v2")


def compare(inputs: dict[str, Path], out_upstream: Path, out_ours: Path) -> str:
    n, diffs = compare_records(out_upstream / "od.json", out_ours / "od.json")
    diffs += compare_label_maps(out_upstream / "o365v2_label_map.json", out_ours / "o365v2_label_map.json")
    return f"same records ({n:,} images), same label map" if not diffs else "; ".join(diffs)
