"""CVAT for images 1.1 XML → ODVG OD records + label map.

``<image name= width= height=>`` elements each holding ``<box xtl= ytl= xbr= ybr= rotation=
occluded= label=>`` and ``<polygon points="x,y;x,y;…">`` shapes. Boxes keep their corners;
rotated boxes and polygons become their enclosing axis-aligned box. ``occluded`` is kept per box
as ``is_occluded`` (the field the record model already declares) and ``<attribute>`` children as
an ``attributes`` object. Polylines, points, masks, cuboids, ellipses, skeletons and tags are
counted per element and skipped.

Why expat and not ``ElementTree``: a CVAT export of a big task is one XML document of millions of
elements. The document is fed to an expat parser in 1 MiB pieces and each ``<image>`` becomes a
record as soon as it closes, so memory is one image's shapes at a time, and every problem names
the XML line of the element (which ``iterparse`` does not expose).

Classes: ``--classes`` if given, else the labels the export declares in ``<meta>`` (CVAT's own
order), else — a stripped file without ``<meta>`` — every label used, sorted by name (one more
streaming pass).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from xml.parsers import expat

from odvgkit.convert._importer import ClassSpace, check_box, points_box
from odvgkit.convert.base import Conversion
from odvgkit.errors import OdvgError, ProblemLog
from odvgkit.images import image_size

_READ = 1 << 20
SHAPES = {"box", "polygon"}
_TEXT_ELEMENTS = frozenset({"name", "attribute"})
OTHER_SHAPES = {"polyline", "points", "mask", "cuboid", "ellipse", "skeleton", "tag"}


def _parse(
    path: Path,
    start: Callable[[str, dict[str, str], int], None],
    end: Callable[[str], None],
    text: Callable[[str], None],
    on_bytes: Callable[[int], None] | None = None,
) -> Iterator[None]:
    """Feed the file to expat piece by piece; yields after each piece so callers can drain.

    Malformed XML stops everything with the file, line and column: nothing after the error
    can be trusted, and the outputs are rolled back.
    """
    parser = expat.ParserCreate()
    parser.buffer_text = True

    def on_start(name: str, attrs: dict[str, str]) -> None:
        # text is wanted only inside <name> and <attribute>: no callback for the whitespace between
        # the millions of other elements
        parser.CharacterDataHandler = text if name in _TEXT_ELEMENTS else None
        start(name, attrs, parser.CurrentLineNumber)

    def on_end(name: str) -> None:
        parser.CharacterDataHandler = None
        end(name)

    parser.StartElementHandler = on_start
    parser.EndElementHandler = on_end
    try:
        with open(path, "rb") as fh:
            while True:
                piece = fh.read(_READ)
                try:
                    parser.Parse(piece, not piece)
                except expat.ExpatError as exc:
                    raise OdvgError(
                        f"{path}:{exc.lineno}:{exc.offset + 1}: malformed XML: {expat.ErrorString(exc.code)}"
                    ) from None
                if on_bytes is not None:
                    on_bytes(len(piece))
                yield
                if not piece:
                    return
    except FileNotFoundError:
        raise OdvgError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise OdvgError(f"{path}: is a directory (give the annotations.xml of a 'CVAT for images 1.1' export)") from None


class _Reader:
    """The expat callbacks: a small state machine over ``meta/…/labels`` and ``image`` elements."""

    def __init__(
        self, path: Path, problems: ProblemLog, space: ClassSpace | None, stats: Counter[str],
        images_root: Path | None = None,
    ) -> None:
        self.path = path
        self.images_root = images_root
        self.problems = problems
        self.space = space
        self.stats = stats
        self.stack: list[str] = []
        self.declared: list[str] = []  # labels of <meta>, in order
        self.used: set[str] = set()  # labels of shapes (pass 1 without meta)
        self.text: list[str] = []
        self.out: list[dict[str, Any]] = []
        self.image: dict[str, Any] | None = None
        self.image_ok = False
        self.shape: dict[str, Any] | None = None
        self.attr_name: str | None = None
        self.root_checked = False

    # -- expat callbacks -------------------------------------------------------------------
    def start(self, name: str, attrs: dict[str, str], line: int) -> None:
        if not self.root_checked:
            self.root_checked = True
            if name != "annotations":
                raise OdvgError(f"{self.path}:{line}: <{name}> root: not a 'CVAT for images 1.1' XML (expected <annotations>)")
        parent = self.stack[-1] if self.stack else None
        self.stack.append(name)
        self.text.clear()
        if name == "track" and parent == "annotations":
            raise OdvgError(
                f"{self.path}:{line}: <track>: a 'CVAT for video 1.1' export; odvgkit reads 'CVAT for images 1.1' (export the task in that format)"
            )
        if name == "image" and parent == "annotations":
            self._open_image(attrs, line)
        elif parent == "image" and self.image is not None:
            if name in SHAPES:
                self.shape = {"kind": name, "attrs": attrs, "line": line, "attributes": {}}
            elif name in OTHER_SHAPES:
                self.stats[f"shapes_skipped:{name}"] += 1
        elif name == "attribute" and parent in SHAPES and self.shape is not None:
            self.attr_name = attrs.get("name")

    def end(self, name: str) -> None:
        self.stack.pop()
        content = "".join(self.text)
        self.text.clear()
        if name == "name" and self.stack[-2:] == ["labels", "label"]:
            label = content.strip()
            if label not in self.declared:  # a project export may list a label again per task
                self.declared.append(label)
        elif name == "attribute" and self.shape is not None and self.attr_name is not None:
            self.shape["attributes"][self.attr_name] = content
            self.attr_name = None
        elif name in SHAPES and self.shape is not None and self.stack and self.stack[-1] == "image":
            self._close_shape(self.shape)
            self.shape = None
        elif name == "image" and self.image is not None and self.stack == ["annotations"]:
            if self.image_ok:
                self.stats["images"] += 1
                self.stats["boxes"] += len(self.image["detection"]["instances"])
                self.out.append(self.image)
            self.image = None

    def chars(self, data: str) -> None:
        self.text.append(data)

    # -- records -----------------------------------------------------------------------------
    def _open_image(self, attrs: dict[str, str], line: int) -> None:
        if self.space is None and self.declared:
            self.space = ClassSpace(self.declared)
        name = attrs.get("name", "")
        where = f"image {name!r}" if name else "image"
        w, h = _int(attrs.get("width")), _int(attrs.get("height"))
        self.image_ok = True
        if not name:
            self.problems.error("no-image-name", self.path, line, "image.name", "missing or empty")
            self.image_ok = False
        elif w is None or h is None or w <= 0 or h <= 0:
            self.problems.error("bad-image-size", self.path, line, f"{where}: width/height",
                                f"must be positive integers, got {attrs.get('width')!r}x{attrs.get('height')!r}")
            self.image_ok = False
        if self.image_ok and self.images_root is not None:
            self.image_ok = self._check_image(name, where, (w, h), line)  # type: ignore[arg-type]
        elif not self.image_ok:
            self.stats["images_skipped:bad-image"] += 1
        self.image = {"filename": name, "height": h, "width": w, "detection": {"instances": []}}

    def _check_image(self, name: str, where: str, size: tuple[int, int], line: int) -> bool:
        """With ``images_root``: the image must exist and its header agree with the XML's size."""
        image = self.images_root / name  # type: ignore[operator]
        try:
            header = image_size(image)
        except OdvgError as exc:
            missing = str(exc).endswith("image not found")
            code = "image-not-found" if missing else "unreadable-image"
            message = f"image {image} not found" if missing else f"unreadable image header: {image}"
            self.problems.error(code, self.path, line, f"{where}: name", message)
            self.stats[f"images_skipped:{code}"] += 1
            return False
        if header != size:
            self.problems.error("size-mismatch", self.path, line, f"{where}: width/height",
                                f"{size[0]}x{size[1]} in the XML but the image is {header[0]}x{header[1]}")
            self.stats["images_skipped:size-mismatch"] += 1
            return False
        return True

    def _close_shape(self, shape: dict[str, Any]) -> None:
        attrs, line, kind = shape["attrs"], shape["line"], shape["kind"]
        label_name = attrs.get("label")
        if isinstance(label_name, str) and label_name:
            self.used.add(label_name)
        if self.space is None or not self.image_ok or self.image is None:
            return  # pass 1 (collecting labels), or the image itself is unusable
        where = f"image {self.image['filename']!r}: <{kind}>"
        label = self.space.label(label_name, self.problems, self.path, line, f"{where}: label")
        if label is None:
            return
        box = _box(attrs, self.problems, self.path, line, where) if kind == "box" else _polygon(attrs, self.problems, self.path, line, where)
        if box is None:
            return
        field = f"{where}: {'xtl/ytl/xbr/ybr' if kind == 'box' else 'points'}"
        if not check_box(box, self.image["width"], self.image["height"], self.problems, self.path, line, field):
            return
        inst: dict[str, Any] = {"bbox": box, "label": label, "category": self.space.names[label]}
        occluded = attrs.get("occluded")
        if occluded is not None:
            inst["is_occluded"] = occluded not in ("0", "false", "False", "")
        if shape["attributes"]:
            inst["attributes"] = shape["attributes"]  # in XML order
        self.image["detection"]["instances"].append(inst)


