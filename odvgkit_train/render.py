"""Draw predicted boxes with their label/phrase and score onto copies of the images (``infer --render``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from odvgkit.io import atomic_path
from odvgkit.io.paths import inside

PALETTE = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240), (240, 50, 230)]


def _items(rec: dict[str, Any]) -> list[tuple[list[float], str, float, int]]:
    if "detection" in rec:
        return [(i["bbox"], i.get("category") or str(i["label"]), i.get("score", 1.0), int(i["label"]))
                for i in rec["detection"]["instances"]]
    spans = []
    out = []
    for r in rec.get("grounding", {}).get("regions", []):
        key = repr(r.get("tokens_positive"))
        if key not in spans:
            spans.append(key)
        phrase = r["phrase"] if isinstance(r["phrase"], str) else " ".join(r["phrase"])
        out.append((r["bbox"], phrase, r.get("score", 1.0), spans.index(key)))
    return out


def render_records(records: list[dict[str, Any]], images: list[Path], out_dir: Path) -> int:
    """One PNG per image in ``out_dir`` (same stem); returns how many were written."""
    from PIL import Image, ImageDraw

    out_dir.mkdir(parents=True, exist_ok=True)
    n = 0
    for rec, image in zip(records, images, strict=True):
        with Image.open(image) as im:
            canvas = im.convert("RGB")
        draw = ImageDraw.Draw(canvas)
        for box, text, score, colour in _items(rec):
            rgb = PALETTE[colour % len(PALETTE)]
            draw.rectangle(box, outline=rgb, width=2)
            draw.text((box[0] + 2, box[1] + 1), f"{text} {score:.2f}", fill=rgb)
        target = inside(out_dir, f"{image.stem}.png", source=image, where=None, field="image name")
        with atomic_path(target) as tmp:
            canvas.save(tmp, format="PNG")
        n += 1
    return n
