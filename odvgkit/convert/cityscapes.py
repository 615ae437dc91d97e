"""Cityscapes gtFine polygons → ODVG OD records for the 8 instance classes.

Same images and boxes as MMDetection's route (``tools/dataset_converters/cityscapes.py`` then
``coco2odvg``), derived from what that route does rather than from the polygons' extents:

1. cityscapesScripts' ``json2instanceImg`` paints every object's polygon, in file order, into an
   ``"I"`` image with PIL (``deleted`` objects skipped, ``license plate`` (id −1) not painted,
   ``<class>group`` objects painted with the bare class id, individual objects with
   ``class id × 1000 + n``): later objects hide earlier ones.
2. ``cityscapes.py`` reads that image; every id ≥ 24 is an object; its box is pycocotools'
   ``toBbox`` of its pixels (``[x, y, w, h]`` with ``w = last column − first column + 1``);
   ids < 1000 (groups) are crowd; classes without instances or ignored in evaluation
   (caravan, trailer) are left out. Categories are the 8 classes in id order.
3. ``coco2odvg`` drops the crowd boxes and writes ``[x, y, x + w, y + h]``.

So a box here is the extent of the *visible* pixels of the object after painting all polygons
with PIL, exactly as in the ``gtFine_instanceIds.png`` cityscapesScripts makes; an object hidden
completely has no box (counted). Instances come in ascending instance-id order (upstream's
``np.unique``), images in sorted path order (upstream: ``glob`` order). Deviations: see
docs/deviations.md (polygons of < 3 points are reported and not painted; unknown labels are
reported instead of aborting).

Memory is one image canvas (``2048 × 1024 × 4`` bytes) at a time.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from PIL import Image, ImageDraw

from odvgkit.convert.base import Conversion
from odvgkit.errors import OdvgError, ProblemLog
from odvgkit.images import image_size


class CsLabel(NamedTuple):
    name: str
    id: int
    has_instances: bool
    ignore_in_eval: bool


# cityscapesScripts helpers/labels.py: name, id, hasInstances, ignoreInEval (the columns used here)
LABELS = [
    CsLabel("unlabeled", 0, False, True), CsLabel("ego vehicle", 1, False, True),
    CsLabel("rectification border", 2, False, True), CsLabel("out of roi", 3, False, True),
    CsLabel("static", 4, False, True), CsLabel("dynamic", 5, False, True), CsLabel("ground", 6, False, True),
    CsLabel("road", 7, False, False), CsLabel("sidewalk", 8, False, False), CsLabel("parking", 9, False, True),
    CsLabel("rail track", 10, False, True), CsLabel("building", 11, False, False), CsLabel("wall", 12, False, False),
    CsLabel("fence", 13, False, False), CsLabel("guard rail", 14, False, True), CsLabel("bridge", 15, False, True),
    CsLabel("tunnel", 16, False, True), CsLabel("pole", 17, False, False), CsLabel("polegroup", 18, False, True),
    CsLabel("traffic light", 19, False, False), CsLabel("traffic sign", 20, False, False),
    CsLabel("vegetation", 21, False, False), CsLabel("terrain", 22, False, False), CsLabel("sky", 23, False, False),
    CsLabel("person", 24, True, False), CsLabel("rider", 25, True, False), CsLabel("car", 26, True, False),
    CsLabel("truck", 27, True, False), CsLabel("bus", 28, True, False), CsLabel("caravan", 29, True, True),
    CsLabel("trailer", 30, True, True), CsLabel("train", 31, True, False), CsLabel("motorcycle", 32, True, False),
    CsLabel("bicycle", 33, True, False), CsLabel("license plate", -1, False, True),
]
NAME2LABEL = {lab.name: lab for lab in LABELS}
# the categories upstream writes: instance classes not ignored in evaluation, in id order
CLASSES = [lab.name for lab in sorted(LABELS, key=lambda x: x.id) if lab.has_instances and not lab.ignore_in_eval]
_LABEL_OF_ID = {NAME2LABEL[n].id: i for i, n in enumerate(CLASSES)}  # class id → 0-based label
SPLITS = ("train", "val")


def polygon_files(root: Path, split: str) -> list[Path]:
    if split not in SPLITS:
        raise OdvgError(f"--split {split!r}: choose one of {', '.join(SPLITS)}")
    gt = root / "gtFine" / split
    if not gt.is_dir():
        raise OdvgError(f"{gt}: no such directory (ROOT must hold gtFine/{split}/<city>/*_gtFine_polygons.json)")
    files = sorted(gt.glob("*/*_gtFine_polygons.json"), key=lambda p: p.relative_to(gt).as_posix())
    if not files:
        raise OdvgError(f"{gt}: no */*_gtFine_polygons.json files (not a Cityscapes gtFine folder?)")
    return files


def cityscapes_to_odvg(
    root: str | Path,
    split: str = "train",
    *,
    read_images: bool = True,
    problems: ProblemLog | None = None,
    on_files: Callable[[int], None] | None = None,
) -> Conversion:
    """Convert ``ROOT/gtFine/<split>``; image sizes are checked against ``ROOT/leftImg8bit/<split>``."""
    root = Path(root)
    problems = problems if problems is not None else ProblemLog()
    files = polygon_files(root, split)
    img_dir = root / "leftImg8bit" / split
    if read_images and not img_dir.is_dir():
        raise OdvgError(f"{img_dir}: no such directory (the images; --no-images converts without checking them)")
    stats: Counter[str] = Counter()
    return Conversion(
        records=_records(files, img_dir, read_images, problems, stats, on_files),
        label_map={str(i): n for i, n in enumerate(CLASSES)},
        stats=stats,
        total=len(files),
    )


def _records(
    files: list[Path], img_dir: Path, read_images: bool, problems: ProblemLog, stats: Counter[str],
    on_files: Callable[[int], None] | None,
) -> Iterator[dict[str, Any]]:
    for f in files:
        stats["files"] += 1
        rec = _record(f, img_dir, read_images, problems, stats)
        if on_files is not None:
            on_files(1)
        if rec is not None:
            stats["images"] += 1
            stats["boxes"] += len(rec["detection"]["instances"])
            yield rec


def _record(f: Path, img_dir: Path, read_images: bool, problems: ProblemLog, stats: Counter[str]) -> dict[str, Any] | None:
    try:
        doc = json.loads(f.read_bytes())
    except json.JSONDecodeError as exc:
        problems.error("malformed-json", f, exc.lineno, None, f"malformed JSON: {exc.msg} (column {exc.colno})")
        stats["images_skipped:malformed"] += 1
        return None
    w, h = (doc.get("imgWidth"), doc.get("imgHeight")) if isinstance(doc, dict) else (None, None)
    if not (_pos_int(w) and _pos_int(h)) or not isinstance(doc.get("objects"), list):
        problems.error("bad-file", f, None, "imgWidth/imgHeight/objects",
                       "not a Cityscapes polygons file (needs positive imgWidth, imgHeight and an objects list)")
        stats["images_skipped:bad-file"] += 1
        return None
    city = f.parent.name
    stem = f.name[: -len("_gtFine_polygons.json")]
    filename = f"{city}/{stem}_leftImg8bit.png"
    if read_images:
        image = img_dir / filename
        try:
            size = image_size(image)
        except OdvgError as exc:
            missing = str(exc).endswith("image not found")
            code = "image-not-found" if missing else "unreadable-image"
            problems.error(code, f, None, "image", f"image {image} not found" if missing else f"unreadable image header: {image}")
            stats[f"images_skipped:{code}"] += 1
            return None
        if size != (w, h):
            problems.error("size-mismatch", f, None, "imgWidth/imgHeight",
                           f"{w}x{h} in the JSON but the image {image.name} is {size[0]}x{size[1]}")
            stats["images_skipped:size-mismatch"] += 1
            return None
    return {"filename": filename, "height": h, "width": w,
            "detection": {"instances": _instances(f, doc["objects"], w, h, problems, stats)}}


def _pos_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def _instances(
    f: Path, objects: list[Any], w: int, h: int, problems: ProblemLog, stats: Counter[str]
) -> list[dict[str, Any]]:
    canvas = Image.new("I", (w, h), NAME2LABEL["unlabeled"].id)
    draw = ImageDraw.Draw(canvas)
    count = {lab.name: 0 for lab in LABELS if lab.has_instances}
    windows: dict[int, tuple[int, int, int, int]] = {}  # instance id → where its pixels can be
    groups: set[int] = set()
    for k, obj in enumerate(objects):
        where = f"objects[{k}]"
        if not isinstance(obj, dict):
            problems.error("bad-object", f, where, None, "must be an object")
            continue
        if obj.get("deleted"):
            continue
        name = obj.get("label")
        is_group = False
        if isinstance(name, str) and name not in NAME2LABEL and name.endswith("group"):
            name, is_group = name[: -len("group")], True
        lab = NAME2LABEL.get(name) if isinstance(name, str) else None
        if lab is None:
            problems.error("unknown-class", f, where, "label", f"{obj.get('label')!r} is not a Cityscapes label")
            continue
        poly = _polygon(f, where, obj.get("polygon"), w, h, problems)
        if poly is None:
            continue
        pid = lab.id
        if lab.has_instances and not is_group:
            pid = lab.id * 1000 + count[lab.name]
            count[lab.name] += 1
        if pid < 0:
            continue
        draw.polygon([tuple(p) for p in poly], fill=pid)
        if pid >= 1000 and lab.id in _LABEL_OF_ID:
            xs, ys = [p[0] for p in poly], [p[1] for p in poly]
            windows[pid] = (
                max(0, math.floor(min(xs)) - 1), max(0, math.floor(min(ys)) - 1),
                min(w, math.ceil(max(xs)) + 2), min(h, math.ceil(max(ys)) + 2),
            )
        elif pid >= 1000:
            stats["instances_skipped:ignored-in-eval"] += 1
        elif lab.id in _LABEL_OF_ID:
            groups.add(pid)
    pixels = np.asarray(canvas)
    out = []
    for pid in sorted(windows):
        x0, y0, x1, y1 = windows[pid]
        mask = pixels[y0:y1, x0:x1] == pid
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        if len(rows) == 0:
            stats["instances_hidden"] += 1  # painted over completely: upstream has no such object either
            continue
        label = _LABEL_OF_ID[pid // 1000]
        box = [float(x0 + cols[0]), float(y0 + rows[0]), float(x0 + cols[-1] + 1), float(y0 + rows[-1] + 1)]
        out.append({"bbox": box, "label": label, "category": CLASSES[label]})
    stats["boxes_dropped:crowd"] += sum(1 for g in groups if (pixels == g).any())
    return out


def _polygon(f: Path, where: str, poly: Any, w: int, h: int, problems: ProblemLog) -> list[list[float]] | None:
    if not isinstance(poly, list) or not all(isinstance(p, list) and len(p) == 2 for p in poly):
        problems.error("bad-points", f, where, "polygon", "must be a list of [x, y] pairs")
        return None
    for x, y in poly:
        if isinstance(x, bool) or isinstance(y, bool) or not isinstance(x, (int, float)) or not isinstance(y, (int, float)):
            problems.error("bad-coordinate", f, where, "polygon", f"coordinate is not a number: [{x!r}, {y!r}]")
            return None
        if not (math.isfinite(x) and math.isfinite(y)):
            problems.error("bad-coordinate", f, where, "polygon", f"coordinate is not finite: [{x!r}, {y!r}]")
            return None
    if len(poly) < 3:
        problems.error("polygon-too-few-points", f, where, "polygon", f"needs at least 3 points, got {len(poly)}")
        return None
    if min(min(x, y) for x, y in poly) < 0 or max(x for x, _ in poly) > w or max(y for _, y in poly) > h:
        # upstream paints it clipped to the canvas; so does this (the box is the visible part)
        problems.warn("polygon-outside-image", f, where, "polygon", f"reaches outside the {w}x{h} image; clipped as upstream's painting does")
    return poly
