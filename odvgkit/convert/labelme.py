"""LabelMe / X-AnyLabeling JSON folders → ODVG OD records + label map.

One LabelMe file per image (``{"shapes": [...], "imagePath": ..., "imageHeight": ...,
"imageWidth": ...}``). Rectangles become their box (any corner order; X-AnyLabeling writes four
corners, LabelMe two); polygons and X-AnyLabeling's ``rotation`` shapes become the box enclosing
their points; circles the box enclosing the circle. Lines, points, line strips and masks have no
box: they are counted per type, never turned into something they are not.

Why the image header is read: ``imageHeight``/``imageWidth`` are whatever the tool saw, and a
re-exported or re-encoded image can differ; the loader decodes the real image. The header size
(EXIF aware, as the tools display it) is checked against the JSON and a mismatch is reported,
because then the box coordinates belong to another image. ``read_images=False`` trusts the JSON.

Files are visited in sorted path order and each is parsed on its own, its embedded ``imageData``
dropped at once; records flow a chunk of 64 files at a time (their image headers are read in
parallel threads), so memory does not grow with the folder and output is deterministic. Without ``--classes`` the class list is
every label used, sorted by name, which needs one extra parsing pass before records flow.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from odvgkit.convert._importer import ClassSpace, check_box, points_box
from odvgkit.convert.base import Conversion
from odvgkit.errors import OdvgError, ProblemLog
from odvgkit.images import image_sizes

BOX_SHAPES = {"rectangle": 2, "polygon": 3, "rotation": 3, "circle": 2}
_CHUNK = 64  # files whose image headers are read together (threads)


def labelme_files(root: Path, exclude: Sequence[str | Path] = ()) -> list[Path]:
    """Every ``*.json`` under ``root`` in sorted relative-path order (outputs excluded)."""
    if not root.is_dir():
        raise OdvgError(f"{root}: not a directory (give the folder holding the LabelMe .json files)")
    skip = {Path(p).resolve() for p in exclude}
    for out in skip:
        # an output inside the folder is excluded from the walk (a rerun must not read it), but
        # only if it is not one of the annotations: those are inputs and are never overwritten
        inside = out.suffix == ".json" and out.is_file() and out.is_relative_to(root.resolve())
        if inside and _is_labelme(_load(out, ProblemLog())):
            raise OdvgError(f"{out}: output path is one of the LabelMe input files; choose another -o")
    files = [p for p in root.rglob("*.json") if p.is_file() and p.resolve() not in skip]
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def _load(path: Path, problems: ProblemLog) -> dict[str, Any] | None:
    """Parse one file; malformed JSON is a problem of that file (line and column), not fatal."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        problems.error("malformed-json", path, None, None, f"not UTF-8 text ({exc.reason} at byte {exc.start})")
        return None
    try:
        # the standard parser: it accepts the NaN LabelMe's json.dump can write (reported per
        # point below instead of failing the file) and gives a line for real syntax errors
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        problems.error("malformed-json", path, exc.lineno, None, f"malformed JSON: {exc.msg} (column {exc.colno})")
        return None
    return doc


def _is_labelme(doc: Any) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("shapes"), list) and "imagePath" in doc


def collect_labels(files: Sequence[Path]) -> list[str]:
    """Pass 1 without ``--classes``: every label of a box-shaped shape, for a sorted class list."""
    names: set[str] = set()
    quiet = ProblemLog()
    for f in files:
        doc = _load(f, quiet)
        if not _is_labelme(doc):
            continue
        for shape in doc["shapes"]:
            if not isinstance(shape, dict) or (shape.get("shape_type") or "polygon") not in BOX_SHAPES:
                continue
            label = shape.get("label")
            if isinstance(label, str) and label:
                names.add(label)
    return sorted(names)


def labelme_to_odvg(
    root: str | Path,
    *,
    classes: Sequence[str] | None = None,
    images_root: str | Path | None = None,
    read_images: bool = True,
    exclude: Sequence[str | Path] = (),
    problems: ProblemLog | None = None,
    on_files: Callable[[int], None] | None = None,
) -> Conversion:
    """Convert a folder of LabelMe/X-AnyLabeling files; records are produced lazily.

    ``images_root`` (default ``root``) is what record filenames are relative to, i.e. the
    ``data_prefix`` a training config will use.
    """
    root = Path(root)
    problems = problems if problems is not None else ProblemLog()
    files = labelme_files(root, exclude)
    if not files:
        raise OdvgError(f"{root}: no .json files found (not a LabelMe/X-AnyLabeling annotation folder?)")
    space = ClassSpace(classes) if classes is not None else ClassSpace(collect_labels(files))
    stats: Counter[str] = Counter()
    img_root = Path(images_root) if images_root is not None else root
    return Conversion(
        records=_records(root, files, space, img_root, read_images, problems, stats, on_files),
        label_map=space.label_map(),
        stats=stats,
        total=len(files),
    )