def _int(v: str | None) -> int | None:
    try:
        return int(v) if v is not None else None
    except ValueError:
        return None


def _float(attrs: dict[str, str], key: str, problems: ProblemLog, path: Path, line: int, where: str) -> float | None:
    raw = attrs.get(key)
    try:
        value = float(raw) if raw is not None else None
    except ValueError:
        value = None
    if value is None:
        problems.error("bad-coordinate", path, line, f"{where}: {key}", f"must be a number, got {raw!r}")
        return None
    if not math.isfinite(value):
        problems.error("bad-coordinate", path, line, f"{where}: {key}", f"coordinate is not finite: {raw!r}")
        return None
    return value


def _box(attrs: dict[str, str], problems: ProblemLog, path: Path, line: int, where: str) -> list[float] | None:
    try:  # the common case in one step; anything odd goes through the checks that name the field
        x1, y1, x2, y2 = float(attrs["xtl"]), float(attrs["ytl"]), float(attrs["xbr"]), float(attrs["ybr"])
        if not (math.isfinite(x1) and math.isfinite(y1) and math.isfinite(x2) and math.isfinite(y2)):
            raise ValueError
    except (KeyError, ValueError):
        vals = [_float(attrs, k, problems, path, line, where) for k in ("xtl", "ytl", "xbr", "ybr")]
        if any(v is None for v in vals):
            return None
        x1, y1, x2, y2 = vals  # type: ignore[misc]
    rotation = attrs.get("rotation")
    if rotation is None:
        return [x1, y1, x2, y2]
    angle = _float(attrs, "rotation", problems, path, line, where)
    if angle is None:
        return None
    if angle % 360 == 0:
        return [x1, y1, x2, y2]
    # CVAT rotates the box about its centre; the enclosing axis-aligned box of that rectangle
    cx, cy, hw, hh = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 2, (y2 - y1) / 2
    c, s = abs(math.cos(math.radians(angle))), abs(math.sin(math.radians(angle)))
    ex, ey = hw * c + hh * s, hw * s + hh * c
    return [cx - ex, cy - ey, cx + ex, cy + ey]


