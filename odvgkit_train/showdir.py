"""``odvgkit eval --show-dir DIR``: ground truth | prediction side by side, one image per test image.

What mmdet's ``tools/test.py --show-dir`` writes (``DetLocalVisualizer``: ground truth on the left,
predictions scoring ≥ 0.3 on the right, one canvas twice the image's width), for both model
families: OD records draw class names, VG records draw phrases. Files keep the record's relative
``filename`` with a ``.png`` suffix (lossless; no collisions between sub-folders; an absolute
filename keeps its name only, one with ``..`` that would leave the folder is refused) and are
written atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from odvgkit.errors import OdvgError
from odvgkit.io import atomic_path
from odvgkit_train.render import PALETTE, _items

SHOW_SCORE_THR = 0.3  # DetLocalVisualizer's pred_score_thr


def _named(rec: dict[str, Any], label_map: dict[str, str] | None) -> dict[str, Any]:
    """Ground-truth OD boxes get their class name from the label map (records may omit ``category``)."""
    det = rec.get("detection")
    if det is None or label_map is None:
        return rec
    insts = [dict(i, category=i.get("category") or label_map.get(str(i["label"]), str(i["label"])))
             for i in det.get("instances", [])]
    return dict(rec, detection=dict(det, instances=insts))


def _draw(canvas: Any, rec: dict[str, Any], with_scores: bool, score_thr: float) -> None:
    from PIL import ImageDraw

    draw = ImageDraw.Draw(canvas)
    for box, text, score, colour in _items(rec):
        if with_scores and score < score_thr:
            continue
        boxes = box if box and isinstance(box[0], list) else [box]  # VG regions may hold several boxes
        rgb = PALETTE[colour % len(PALETTE)]
        for b in boxes:
            draw.rectangle(b, outline=rgb, width=2)
            draw.text((b[0] + 2, b[1] + 1), f"{text} {score:.2f}" if with_scores else text, fill=rgb)


def write_pairs(gts: list[dict[str, Any]], preds: list[dict[str, Any]], image_root: Path, out_dir: Path,
                label_map: dict[str, str] | None = None, score_thr: float = SHOW_SCORE_THR) -> int:
    """One PNG per ground-truth record: left its boxes, right the predictions ≥ ``score_thr``."""
    from PIL import Image

    n = 0
    for gt, pred in zip(gts, preds, strict=True):
        name = Path(gt["filename"])
        target = Path(out_dir) / (Path(name.name) if name.is_absolute() else name).with_suffix(".png")
        if not target.resolve().is_relative_to(Path(out_dir).resolve()):
            raise OdvgError(f"{gt['filename']}: filename: leaves --show-dir {out_dir} ('..'); not written")
        with Image.open(Path(image_root) / gt["filename"]) as im:
            left = im.convert("RGB")
        right = left.copy()
        _draw(left, _named(gt, label_map), False, score_thr)
        _draw(right, pred, True, score_thr)
        canvas = Image.new("RGB", (left.width * 2, left.height))
        canvas.paste(left, (0, 0))
        canvas.paste(right, (left.width, 0))
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp:
            canvas.save(tmp, format="PNG")
        n += 1
    return n
