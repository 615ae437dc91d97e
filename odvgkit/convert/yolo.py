"""YOLO txt labels (Ultralytics and darknet layouts) → ODVG OD records + label map.

One ``.txt`` per image, one object per line: ``class cx cy w h`` normalised to [0, 1], or — YOLO
segmentation — ``class x1 y1 x2 y2 …`` (≥ 3 points), which becomes the polygon's enclosing box.
The label file of ``…/images/…/x.jpg`` is ``…/labels/…/x.txt`` (Ultralytics' rule); without an
``images`` folder (darknet) it lies beside the image. Class names come from ``data.yaml``
(``names`` as a list or a ``{id: name}`` mapping) or from a darknet ``classes.txt``/``obj.names``.

Boxes: ``[(cx - w/2)·W, (cy - h/2)·H, (cx + w/2)·W, (cy + h/2)·H]`` with ``W×H`` from the image
header (EXIF orientations 5–8 swap W and H, as the cv2 decoder MMDetection and Ultralytics train with does;
Ultralytics' own ``exif_size`` check swaps only for 6 and 8, JPEG only; pixels are never decoded),
clipped to the image (a rounding overshoot; counted ``boxes_clipped``). A box under 1 px is dropped
and counted as ``degenerate`` (``ODVGDataset`` would drop it). An empty or missing label file is an
image without boxes (Ultralytics' background images).

Bad lines — 4 or 6 columns, a value outside [0, 1] or not a number, a class id outside ``names``,
a segment with fewer than 3 points — are one-line problems ``labels.txt:LINE: field: message``;
the line is skipped (the image stays), ``--strict`` stops. An unreadable image header skips the
image. ``data.yaml`` needs PyYAML (the ``curate`` extra); darknet ``classes.txt`` needs nothing.

Speed (issue #13): forked workers (:mod:`odvgkit.convert._perfile`); image sizes from
:mod:`odvgkit.images`' own JPEG/PNG header reader (Pillow for anything it does not mirror); the
common line (``class cx cy w h``, all in range) is checked and turned into a box inline, every
other line goes through :meth:`_Parser._line` (tests compare the two); file listing and label
paths use string operations with the semantics of ``os.path.splitext``/``join``/``relpath``.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from odvgkit.convert._perfile import (
    Chunk,
    FileConversion,
    is_image_name,
    map_chunks,
    read_file,
    replay,
    without_ext,
)
from odvgkit.errors import OdvgError, ProblemLog, require
from odvgkit.images import image_size

SPLITS = ("train", "val", "test")
CLASS_FILES = ("classes.txt", "obj.names", "labels/classes.txt")
_FIELDS = ("cx", "cy", "w", "h")

Item = tuple[str, str]  # (image path, label path)


def read_names(root: Path, data: Path | None) -> tuple[list[str], dict[str, Any] | None, str]:
    """Class names, the parsed ``data.yaml`` (or None) and where the names came from."""
    if data is None:
        for cand in ("data.yaml", "data.yml", "dataset.yaml"):
            if (root / cand).is_file():
                data = root / cand
                break
    if data is not None:
        yaml = require("yaml", "curate")
        try:
            doc = yaml.safe_load(data.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise OdvgError(f"{data}: no such file") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{data}:{mark.line + 1}" if mark is not None else str(data)
            raise OdvgError(f"{where}: malformed YAML: {getattr(exc, 'problem', exc)}") from None
        if not isinstance(doc, dict) or "names" not in doc:
            raise OdvgError(f"{data}: names: missing (a YOLO data.yaml lists its classes under 'names')")
        names = doc["names"]
        if isinstance(names, dict):
            try:
                ids = sorted(int(k) for k in names)
            except (TypeError, ValueError):
                raise OdvgError(f"{data}: names: keys must be class ids 0..N-1") from None
            if ids != list(range(len(ids))):
                raise OdvgError(f"{data}: names: ids must be 0..{len(ids) - 1} without gaps, got {ids[:10]}")
            names = [names[k] if k in names else names[str(k)] for k in ids]
        if not isinstance(names, list) or not names or any(not isinstance(n, (str, int)) or str(n) == "" for n in names):
            raise OdvgError(f"{data}: names: expected a non-empty list or {{id: name}} mapping of names")
        return [str(n) for n in names], doc, str(data)
    for cand in CLASS_FILES:
        p = root / cand
        if p.is_file():
            names = [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines() if ln.strip()]
            if not names:
                raise OdvgError(f"{p}: no class names")
            return names, None, str(p)
    if (root / "Annotations").is_dir():
        raise OdvgError(f"{root}: a Pascal VOC dataset (Annotations/); use 'odvgkit convert voc2odvg'")
    raise OdvgError(f"{root}: no class names: give --data data.yaml or put classes.txt in {root}")


def _images_under(folder: Path, recursive: bool) -> list[str]:
    """Image paths as strings, sorted (strings: sorting 10⁵ ``Path`` objects costs seconds)."""
    found: list[str] = []
    if recursive:
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames.sort()
            base = dirpath if dirpath.endswith(os.sep) else dirpath + os.sep  # os.path.join
            found += [base + f for f in filenames if is_image_name(f)]
    else:
        base = str(folder)
        base = base if base.endswith(os.sep) else base + os.sep
        found = [base + f for f in os.listdir(folder) if is_image_name(f)]
    return sorted(found)



def _entry_images(entry: Any, bases: list[Path], data: str, key: str) -> list[str]:
    """One ``train:``/``val:`` entry of data.yaml: a folder, a txt list of images, or a list of those."""
    if isinstance(entry, list):
        return [p for e in entry for p in _entry_images(e, bases, data, key)]
    if not isinstance(entry, str):
        raise OdvgError(f"{data}: {key}: {entry!r}: expected a folder or a .txt file")
    # Roboflow exports write 'train: ../train/images' beside the train/ folder; Ultralytics reads
    # a leading '../' relative to the dataset root, so both readings are tried
    tries = [entry, entry[3:]] if entry.startswith("../") else [entry]
    for base, e in ((b, e) for e in tries for b in bases):
        p = (base / e).resolve() if not os.path.isabs(e) else Path(e)
        if p.is_dir():
            return _images_under(p, recursive=True)
        if p.is_file():
            out = []
            for ln in p.read_text(encoding="utf-8").splitlines():
                ln = ln.strip()
                if ln:
                    out.append(ln if os.path.isabs(ln) else str((p.parent / ln).resolve()))
            return out
    looked = ", ".join(dict.fromkeys(str(b) for b in bases))
    raise OdvgError(f"{data}: {key}: {entry!r}: no such folder or file (looked in {looked})")


def label_path(image: str) -> str:
    """Ultralytics' ``img2label_paths``: the last ``/images/`` → ``/labels/``, extension → ``.txt``."""
    sa, sb = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    base = sb.join(image.rsplit(sa, 1)) if sa in image else image
    return without_ext(base) + ".txt"