def _polygon(attrs: dict[str, str], problems: ProblemLog, path: Path, line: int, where: str) -> list[float] | None:
    raw = attrs.get("points", "")
    pts: list[list[float]] = []
    for pair in filter(None, raw.split(";")):
        try:
            x, y = (float(v) for v in pair.split(","))
        except ValueError:
            problems.error("bad-points", path, line, f"{where}: points", f"not 'x,y;x,y;…': {pair!r}")
            return None
        pts.append([x, y])
    return points_box(pts, 3, problems, path, line, f"{where}: points")


def cvat_classes(path: str | Path, classes: Sequence[str] | None = None) -> tuple[list[str], str]:
    """The class list and where it came from: ``--classes``, ``<meta>`` labels, or sorted usage."""
    if classes is not None:
        return list(classes), "--classes"
    declared, used = _declared_or_used(Path(path))
    return (declared, "<meta> labels") if declared else (used, "sorted by name")


def cvat_to_odvg(
    path: str | Path,
    *,
    classes: Sequence[str] | None = None,
    images_root: str | Path | None = None,
    problems: ProblemLog | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> Conversion:
    """Convert one ``annotations.xml``; records flow lazily as ``<image>`` elements close.

    ``classes`` fixes the label order; without it see :func:`cvat_classes`. With ``images_root``
    every image must exist there and its header size must agree with the XML (CVAT writes sizes,
    so images are not needed otherwise).
    """
    path = Path(path)
    problems = problems if problems is not None else ProblemLog()
    space = ClassSpace(cvat_classes(path, classes)[0])
    stats: Counter[str] = Counter()
    root = Path(images_root) if images_root is not None else None
    return Conversion(records=_records(path, space, root, problems, stats, on_bytes), label_map=space.label_map(), stats=stats)


def _declared_or_used(path: Path) -> tuple[list[str], list[str]]:
    """``<meta>`` comes first in every CVAT export: stop reading as soon as the first image opens."""
    reader = _Reader(path, ProblemLog(), None, Counter())
    seen_image = False

    def start(name: str, attrs: dict[str, str], line: int) -> None:
        nonlocal seen_image
        seen_image = seen_image or name == "image"
        reader.start(name, attrs, line)

    for _ in _parse(path, start, reader.end, reader.chars):
        reader.out.clear()
        if seen_image and reader.declared:
            return reader.declared, []
    return reader.declared, sorted(reader.used)


def _records(
    path: Path, space: ClassSpace, images_root: Path | None, problems: ProblemLog, stats: Counter[str],
    on_bytes: Callable[[int], None] | None,
) -> Iterator[dict[str, Any]]:
    reader = _Reader(path, problems, space, stats, images_root)
    for _ in _parse(path, reader.start, reader.end, reader.chars, on_bytes):
        yield from reader.out
        reader.out.clear()
