"""ODinW category overrides (upstream ``configs/.../odinw/override_category.py``, §3.18).

Some ODinW35 datasets ship category names that make poor prompts; GLIP/MM-GDINO evaluate them with
replaced names written to ``new_annotations_without_background.json`` beside the original. The
table below is upstream's (ChessPieces' class 1 is the unused Roboflow super-class and is blanked to
two spaces exactly as upstream does). A user table (JSON ``{"relative/path.json": [categories]}``)
may replace it. The original files are never touched; an output equal to an input is refused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson

from odvgkit.errors import OdvgError
from odvgkit.io import AtomicGroup, check_distinct
from odvgkit.io.text import read_text, strip_bom

_CHESS = ["  ", "black bishop", "black king", "black knight", "black pawn", "black queen", "black rook",
          "white bishop", "white king", "white knight", "white pawn", "white queen", "white rook"]

OVERRIDES: dict[str, list[dict[str, Any]]] = {
    "ChessPieces/Chess Pieces.v23-raw.coco/valid/annotations_without_background.json": [
        {"id": i, "name": n, "supercategory": "pieces"} for i, n in enumerate(_CHESS, 1)
    ],
    "CottontailRabbits/valid/annotations_without_background.json": [
        {"id": 1, "name": "rabbit", "supercategory": "Cottontail-Rabbit"}
    ],
    "NorthAmericaMushrooms/North American Mushrooms.v1-416x416.coco/valid/annotations_without_background.json": [
        {"id": 1, "name": "flat mushroom", "supercategory": "mushroom"},
        {"id": 2, "name": "yellow mushroom", "supercategory": "mushroom"},
    ],
}
OUTPUT_NAME = "new_annotations_without_background.json"


def load_overrides(path: str | Path | None) -> dict[str, list[dict[str, Any]]]:
    if path is None:
        return OVERRIDES
    try:
        data = json.loads(read_text(path, "override table"))
    except json.JSONDecodeError as exc:
        raise OdvgError(f"{path}:{exc.lineno}: malformed JSON: {exc.msg}") from None
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise OdvgError(f'{path}: expected {{"relative/annotations.json": [{{"id": 1, "name": ...}}, ...]}}')
    return data


def override_categories(
    data_root: str | Path, overrides: dict[str, list[dict[str, Any]]] | None = None,
    output_name: str = OUTPUT_NAME,
) -> dict[str, int]:
    """Write ``output_name`` beside every listed annotation file, with its categories replaced.

    ODinW files are small (hundreds of images), so each is loaded whole. Every listed input must
    exist and parse before anything is written. Returns ``{output path: number of categories}``.
    """
    root = Path(data_root)
    table = overrides if overrides is not None else OVERRIDES
    docs = []
    for rel, cats in table.items():
        src = root / rel
        try:
            doc = orjson.loads(strip_bom(src.read_bytes()))
        except FileNotFoundError:
            raise OdvgError(f"{src}: no such annotation file (is {root} the ODinW root?)") from None
        except orjson.JSONDecodeError as exc:
            raise OdvgError(f"{src}: malformed JSON: {exc}") from None
        if not isinstance(doc, dict) or "categories" not in doc:
            raise OdvgError(f"{src}: not a COCO annotation file (no 'categories')")
        used = {a.get("category_id") for a in doc.get("annotations", []) if isinstance(a, dict)}
        missing = sorted(used - {c.get("id") for c in cats}, key=str)
        if missing:
            raise OdvgError(f"{src}: annotations use category id {missing[0]} which the override does not define")
        dst = src.with_name(output_name)
        check_distinct(dst, [src])
        docs.append((dst, {**doc, "categories": cats}))
    with AtomicGroup() as group:
        for dst, doc in docs:
            group.path(dst).write_bytes(orjson.dumps(doc))
    return {str(dst): len(doc["categories"]) for dst, doc in docs}
