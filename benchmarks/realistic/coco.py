"""Row ``coco``: a COCO-2017-shaped ``instances_train2017.json`` → ``coco2odvg.py -d coco``.

Written independently of ``benchmarks/synth.py``; shaped like the real file where a streaming
parser notices (measured on instances_val2017 / train2017):

* ``annotations`` **not grouped by image** (a seeded global permutation — real COCO interleaves);
* ``area`` a full-precision float (``702.1057499999998``), boxes and polygons with 2 decimals;
* ~1 % crowd annotations with an uncompressed RLE ``{"counts": [ints…], "size": [h, w]}`` (their
  ``}`` followed by ``,`` sits *inside* an element: a speculative cutter's trap) and COCO's
  12-digit crowd ids (``900100…``);
* polygon segmentations of 6–15 points and a tail to 60, sometimes several polygons per box;
* sparse ids (image ids up to 581,929, annotation ids up to ~9e5), COCO's 80 non-contiguous
  category ids (1..90), ``images[]`` in no particular id order;
* COCO's key order (segmentation, area, iscrowd, image_id, bbox, category_id, id) with a few
  percent of annotations in other orders; Python ``json.dump`` separators (``", "``, ``": "``);
* a few boxes upstream drops (under 1 px, outside the image, zero area).

``write_coco_like`` streams the document chunk by chunk (the Objects365-scale file is 1.6 GB) and
is shared with ``o365.py`` and ``lvis.py``. Deterministic: one seeded NumPy generator per file.
"""

from __future__ import annotations

import multiprocessing
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

SCALES = {"full": {"images": 118_287, "boxes_per_image": 7.3}, "small": {"images": 4_000, "boxes_per_image": 7.3}}
SEED = 2017
CHUNK = 50_000  # annotations formatted per step

# COCO 2017's category ids and names (non-contiguous ids 1..90), with their supercategories
COCO_CATEGORIES: list[tuple[int, str, str]] = [
    (1, "person", "person"), (2, "bicycle", "vehicle"), (3, "car", "vehicle"), (4, "motorcycle", "vehicle"),
    (5, "airplane", "vehicle"), (6, "bus", "vehicle"), (7, "train", "vehicle"), (8, "truck", "vehicle"),
    (9, "boat", "vehicle"), (10, "traffic light", "outdoor"), (11, "fire hydrant", "outdoor"),
    (13, "stop sign", "outdoor"), (14, "parking meter", "outdoor"), (15, "bench", "outdoor"),
    (16, "bird", "animal"), (17, "cat", "animal"), (18, "dog", "animal"), (19, "horse", "animal"),
    (20, "sheep", "animal"), (21, "cow", "animal"), (22, "elephant", "animal"), (23, "bear", "animal"),
    (24, "zebra", "animal"), (25, "giraffe", "animal"), (27, "backpack", "accessory"),
    (28, "umbrella", "accessory"), (31, "handbag", "accessory"), (32, "tie", "accessory"),
    (33, "suitcase", "accessory"), (34, "frisbee", "sports"), (35, "skis", "sports"),
    (36, "snowboard", "sports"), (37, "sports ball", "sports"), (38, "kite", "sports"),
    (39, "baseball bat", "sports"), (40, "baseball glove", "sports"), (41, "skateboard", "sports"),
    (42, "surfboard", "sports"), (43, "tennis racket", "sports"), (44, "bottle", "kitchen"),
    (46, "wine glass", "kitchen"), (47, "cup", "kitchen"), (48, "fork", "kitchen"), (49, "knife", "kitchen"),
    (50, "spoon", "kitchen"), (51, "bowl", "kitchen"), (52, "banana", "food"), (53, "apple", "food"),
    (54, "sandwich", "food"), (55, "orange", "food"), (56, "broccoli", "food"), (57, "carrot", "food"),
    (58, "hot dog", "food"), (59, "pizza", "food"), (60, "donut", "food"), (61, "cake", "food"),
    (62, "chair", "furniture"), (63, "couch", "furniture"), (64, "potted plant", "furniture"),
    (65, "bed", "furniture"), (67, "dining table", "furniture"), (70, "toilet", "furniture"),
    (72, "tv", "electronic"), (73, "laptop", "electronic"), (74, "mouse", "electronic"),
    (75, "remote", "electronic"), (76, "keyboard", "electronic"), (77, "cell phone", "electronic"),
    (78, "microwave", "appliance"), (79, "oven", "appliance"), (80, "toaster", "appliance"),
    (81, "sink", "appliance"), (82, "refrigerator", "appliance"), (84, "book", "indoor"),
    (85, "clock", "indoor"), (86, "vase", "indoor"), (87, "scissors", "indoor"), (88, "teddy bear", "indoor"),
    (89, "hair drier", "indoor"), (90, "toothbrush", "indoor"),
]