def _records(
    root: Path,
    files: list[Path],
    space: ClassSpace,
    img_root: Path,
    read_images: bool,
    problems: ProblemLog,
    stats: Counter[str],
    on_files: Callable[[int], None] | None,
) -> Iterator[dict[str, Any]]:
    for start in range(0, len(files), _CHUNK):
        chunk = files[start : start + _CHUNK]
        parsed: list[tuple[Path, dict[str, Any], Path]] = []
        for f in chunk:
            stats["files"] += 1
            doc = _load(f, problems)
            if doc is None:
                stats["files_skipped:malformed"] += 1
                continue
            if isinstance(doc, dict):
                doc.pop("imageData", None)  # the embedded image (MBs of base64) is never needed
            if not _is_labelme(doc):
                problems.warn("not-labelme", f, None, None, "not a LabelMe/X-AnyLabeling file (no 'shapes' and 'imagePath'); skipped")
                stats["files_skipped:not-labelme"] += 1
                continue
            image = _image_path(f, doc, problems)
            if image is None:
                stats["files_skipped:no-image-path"] += 1
                continue
            parsed.append((f, doc, image))
        sizes = (
            image_sizes([img for _, _, img in parsed], workers=8)
            if read_images
            else ((img, None, None) for _, _, img in parsed)
        )
        for (f, doc, image), (_, header, error) in zip(parsed, sizes, strict=True):
            rec = _record(f, doc, image, header, error, read_images, space, img_root, problems, stats)
            if rec is not None:
                stats["images"] += 1
                yield rec
        if on_files is not None:
            on_files(len(chunk))
    if stats["files"] and stats["files"] == stats["files_skipped:not-labelme"]:
        # nothing here is LabelMe: say what was found instead of writing an empty dataset
        raise OdvgError(
            f"{root}: none of the {stats['files']} .json files is a LabelMe/X-AnyLabeling file "
            "(no 'shapes' and 'imagePath'; a COCO json goes through 'convert coco2odvg')"
        )


def _image_path(f: Path, doc: dict[str, Any], problems: ProblemLog) -> Path | None:
    name = doc.get("imagePath")
    if not isinstance(name, str) or not name:
        problems.error("no-image-path", f, None, "imagePath", "missing or empty; cannot tell which image this annotates")
        return None
    # LabelMe on Windows writes backslashes ("..\\images\\a.jpg"): a path separator, never a name
    return Path(os.path.normpath(f.parent / name.replace("\\", "/")))


def _record(
    f: Path,
    doc: dict[str, Any],
    image: Path,
    header: tuple[int, int] | None,
    error: str | None,
    read_images: bool,
    space: ClassSpace,
    img_root: Path,
    problems: ProblemLog,
    stats: Counter[str],
) -> dict[str, Any] | None:
    jw, jh = doc.get("imageWidth"), doc.get("imageHeight")
    json_size = (jw, jh) if _positive_int(jw) and _positive_int(jh) else None
    if read_images:
        if header is None:
            missing = bool(error and error.endswith("image not found"))
            code = "image-not-found" if missing else "unreadable-image"
            message = f"image {image} not found" if missing else f"unreadable image header: {image}"
            problems.error(code, f, None, "imagePath", message)
            stats["images_skipped:" + code] += 1
            return None
        if json_size is not None and json_size != header:
            problems.error(
                "size-mismatch", f, None, "imageWidth/imageHeight",
                f"{jw}x{jh} in the JSON but the image {image.name} is {header[0]}x{header[1]}",
            )
            stats["images_skipped:size-mismatch"] += 1
            return None
        width, height = header
    else:
        if json_size is None:
            problems.error("bad-image-size", f, None, "imageWidth/imageHeight", f"must be positive integers, got {jw!r}x{jh!r}")
            stats["images_skipped:bad-size"] += 1
            return None
        width, height = json_size
    instances = []
    for i, shape in enumerate(doc["shapes"]):
        inst = _instance(f, i, shape, width, height, space, problems, stats)
        if inst is not None:
            instances.append(inst)
    stats["boxes"] += len(instances)
    return {
        "filename": Path(os.path.relpath(image, img_root)).as_posix(),
        "height": height,
        "width": width,
        "detection": {"instances": instances},
    }


def _positive_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def _instance(
    f: Path,
    i: int,
    shape: Any,
    width: int,
    height: int,
    space: ClassSpace,
    problems: ProblemLog,
    stats: Counter[str],
) -> dict[str, Any] | None:
    where = f"shapes[{i}]"
    if not isinstance(shape, dict):
        problems.error("bad-shape", f, where, None, "must be an object")
        return None
    kind = shape.get("shape_type") or "polygon"  # LabelMe < 3 wrote polygons without a shape_type
    if kind not in BOX_SHAPES:
        stats[f"shapes_skipped:{kind}"] += 1  # a line or a point has no box: counted, not guessed
        return None
    label = space.label(shape.get("label"), problems, f, where)
    if label is None:
        return None
    if kind == "circle":
        box = _circle_box(shape.get("points"), problems, f, where)
    else:
        box = points_box(shape.get("points"), BOX_SHAPES[kind], problems, f, where)
    if box is None or not check_box(box, width, height, problems, f, where, "points"):
        return None
    inst: dict[str, Any] = {"bbox": box, "label": label, "category": space.names[label]}
    if shape.get("group_id") is not None:
        inst["group_id"] = shape["group_id"]
    if shape.get("description"):
        inst["description"] = shape["description"]
    if shape.get("difficult"):  # X-AnyLabeling's per-shape flag
        inst["difficult"] = True
    return inst


def _circle_box(points: Any, problems: ProblemLog, f: Path, where: str) -> list[float] | None:
    """LabelMe circles are ``[centre, a point on the circle]``."""
    pts = points_box(points, 2, problems, f, where)
    if pts is None:
        return None
    if len(points) != 2:
        problems.error("bad-points", f, where, "points", f"a circle has 2 points (centre, rim), got {len(points)}")
        return None
    (cx, cy), (px, py) = points
    r = ((px - cx) ** 2 + (py - cy) ** 2) ** 0.5
    return [cx - r, cy - r, cx + r, cy + r]