def yolo_items(root: Path, split: str | None, doc: dict[str, Any] | None, data: str) -> tuple[list[Item], str]:
    if not root.is_dir():
        raise OdvgError(f"{root}: no such folder (give the dataset root)")
    if split is not None and doc is not None:
        if split not in doc or doc[split] in (None, ""):
            raise OdvgError(f"{data}: {split}: not listed (the file lists {', '.join(k for k in SPLITS if doc.get(k))})")
        yaml_dir = Path(data).parent
        bases = [root, yaml_dir]
        if isinstance(doc.get("path"), str):
            p = Path(doc["path"])
            bases.insert(0, p if p.is_absolute() else yaml_dir / p)
        images = _entry_images(doc[split], bases, data, split)
        layout = f"data.yaml {split}: {doc[split]}"
    elif split is not None:
        folder = root / "images" / split
        if not folder.is_dir():
            raise OdvgError(f"{folder}: no such folder (--split needs images/<split>/ or a data.yaml)")
        images, layout = _images_under(folder, recursive=True), f"images/{split}/"
    elif (root / "images").is_dir():
        images, layout = _images_under(root / "images", recursive=True), "every image under images/"
    else:
        images, layout = _images_under(root, recursive=False), "flat folder (darknet)"
    if not images:
        if (root / "Annotations").is_dir():
            raise OdvgError(f"{root}: a Pascal VOC dataset (Annotations/); use 'odvgkit convert voc2odvg'")
        raise OdvgError(f"{root}: no images found ({layout})")
    flat = layout.startswith("flat")  # darknet: each label beside its image
    seen: set[str] = set()
    items: list[Item] = []
    for img in images:
        s = str(img)
        if s not in seen:
            seen.add(s)
            items.append((s, without_ext(s) + ".txt" if flat else label_path(s)))
    return items, layout