def dumps(value: object) -> bytes:
    """Python ``json.dump``'s separators (what COCO, Objects365 and LVIS were written with)."""
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).replace(b",", b", ").replace(b'":', b'": ')


@dataclass
class Layout:
    """What differs between the COCO-like files: keys and their usual order, extra members."""

    ann_keys: tuple[str, ...]  # usual key order of an annotation
    image: Callable[[int, int, int, np.random.Generator], dict[str, object]]  # (id, h, w) → image dict
    segmentation: bool  # polygons (COCO, LVIS) or none (Objects365)
    crowd_fraction: float  # COCO ~1 %, Objects365 ~1 % without RLE, LVIS 0 (no iscrowd key)
    box_decimals: int | None  # COCO/LVIS: 2; Objects365: float32 values (None)
    head: dict[str, object]  # members written before images (info, licenses)
    tail: dict[str, object]  # members written after categories
    order: tuple[str, ...] = ("images", "annotations", "categories")
    vary_fraction: float = 0.04  # annotations whose keys come in another order
    max_image_id: int = 581_929
    ann_id_span: float = 1.05  # annotation ids drawn from 1..span*N without repeats
    per_image_cat_ids: bool = False  # LVIS: neg/not_exhaustive_category_ids on each image


def coco_image(img_id: int, h: int, w: int, rng: np.random.Generator) -> dict[str, object]:
    name = f"{img_id:012d}.jpg"
    return {"license": int(rng.integers(1, 9)), "file_name": name,
            "coco_url": f"http://images.cocodataset.org/train2017/{name}", "height": h, "width": w,
            "date_captured": f"2013-11-{int(rng.integers(10, 29)):02d} {int(rng.integers(0, 24)):02d}:27:54",
            "flickr_url": f"http://farm{int(rng.integers(1, 10))}.staticflickr.com/{img_id % 9000}/{img_id}_{img_id * 7919 % 10**10:010x}_z.jpg",
            "id": img_id}


COCO_LAYOUT = Layout(
    ann_keys=("segmentation", "area", "iscrowd", "image_id", "bbox", "category_id", "id"),
    image=coco_image, segmentation=True, crowd_fraction=0.01, box_decimals=2,
    head={"info": {"description": "COCO 2017 Dataset", "url": "http://cocodataset.org", "version": "1.0",
                   "year": 2017, "contributor": "COCO Consortium", "date_created": "2017/09/01"},
          "licenses": [{"url": f"http://creativecommons.org/licenses/by-nc-sa/2.0/{i}", "id": i,
                        "name": "Attribution-NonCommercial-ShareAlike License"} for i in range(1, 9)]},
    tail={},
)


