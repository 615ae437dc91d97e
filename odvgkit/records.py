"""The ODVG record model: what one JSON Lines record may contain.

Records travel through odvgkit as plain ``dict`` objects (fast, and nothing a model does not know
is ever lost); these pydantic types are the *contract*: they validate records, document each field
and generate ``schemas/*.schema.json``. The contract is the union of what MMDetection's
``ODVGDataset`` and Open-GroundingDino read (see docs/format.md):

* OD record: ``filename``, ``height``, ``width``, ``detection.instances[{bbox, label, category}]``
  with absolute xyxy boxes and 0-based ``label`` keys into a label map ``{"0": name, ...}``.
* VG record: ``filename``, ``height``, ``width``, ``grounding.{caption, regions[{bbox, phrase,
  tokens_positive}]}`` where ``tokens_positive`` are character spans ``[start, end)`` of the caption.

Optional fields that some converters add (scores, OpenImages flags, LVIS federated fields) are
declared so they are documented and type-checked; any other field is allowed and kept.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, RootModel, StringConstraints, field_validator

Coord = Annotated[float, Field(allow_inf_nan=False)]
Box = Annotated[
    list[Coord],
    Field(min_length=4, max_length=4, description="Absolute pixel box [x1, y1, x2, y2]."),
]
Span = Annotated[
    list[Annotated[int, Field(ge=0)]],
    Field(min_length=2, max_length=2, description="Character span [start, end) of the caption."),
]


class _Open(BaseModel):
    """Strict types, unknown fields allowed (and kept by the dict-based pipeline)."""

    model_config = ConfigDict(strict=True, extra="allow")


class Instance(_Open):
    """One detection box of an OD record."""

    bbox: Box
    label: int = Field(ge=0, description="0-based key into the label map (as a string).")
    category: str | None = Field(
        default=None, description="Class name; informational (ODVGDataset ignores it)."
    )
    score: Coord | None = Field(default=None, description="Confidence of a predicted box.")
    is_group_of: bool | None = Field(default=None, description="OpenImages IsGroupOf.")
    is_occluded: bool | None = Field(default=None, description="OpenImages IsOccluded.")
    is_truncated: bool | None = Field(default=None, description="OpenImages IsTruncated.")
    is_depiction: bool | None = Field(default=None, description="OpenImages IsDepiction.")
    is_inside: bool | None = Field(default=None, description="OpenImages IsInside.")
    difficult: bool | None = Field(default=None, description="Pascal VOC <difficult> (voc2odvg).")
    truncated: bool | None = Field(default=None, description="Pascal VOC <truncated> (voc2odvg).")


class Detection(_Open):
    instances: list[Instance] = Field(default_factory=list)


class Region(_Open):
    """A phrase of the caption and the box(es) it refers to."""

    bbox: Box | list[Box] = Field(
        description="One box, or a list of boxes when the phrase refers to several objects."
    )
    phrase: str | list[str] = Field(description="The phrase text (or its pieces).")
    tokens_positive: list[Span] = Field(
        description="Character spans [start, end) of the phrase in the caption."
    )
    score: Coord | list[Coord] | None = Field(
        default=None, description="Confidence of predicted boxes."
    )


class Grounding(_Open):
    caption: str
    regions: list[Region]


class Record(_Open):
    """One image: an OD record carries ``detection``, a VG record carries ``grounding``."""

    filename: Annotated[str, StringConstraints(min_length=1)] = Field(
        description="Image path relative to the dataset's image root."
    )
    height: int = Field(gt=0)
    width: int = Field(gt=0)
    detection: Detection | None = None
    grounding: Grounding | None = None
    neg_category_ids: list[int] | None = Field(
        default=None, description="LVIS: label ids verified absent from the image (0-based)."
    )
    not_exhaustive_category_ids: list[int] | None = Field(
        default=None, description="LVIS: label ids whose instances are not all annotated (0-based)."
    )


class LabelMap(RootModel[dict[Annotated[str, StringConstraints(pattern=r"^(0|[1-9][0-9]*)$")], str]]):
    """``{"0": "person", "1": "bicycle", ...}`` — string keys, dense from "0" unless documented."""

    @field_validator("root")
    @classmethod
    def _names_not_empty(cls, value: dict[str, str]) -> dict[str, str]:
        for key, name in value.items():
            if not isinstance(name, str):
                raise ValueError(f"name of label {key} is not a string")
        return value


def box_is_finite(box: Any) -> bool:
    return isinstance(box, list) and len(box) == 4 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in box
    )


def items_of(value: Any) -> list[Any]:
    """``instances`` / ``regions`` / ``tokens_positive`` as a list; a value of another JSON type
    (``true``, ``5``, an object) has no items — the validator reports it, readers must not crash."""
    return value if isinstance(value, list) else []


def region_boxes(region: dict[str, Any]) -> list[list[float]]:
    """A region's boxes as a list, whether it holds one box or several (mmdet's own test)."""
    bbox = region.get("bbox") or []
    return bbox if isinstance(bbox, list) and bbox and isinstance(bbox[0], list) else [bbox]


def kind_of(record: dict[str, Any]) -> str:
    """``"od"``, ``"vg"`` or ``"none"`` — which block a record carries."""
    if "grounding" in record:
        return "vg"
    if "detection" in record:
        return "od"
    return "none"