class _Parser:
    def __init__(self, root: Path, names: list[str], exif: bool) -> None:
        self.root = root
        self.prefix = str(root) + os.sep  # filenames below it are sliced, not os.path.relpath'd
        self.names = names
        self.exif = exif

    def __call__(self, items: Sequence[Item]) -> Chunk:
        chunk = Chunk()
        lines: list[bytes] = []
        dumps = orjson.dumps
        for image, labels in items:
            rec = self.one(chunk, image, labels)
            if rec is not None:
                lines.append(dumps(rec))
        chunk.count = len(lines)
        chunk.files = len(items)
        chunk.data = b"\n".join(lines) + b"\n" if lines else b""
        return chunk

    def _relative(self, image: str) -> str:
        prefix = self.prefix
        if image.startswith(prefix):
            rest = image[len(prefix) :]
            if "/." not in "/" + rest and "//" not in rest and (os.sep == "/" or "." not in rest.split(os.sep)):
                return rest.replace(os.sep, "/")  # what relpath gives for a normalised path below root
        return os.path.relpath(image, self.root).replace(os.sep, "/")

    def one(self, chunk: Chunk, image: str, labels: str) -> dict[str, Any] | None:
        try:
            width, height = image_size(image, self.exif)
        except OdvgError as exc:
            chunk.error("image-unreadable", image, None, None, str(exc).split(": ", 1)[-1])
            return None
        try:
            text = read_file(labels).decode("utf-8")
        except FileNotFoundError:
            text = None
            chunk.stats["images_without_label_file"] += 1
        except UnicodeDecodeError:
            chunk.error("bad-encoding", labels, None, None, "not UTF-8 text (not a YOLO label file?)")
            return None
        instances: list[dict[str, Any]] = []
        n_names = len(self.names)
        names = self.names
        clipped = 0
        for lineno, line in enumerate(text.splitlines() if text else (), 1):
            parts = line.split()
            if not parts:
                continue
            # the common line — class cx cy w h, all in range — inline; anything else: _line
            if len(parts) == 5:
                try:
                    cls = int(parts[0])
                    cx, cy, w, h = float(parts[1]), float(parts[2]), float(parts[3]), float(parts[4])
                except ValueError:
                    cls = -1
                if (0 <= cls < n_names and 0.0 <= cx <= 1.0 and 0.0 <= cy <= 1.0 and 0.0 <= w <= 1.0
                        and 0.0 <= h <= 1.0):
                    x1, y1 = (cx - w / 2) * width, (cy - h / 2) * height
                    x2, y2 = (cx + w / 2) * width, (cy + h / 2) * height
                    if x1 < 0.0 or y1 < 0.0 or x2 > width or y2 > height:
                        # min(max(v, 0.0), size), as _line: the same objects (int sizes, -0.0)
                        x1, y1 = min(max(x1, 0.0), width), min(max(y1, 0.0), height)
                        x2, y2 = min(max(x2, 0.0), width), min(max(y2, 0.0), height)
                        if x2 - x1 >= 1 and y2 - y1 >= 1:
                            clipped += 1
                            instances.append({"bbox": [x1, y1, x2, y2], "label": cls, "category": names[cls]})
                            continue
                    elif x2 - x1 >= 1 and y2 - y1 >= 1:
                        instances.append({"bbox": [x1, y1, x2, y2], "label": cls, "category": names[cls]})
                        continue
            inst = self._line(chunk, labels, lineno, parts, width, height)
            if inst is not None:
                instances.append(inst)
        stats = chunk.stats
        if clipped:
            stats["boxes_clipped"] += clipped
        stats["images"] += 1
        stats["boxes"] += len(instances)
        if not instances:
            stats["images_without_boxes"] += 1
        return {"filename": self._relative(image), "height": height, "width": width, "detection": {"instances": instances}}

    def _line(self, chunk: Chunk, path: str, lineno: int, parts: list[str], width: int,
              height: int) -> dict[str, Any] | None:
        n = len(parts)
        segment = n >= 7 and n % 2 == 1
        if n != 5 and not segment:
            if n == 3:
                chunk.error("bad-segment", path, lineno, "points", "a segment needs at least 3 points, got 1")
            else:
                chunk.error("bad-columns", path, lineno, None,
                            f"expected 5 values (class cx cy w h) or a class and >= 3 x y points, got {n}")
            return None
        try:
            cls_f = float(parts[0])
        except ValueError:
            cls_f = math.nan
        if not cls_f.is_integer():
            chunk.error("bad-value", path, lineno, "class", f"not a class id: {parts[0]!r}")
            return None
        cls = int(cls_f)
        if not 0 <= cls < len(self.names):
            chunk.error("unknown-class", path, lineno, "class",
                        f"class id {cls} is outside names (0..{len(self.names) - 1})")
            return None
        values: list[float] = []
        for k, raw in enumerate(parts[1:]):
            fld = _FIELDS[k] if not segment else f"{'xy'[k % 2]}{k // 2 + 1}"
            try:
                v = float(raw)
            except ValueError:
                chunk.error("bad-value", path, lineno, fld, f"not a number: {raw!r}")
                return None
            if not 0.0 <= v <= 1.0:  # NaN fails too
                chunk.error("outside-range", path, lineno, fld, f"{raw} is outside [0, 1] (normalised coordinates)")
                return None
            values.append(v)
        if segment:
            xs, ys = values[0::2], values[1::2]
            box = [min(xs) * width, min(ys) * height, max(xs) * width, max(ys) * height]
            chunk.stats["boxes_from_segments"] += 1
        else:
            cx, cy, w, h = values
            box = [(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height]
        clipped = [min(max(box[0], 0.0), width), min(max(box[1], 0.0), height),
                   min(max(box[2], 0.0), width), min(max(box[3], 0.0), height)]
        if clipped != box:
            chunk.stats["boxes_clipped"] += 1
        if clipped[2] - clipped[0] < 1 or clipped[3] - clipped[1] < 1:
            chunk.stats["dropped:degenerate"] += 1
            chunk.warn("degenerate", path, lineno, None, f"box under 1 px ({width}x{height} image) dropped")
            return None
        return {"bbox": clipped, "label": cls, "category": self.names[cls]}


def yolo_to_odvg(
    root: str | Path,
    *,
    data: str | Path | None = None,
    split: str | None = None,
    exif: bool = True,
    problems: ProblemLog | None = None,
    on_files: Callable[[int], None] | None = None,
    workers: int | None = None,
) -> FileConversion:
    """Convert a YOLO dataset; filenames in the records are relative to ``root``."""
    root = Path(root)
    problems = problems if problems is not None else ProblemLog()
    names, doc, source = read_names(root, Path(data) if data is not None else None)
    items, layout = yolo_items(root, split, doc, source)
    stats: Counter[str] = Counter()
    info = {"layout": layout, "class_names_from": source}
    label_map = {str(i): n for i, n in enumerate(names)}
    chunks = map_chunks(_Parser(root, names, exif), items, workers)

    def stream():  # type: ignore[no-untyped-def]
        for chunk in chunks:
            replay(chunk, problems, stats)
            if on_files is not None:
                on_files(chunk.files)
            if chunk.count:
                yield chunk.data, chunk.count

    gen = stream()
    records = (orjson.loads(line) for data_, _ in gen for line in data_.splitlines())
    return FileConversion(info=info, records=records, label_map=label_map, stats=stats, jsonl_chunks=gen,
                          total=len(items))
