"""What to draw for one record: boxes with their texts and colours, and the caption's coloured spans.

Kept apart from the pixels so it can be checked with plain values. Colours follow
``browse_grounding_raw.py``: an OD box takes the colour of its label (the same class is the same
colour everywhere), a VG region takes one colour for all its boxes *and* for every character of
the caption inside its ``tokens_positive`` spans, so a reader sees which words a box grounds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from odvgkit.records import items_of, kind_of, region_boxes

RGB = tuple[int, int, int]

# 20 saturated, mutually distinct colours that stay readable behind black text (caption spans)
# and visible on photographs (box outlines). Order chosen so neighbours differ in hue.
PALETTE: tuple[RGB, ...] = (
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (250, 190, 212),
    (0, 128, 128),
    (220, 190, 255),
    (170, 110, 40),
    (255, 250, 200),
    (128, 0, 0),
    (170, 255, 195),
    (128, 128, 0),
    (255, 215, 180),
    (0, 0, 128),
    (128, 128, 128),
)


def color_of(index: int) -> RGB:
    return PALETTE[index % len(PALETTE)]


@dataclass(frozen=True)
class DrawBox:
    xyxy: tuple[float, float, float, float]
    text: str
    color: RGB


@dataclass(frozen=True)
class DrawSpan:
    start: int
    end: int
    color: RGB


@dataclass
class Scene:
    boxes: list[DrawBox] = field(default_factory=list)
    caption: str | None = None
    spans: list[DrawSpan] = field(default_factory=list)
    bad: list[str] = field(default_factory=list)  # "field: message" for each thing not drawn
    hidden: int = 0  # boxes below the score threshold


def _xyxy(box: Any) -> tuple[float, float, float, float] | None:
    if (
        isinstance(box, list)
        and len(box) == 4
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in box)
    ):
        return (float(box[0]), float(box[1]), float(box[2]), float(box[3]))
    return None


def _score_text(score: Any) -> str:
    return f" {score:.2f}" if isinstance(score, (int, float)) and not isinstance(score, bool) else ""


def _passes(score: Any, threshold: float) -> bool:
    if not isinstance(score, (int, float)) or isinstance(score, bool):
        return True  # ground truth (no score) is always shown
    return score >= threshold


def label_name(instance: Mapping[str, Any], label_map: Mapping[str, str] | None) -> str:
    """The label map's name, else the record's ``category``, else the number itself."""
    label = instance.get("label")
    if label_map is not None and str(label) in label_map:
        return label_map[str(label)]
    category = instance.get("category")
    if isinstance(category, str) and category:
        return category
    return str(label)


def od_scene(record: Mapping[str, Any], label_map: Mapping[str, str] | None, threshold: float) -> Scene:
    scene = Scene()
    det = record.get("detection")
    instances = items_of(det.get("instances")) if isinstance(det, dict) else []
    for i, inst in enumerate(instances):
        if not isinstance(inst, dict):
            scene.bad.append(f"detection.instances[{i}]: not an object")
            continue
        xyxy = _xyxy(inst.get("bbox"))
        if xyxy is None:
            scene.bad.append(f"detection.instances[{i}].bbox: not 4 finite numbers")
            continue
        score = inst.get("score")
        if not _passes(score, threshold):
            scene.hidden += 1
            continue
        label = inst.get("label")
        index = label if isinstance(label, int) and not isinstance(label, bool) else i
        scene.boxes.append(DrawBox(xyxy, label_name(inst, label_map) + _score_text(score), color_of(index)))
    return scene


def _phrase_text(phrase: Any) -> str:
    if isinstance(phrase, list):
        return " // ".join(str(p) for p in phrase)
    return str(phrase) if phrase is not None else ""


def vg_scene(record: Mapping[str, Any], threshold: float) -> Scene:
    grounding = record.get("grounding") if isinstance(record.get("grounding"), dict) else {}
    caption = grounding.get("caption")
    scene = Scene(caption=caption if isinstance(caption, str) else None)
    for r, region in enumerate(items_of(grounding.get("regions"))):
        if not isinstance(region, dict):
            scene.bad.append(f"grounding.regions[{r}]: not an object")
            continue
        color = color_of(r)
        scores = region.get("score")
        shown = 0
        for b, box in enumerate(region_boxes(region)):
            xyxy = _xyxy(box)
            if xyxy is None:
                scene.bad.append(f"grounding.regions[{r}].bbox: not 4 finite numbers")
                continue
            score = scores[b] if isinstance(scores, list) and b < len(scores) else scores
            if not _passes(score, threshold):
                scene.hidden += 1
                continue
            scene.boxes.append(DrawBox(xyxy, _phrase_text(region.get("phrase")) + _score_text(score), color))
            shown += 1
        if shown:
            scene.spans.extend(_spans(region, r, scene, color))
    return scene


def _spans(region: Mapping[str, Any], r: int, scene: Scene, color: RGB) -> list[DrawSpan]:
    out: list[DrawSpan] = []
    n = len(scene.caption or "")
    for span in items_of(region.get("tokens_positive")):
        if (
            not isinstance(span, list)
            or len(span) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in span)
            or not 0 <= span[0] < span[1] <= n
        ):
            scene.bad.append(f"grounding.regions[{r}].tokens_positive: span {span!r} is not inside the caption")
            continue
        out.append(DrawSpan(span[0], span[1], color))
    return out


def scene_of(
    record: Mapping[str, Any], label_map: Mapping[str, str] | None = None, threshold: float = 0.0
) -> Scene:
    """The scene of any record: OD boxes by label, VG regions with caption spans, or nothing."""
    kind = kind_of(record)  # type: ignore[arg-type]
    if kind == "vg":
        return vg_scene(record, threshold)
    if kind == "od":
        return od_scene(record, label_map, threshold)
    return Scene()
