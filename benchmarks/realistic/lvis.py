"""Row ``lvis``: an LVIS-v1-shaped ``lvis_v1_train.json`` → ``lvis2odvg.py``.

The generator of ``coco.py`` (:func:`~realistic.coco.write_coco_like`) with LVIS v1's shape:
``info, annotations, images, categories, licenses`` in that order (annotations *before* images),
annotation keys ``area, id, segmentation, image_id, bbox, category_id`` (no ``iscrowd``; a few
percent in other orders), polygon segmentations, annotations not grouped by image, COCO image ids
(sparse up to 581,929) with ``coco_url``, ``neg_category_ids`` and
``not_exhaustive_category_ids`` on every image, 1203 categories with ``frequency``, ``synonyms``,
``def``, ``synset``, ``image_count``, ``instance_count`` and a long-tailed frequency.
``full`` = the issue's 100k images, ~1.26M boxes.

odvgkit keeps the federated fields on each record (a documented deviation, docs/deviations.md):
``compare`` checks them against the input and the rest of each record against upstream's.
"""

from __future__ import annotations

import sys
from pathlib import Path

import msgspec
import numpy as np
import orjson

from odvgkit.io.jsonstream import stream_members

from .coco import Layout, compare_label_maps, compare_records, converter_rows, generate_once, write_coco_like

SCALES = {"full": {"images": 100_000, "boxes_per_image": 12.6}, "small": {"images": 3_000, "boxes_per_image": 12.6}}
SEED = 1203
N_CATS = 1203


def lvis_image(img_id: int, h: int, w: int, rng: np.random.Generator) -> dict[str, object]:
    name = f"{img_id:012d}.jpg"
    neg = np.sort(rng.choice(N_CATS, int(rng.integers(0, 12)), replace=False) + 1)
    nex = np.sort(rng.choice(N_CATS, int(rng.integers(0, 3)), replace=False) + 1)
    return {"date_captured": "2013-11-14 16:28:13", "neg_category_ids": neg.tolist(), "id": img_id, "license": 3,
            "height": h, "width": w, "flickr_url": f"http://farm4.staticflickr.com/{img_id % 9000}/{img_id}_z.jpg",
            "coco_url": f"http://images.cocodataset.org/train2017/{name}", "not_exhaustive_category_ids": nex.tolist()}


LVIS_LAYOUT = Layout(
    ann_keys=("area", "id", "segmentation", "image_id", "bbox", "category_id"),
    image=lvis_image, segmentation=True, crowd_fraction=0.0, box_decimals=2,
    head={"info": {"description": "LVIS v1.0", "version": "1.0", "year": 2020, "date_created": "2020/01/20"}},
    tail={"licenses": [{"url": "http://creativecommons.org/licenses/by/2.0/", "id": 3, "name": "Attribution License"}]},
    order=("annotations", "images", "categories"), ann_id_span=1.0,
)


def lvis_categories(rng: np.random.Generator) -> tuple[list[dict[str, object]], np.ndarray]:
    """1203 categories (r/c/f by frequency) and their sampling weights (a long tail)."""
    weights = np.sort(rng.pareto(0.9, N_CATS))[::-1] + 0.01
    rng.shuffle(weights)
    rank = np.argsort(np.argsort(-weights))
    cats = []
    for i in range(N_CATS):
        name = f"thing_{i:04d}_{'ab'[i % 2]}"
        freq = "f" if rank[i] < 405 else "c" if rank[i] < 866 else "r"
        cats.append({"frequency": freq, "id": i + 1, "synset": f"{name}.n.01", "image_count": int(weights[i] * 10) + 1,
                     "instance_count": int(weights[i] * 37) + 1, "synonyms": [name, name.replace("_", " ")],
                     "def": f"a made-up thing number {i}, (for benchmarking)", "name": name})
    return cats, weights


def generate(root: Path, scale: str) -> dict[str, Path]:
    return generate_once(root, "lvis_v1_train.json", _generate, scale)


def _generate(path: Path, scale: str) -> None:
    s = SCALES[scale]
    cats, weights = lvis_categories(np.random.default_rng(SEED + 1))
    counts = write_coco_like(path, LVIS_LAYOUT, cats, s["images"], s["boxes_per_image"], SEED, cat_weights=weights)
    print(f"  generated {path} ({path.stat().st_size / 1e6:.0f} MB, {counts})", file=sys.stderr)


upstream, ours = converter_rows("lvis2odvg.py", "lvis2odvg")


class _Image(msgspec.Struct):
    coco_url: str
    neg_category_ids: list[int]
    not_exhaustive_category_ids: list[int]


def _federated_ok(inputs: dict[str, Path], our_path: Path) -> list[str]:
    """Our records' federated fields equal the input images' (ids - 1), image by image in order."""
    # streamed: loading the whole file here would grow the harness process, and every later child
    # forked from it would report that size as its own peak RSS
    want: dict[str, tuple[list[int], list[int]]] = {}
    for _, _, images in stream_members(inputs["json"], {"images": _Image}):
        for im in images:
            key = im.coco_url.replace("http://images.cocodataset.org/", "")
            want[key] = ([i - 1 for i in im.neg_category_ids], [i - 1 for i in im.not_exhaustive_category_ids])
    with open(our_path, "rb") as fh:
        for n, line in enumerate(fh, 1):
            rec = orjson.loads(line)
            got = (rec.get("neg_category_ids", []), rec.get("not_exhaustive_category_ids", []))
            if got != want[rec["filename"]]:
                return [f"line {n}: federated fields {got} != input {want[rec['filename']]}"]
    return []


def compare(inputs: dict[str, Path], out_upstream: Path, out_ours: Path) -> str:
    n, diffs = compare_records(out_upstream / "od.json", out_ours / "od.json",
                               drop_keys=("neg_category_ids", "not_exhaustive_category_ids"))
    diffs += compare_label_maps(out_upstream / "lvis_v1_label_map.json", out_ours / "lvis_v1_label_map.json")
    diffs += _federated_ok(inputs, out_ours / "od.json")
    if diffs:
        return "; ".join(diffs)
    return (f"same records ({n:,} images), same label map; odvgkit adds neg/not_exhaustive_category_ids "
            "(deviation, checked against the input)")
