"""What the annotation-tool importers (LabelMe, CVAT, Cityscapes, FiftyOne) share.

Tool exports differ in syntax but fail in the same ways: a class that is not in the class list,
a box outside the image, a NaN or negative coordinate, a polygon of two points, an image that is
missing or whose header cannot be read. The checks live here once so every importer reports them
with the same problem codes and the same ``file: object: field: message`` line, and so a box is
accepted or refused by the same rule whatever tool drew it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from odvgkit.errors import OdvgError, ProblemLog

# names LabelMe's labels.txt convention reserves (labelme's examples): not classes
RESERVED_CLASS_NAMES = ("__ignore__", "_background_")


def read_classes(spec: str | Path) -> list[str]:
    """``--classes``: a text file with one class per line, or a comma-separated list.

    A file is the LabelMe/YOLO ``labels.txt`` convention: blank lines and LabelMe's reserved
    ``__ignore__``/``_background_`` lines are not classes. Duplicates are refused, because a
    label map with two labels of the same name is ambiguous to every prompt-based detector.
    """
    p = Path(spec)
    if p.is_file():
        try:
            lines = p.read_text(encoding="utf-8-sig").splitlines()
        except UnicodeDecodeError as exc:
            raise OdvgError(f"{p}: --classes: not UTF-8 text ({exc.reason})") from None
        names = [ln.strip() for ln in lines]
        names = [n for n in names if n and n not in RESERVED_CLASS_NAMES]
        origin = str(p)
    else:
        if str(spec).endswith((".txt", ".names", ".json", ".yaml")):
            raise OdvgError(f"{spec}: --classes: no such file")
        names = [n.strip() for n in str(spec).split(",") if n.strip()]
        origin = "--classes"
    if not names:
        raise OdvgError(f"{origin}: --classes: no class names")
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise OdvgError(f"{origin}: --classes: class {n!r} is listed twice")
        seen.add(n)
    return names


class ClassSpace:
    """Class name → 0-based label, fixed up front (``--classes`` or the tool's own list)."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        self.index = {n: i for i, n in enumerate(self.names)}

    @classmethod
    def sorted_from(cls, names: Iterable[str]) -> ClassSpace:
        return cls(sorted(set(names)))

    def label_map(self) -> dict[str, str]:
        return {str(i): n for i, n in enumerate(self.names)}

    def label(
        self, name: Any, problems: ProblemLog, path: str | Path, where: str, field: str = "label"
    ) -> int | None:
        if not isinstance(name, str) or not name:
            problems.error("bad-label", path, where, field, f"class name must be a non-empty string, got {name!r}")
            return None
        label = self.index.get(name)
        if label is None:
            problems.error("unknown-class", path, where, field, f"class {name!r} is not in the class list")
        return label


def number(value: Any) -> float | None:
    """A JSON/XML coordinate as a float, or None when it is not a real number (bools are not)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    return None


def points_box(
    points: Any,
    min_points: int,
    problems: ProblemLog,
    path: str | Path,
    where: str,
    field: str = "points",
) -> list[float] | None:
    """The enclosing ``[x1, y1, x2, y2]`` of a point list, or None (reported) when unusable."""
    if not isinstance(points, list) or not all(isinstance(p, (list, tuple)) and len(p) == 2 for p in points):
        problems.error("bad-points", path, where, field, "must be a list of [x, y] pairs")
        return None
    if len(points) < min_points:
        code = "polygon-too-few-points" if min_points >= 3 else "bad-points"
        problems.error(code, path, where, field, f"needs at least {min_points} points, got {len(points)}")
        return None
    for x, y in points:
        fx, fy = number(x), number(y)
        if fx is None or fy is None:
            problems.error("bad-coordinate", path, where, field, f"coordinate is not a number: [{x!r}, {y!r}]")
            return None
        if not (math.isfinite(fx) and math.isfinite(fy)):  # min/max would hide a NaN
            problems.error("bad-coordinate", path, where, field, f"coordinate is not finite: [{x!r}, {y!r}]")
            return None
    # min/max of the values as written (ints stay ints): the box is the tool's own numbers
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    return [min(xs), min(ys), max(xs), max(ys)]


def check_box(
    box: Sequence[float],
    width: float,
    height: float,
    problems: ProblemLog,
    path: str | Path,
    where: str,
    field: str,
) -> bool:
    """One rule for every importer: finite, not negative, inside ``[0, W] x [0, H]``, not empty.

    Nothing is clipped: a box that breaks a rule is reported and skipped, never silently moved
    (an annotation tool that lets a box leave the image usually means the image or its size is
    wrong, which clipping would hide).
    """
    x1, y1, x2, y2 = box
    if not (math.isfinite(x1) and math.isfinite(y1) and math.isfinite(x2) and math.isfinite(y2)):
        problems.error("bad-coordinate", path, where, field, f"coordinate is not finite: {list(box)}")
        return False
    if min(x1, y1) < 0:
        problems.error("negative-coordinate", path, where, field, f"negative coordinate in box {_fmt(box)}")
        return False
    if x2 > width or y2 > height:
        problems.error(
            "box-outside-image", path, where, field,
            f"box {_fmt(box)} goes outside the {_fmt([width])[1:-1]}x{_fmt([height])[1:-1]} image",
        )
        return False
    if x2 <= x1 or y2 <= y1:
        problems.error("empty-box", path, where, field, f"box {_fmt(box)} has no area")
        return False
    return True


def _fmt(box: Sequence[float]) -> str:
    return "[" + ", ".join(f"{v:g}" for v in box) + "]"