def _sizes(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Image heights and widths as in COCO: mostly 640 on the long side, 480/427/… on the other."""
    long = np.where(rng.random(n) < 0.93, 640, rng.integers(300, 641, n))
    short = rng.choice(np.array([480, 427, 426, 424, 425, 428, 429, 360, 512, 383, 457, 640]), n,
                       p=np.array([.42, .2, .08, .04, .04, .03, .03, .04, .04, .02, .02, .04]))
    landscape = rng.random(n) < 0.7
    return np.where(landscape, short, long), np.where(landscape, long, short)  # heights, widths


def _fmt_floats(values: np.ndarray) -> list[bytes]:
    """Shortest round-trip text of each float (Python's ``repr``), in one orjson call."""
    if not len(values):
        return []
    return orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY)[1:-1].split(b",")


def _fmt_boxes(boxes: np.ndarray) -> list[bytes]:
    if not len(boxes):
        return []
    text = orjson.dumps(boxes, option=orjson.OPT_SERIALIZE_NUMPY)[2:-2]
    return [b"[" + t.replace(b",", b", ") + b"]" for t in text.split(b"],[")]


def write_coco_like(path: Path, layout: Layout, categories: list[dict[str, object]], n_images: int,
                    boxes_per_image: float, seed: int, cat_weights: np.ndarray | None = None,
                    special_image_ids: tuple[int, ...] = ()) -> dict[str, int]:
    """Write the whole document to ``path`` (via ``path.tmp``), streaming; returns counts."""
    rng = np.random.default_rng(seed)
    ids = rng.choice(layout.max_image_id, n_images, replace=False) + 1  # random order, sparse
    for k, special in enumerate(special_image_ids):
        if special not in ids:
            ids[k * 7 + 3] = special
    heights, widths = _sizes(rng, n_images)
    per_image = rng.negative_binomial(2, 2 / (2 + boxes_per_image), n_images)  # mean boxes_per_image, long tail
    n_ann = int(per_image.sum())
    img_index = np.repeat(np.arange(n_images, dtype=np.int32), per_image)
    perm = rng.permutation(n_ann)  # annotations NOT grouped by image
    img_index = img_index[perm]
    del perm
    cat_ids = np.array([c["id"] for c in categories], dtype=np.int64)
    weights = cat_weights if cat_weights is not None else rng.pareto(1.2, len(cat_ids)) + 0.05
    cat_of = cat_ids[rng.choice(len(cat_ids), n_ann, p=weights / weights.sum())]
    crowd = rng.random(n_ann) < layout.crowd_fraction
    ann_ids = np.sort(rng.choice(int(n_ann * layout.ann_id_span) + 10, n_ann, replace=False) + 1)
    if layout is COCO_LAYOUT:  # COCO's crowd annotations have 12-digit ids 900100xxxxxx
        ann_ids = np.where(crowd, 900_100_000_000 + ann_ids, ann_ids)
    counts = {"images": n_images, "annotations": n_ann, "crowd": int(crowd.sum())}
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb", buffering=1 << 22) as fh:
        fh.write(b"{")
        first = True
        for key, value in layout.head.items():
            fh.write((b"" if first else b", ") + dumps(key) + b": " + dumps(value))
            first = False
        for member in layout.order:
            fh.write((b"" if first else b", ") + dumps(member) + b": [")
            first = False
            if member == "images":
                _write_images(fh, layout, ids, heights, widths, rng)
            elif member == "annotations":
                for lo in range(0, n_ann, CHUNK):
                    hi = min(lo + CHUNK, n_ann)
                    sel = img_index[lo:hi]
                    fh.write((b", " if lo else b"") + b", ".join(
                        _annotations(layout, rng, ids[sel], heights[sel], widths[sel], cat_of[lo:hi], crowd[lo:hi],
                                     ann_ids[lo:hi])))
            else:
                fh.write(b", ".join(dumps(c) for c in categories))
            fh.write(b"]")
        for key, value in layout.tail.items():
            fh.write(b", " + dumps(key) + b": " + dumps(value))
        fh.write(b"}")
    tmp.replace(path)
    return counts


def _write_images(fh, layout: Layout, ids: np.ndarray, heights: np.ndarray, widths: np.ndarray,
                  rng: np.random.Generator) -> None:
    parts = []
    for k, (i, h, w) in enumerate(zip(ids.tolist(), heights.tolist(), widths.tolist(), strict=True)):
        parts.append(dumps(layout.image(i, h, w, rng)))
        if len(parts) == 20_000 or k == len(ids) - 1:
            fh.write((b", " if k >= 20_000 else b"") + b", ".join(parts))
            parts = []


def _annotations(layout: Layout, rng: np.random.Generator, img_ids: np.ndarray, h: np.ndarray, w: np.ndarray,
                 cats: np.ndarray, crowd: np.ndarray, ann_ids: np.ndarray) -> Iterator[bytes]:
    n = len(img_ids)
    # boxes: inside the image, a few under 1 px, a few outside (upstream drops those)
    bw = np.maximum(w * rng.beta(0.7, 3.0, n), 1.5 + rng.random(n) * 4)
    bh = np.maximum(h * rng.beta(0.7, 3.0, n), 1.5 + rng.random(n) * 4)
    x = rng.random(n) * np.maximum(w - bw, 0)
    y = rng.random(n) * np.maximum(h - bh, 0)
    odd = rng.random(n)
    bw = np.where(odd < 0.002, rng.random(n) * 0.9 + 0.05, bw)  # under 1 px
    x = np.where((odd >= 0.002) & (odd < 0.003), w + 5 + rng.random(n) * 20, x)  # outside the image
    box = np.stack([x, y, bw, bh], axis=1)
    # Objects365 (no decimals given): binary fractions, as float32 boxes print them (1232.265625, 38.25)
    box = np.round(box, layout.box_decimals) if layout.box_decimals is not None else np.round(box * 64) / 64
    area = box[:, 2] * box[:, 3] * (0.35 + 0.6 * rng.random(n))  # full precision, like polygon areas
    area = np.where((odd >= 0.003) & (odd < 0.0035), 0.0, area)
    box_text = _fmt_boxes(box)
    area_text = _fmt_floats(area)
    vary = rng.random(n) < layout.vary_fraction
    perms = [rng.permutation(len(layout.ann_keys)) for _ in range(8)]
    seg_text = _segmentations(layout, rng, box, h, w, crowd) if layout.segmentation else None
    extra = rng.random(n) if layout is not COCO_LAYOUT else None
    for k in range(n):
        fields: dict[str, bytes] = {}
        for key in layout.ann_keys:
            if key == "segmentation":
                fields[key] = seg_text[k]
            elif key == "area":
                fields[key] = area_text[k]
            elif key == "iscrowd":
                fields[key] = b"1" if crowd[k] else b"0"
            elif key == "image_id":
                fields[key] = b"%d" % img_ids[k]
            elif key == "bbox":
                fields[key] = box_text[k]
            elif key == "category_id":
                fields[key] = b"%d" % cats[k]
            elif key == "id":
                fields[key] = b"%d" % ann_ids[k]
            elif key == "isfake":
                fields[key] = b"1" if extra[k] < 0.004 else b"0"
            elif key == "isreflected":
                fields[key] = b"1" if extra[k] > 0.997 else b"0"
        keys = layout.ann_keys
        if vary[k]:
            keys = tuple(keys[j] for j in perms[k % len(perms)])
        yield b"{" + b", ".join(b'"%s": %s' % (key.encode(), fields[key]) for key in keys) + b"}"


def _segmentations(layout: Layout, rng: np.random.Generator, box: np.ndarray, h: np.ndarray, w: np.ndarray,
                   crowd: np.ndarray) -> list[bytes]:
    """Polygons of 6–15 points (a long tail to 60), 1–4 per box; crowd boxes an uncompressed RLE."""
    n = len(box)
    out: list[bytes] = []
    n_polys = np.where(rng.random(n) < 0.88, 1, rng.integers(2, 5, n))
    n_points = rng.integers(6, 16, (n, 4))
    n_points = np.where(rng.random((n, 4)) < 0.08, rng.integers(16, 61, (n, 4)), n_points)
    coords = rng.random(int(n_points.sum() * 2) + 2)
    at = 0
    for k in range(n):
        if crowd[k]:
            length = int(rng.integers(40, 1500))
            runs = rng.integers(1, 300, length)
            out.append(dumps({"counts": runs, "size": [int(h[k]), int(w[k])]}))
            continue
        x, y, bw, bh = box[k]
        polys = []
        for p in range(n_polys[k]):
            m = int(n_points[k, p])
            xy = coords[at:at + 2 * m].reshape(m, 2) * (bw, bh) + (x, y)
            at += 2 * m
            polys.append(np.round(xy.ravel(), 2))
        out.append(dumps(polys))
    return out


def coco_categories() -> list[dict[str, object]]:
    return [{"supercategory": s, "id": i, "name": n} for i, n, s in COCO_CATEGORIES]


def fresh_output(path: Path) -> None:
    """Remove the previous run's output before odvgkit runs again (upstream overwrites blindly).

    odvgkit never replaces an output silently: over an identical file it compares the bytes and
    keeps the old one, which on a repeated run costs a read of both files (1.1 GB each at
    Objects365 scale) — work a first conversion never does, so it is kept out of the timing.
    """
    path.unlink(missing_ok=True)


def in_child(fn: Callable[..., object], *args: object) -> None:
    """Run a generator in a forked child: the harness forks every measured process from its own,
    and a child's peak RSS (``ru_maxrss``) starts at its parent's size, so the harness stays small."""
    proc = multiprocessing.get_context("fork").Process(target=fn, args=args)
    proc.start()
    proc.join()
    if proc.exitcode != 0:
        raise SystemExit(f"generating {args[0]} failed (exit code {proc.exitcode})")


def _generate(path: Path, scale: str) -> None:
    s = SCALES[scale]
    counts = write_coco_like(path, COCO_LAYOUT, coco_categories(), s["images"], s["boxes_per_image"], SEED)
    print(f"  generated {path} ({path.stat().st_size / 1e6:.0f} MB, {counts})", file=sys.stderr)


def generate_once(root: Path, name: str, gen: Callable[[Path, str], None], scale: str) -> dict[str, Path]:
    """``root/name``, written by ``gen`` in a forked child (kept and reused when already there)."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / name
    if not path.exists():
        in_child(gen, path, scale)
    return {"json": path}


def converter_rows(script: str, command: str, *flags: str) -> tuple[Callable[..., list[str]], Callable[..., list[str]]]:
    """``upstream`` and ``ours`` of a one-JSON-in, ``od.json``-out converter row."""

    def upstream(inputs: dict[str, Path], out: Path, scripts: Path) -> list[str]:
        return [str(scripts / script), str(inputs["json"]), *flags, "-o", str(out / "od.json")]

    def ours(inputs: dict[str, Path], out: Path) -> list[str]:
        fresh_output(out / "od.json")
        return ["-m", "odvgkit", "convert", command, str(inputs["json"]), *flags, "-o", str(out / "od.json"),
                "--quiet", "--force"]

    return upstream, ours


def generate(root: Path, scale: str) -> dict[str, Path]:
    return generate_once(root, "instances_train2017.json", _generate, scale)


upstream, ours = converter_rows("coco2odvg.py", "coco2odvg", "-d", "coco")


def compare_records(up_path: Path, our_path: Path, drop_keys: tuple[str, ...] = ()) -> tuple[int, list[str]]:
    """Records compared value by value, line by line: ``(records, differences (at most 5))``."""
    diffs: list[str] = []
    n = 0
    with open(up_path, "rb") as a, open(our_path, "rb") as b:
        for n, (la, lb) in enumerate(zip(a, b, strict=False), 1):
            ra, rb = orjson.loads(la), orjson.loads(lb)
            for key in drop_keys:
                rb.pop(key, None)
            if ra != rb and len(diffs) < 5:
                diffs.append(f"line {n}: upstream {str(ra)[:200]} != odvgkit {str(rb)[:200]}")
        rest_a, rest_b = a.read(), b.read()
    if rest_a or rest_b:
        diffs.append(f"different number of records (after line {n}: {'upstream' if rest_a else 'odvgkit'} has more)")
    return n, diffs


def compare_label_maps(up: Path, mine: Path) -> list[str]:
    a, b = orjson.loads(up.read_bytes()), orjson.loads(mine.read_bytes())
    return [] if a == b else [f"label maps differ: {up} vs {mine}"]


def compare(inputs: dict[str, Path], out_upstream: Path, out_ours: Path) -> str:
    n, diffs = compare_records(out_upstream / "od.json", out_ours / "od.json")
    diffs += compare_label_maps(out_upstream / "coco2017_label_map.json", out_ours / "coco2017_label_map.json")
    return f"same records ({n:,} images), same label map" if not diffs else "; ".join(diffs)
