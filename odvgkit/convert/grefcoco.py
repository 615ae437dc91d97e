"""gRefCOCO → ODVG VG, straight from the official ``grefs(unc).json`` + ``instances.json``.

Upstream needs MDETR's external ``grefexp_coco_format.py`` first and then loses what makes gRefCOCO
gRefCOCO (§3.8): no-target expressions vanish (``iscrowd: -1``). Here:

* one record per (expression, sentence) of the chosen split, in file order;
* the referring expression is the caption and its one region (``tokens_positive`` = the whole
  caption); a **multi-target** expression keeps all its boxes as one region with a list of boxes;
* a crowd annotation among the targets is skipped, as the official loaders (``grefer``'s masks,
  ReLA's dataset) do;
* **no-target** expressions (``no_target: true`` / ``ann_id: [-1]``) become records with
  ``"regions": []`` and ``"no_target": true`` — the form the gRefCOCO evaluator scores (an empty
  prediction is right) — written only where asked (excluded from training output by default);
* records carry ``ref_id`` and ``sent_id`` so predictions can be joined back to the benchmark.

Boxes are ``[x, y, x + w, y + h]``; a target box with no area in the image is dropped (counted).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from odvgkit.convert._boxes import big_enough, overlaps_image
from odvgkit.convert.base import Conversion
from odvgkit.errors import OdvgError, ProblemLog
from odvgkit.io.jsonstream import stream_members
from odvgkit.io.text import strip_bom


class Sentence(msgspec.Struct, gc=False):
    sent: str = ""
    raw: str = ""
    sent_id: int | None = None


class GRef(msgspec.Struct, gc=False):
    ref_id: int
    image_id: int
    split: str
    sentences: list[Sentence]
    ann_id: list[int] | int = -1
    no_target: bool | None = None


class _Img(msgspec.Struct, gc=False):
    id: int
    file_name: str
    height: int
    width: int


class _Ann(msgspec.Struct, gc=False):
    id: int
    image_id: int
    bbox: tuple[float, float, float, float]
    area: float = 1.0
    iscrowd: int = 0


def read_grefs(path: Path) -> list[GRef]:
    """The refs list (a top-level JSON array: read typed, unknown fields skipped)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise OdvgError(f"{path}: no such file (gRefCOCO grefs(unc).json)") from None
    try:
        return msgspec.json.decode(strip_bom(data), type=list[GRef])
    except msgspec.ValidationError as exc:
        raise OdvgError(f"{path}: {exc}") from None
    except msgspec.DecodeError as exc:
        raise OdvgError(f"{path}: malformed JSON: {exc}") from None


def grefcoco_to_odvg(
    grefs_path: str | Path,
    instances_path: str | Path,
    *,
    split: str = "train",
    caption_field: str = "sent",
    no_target: str = "exclude",
    problems: ProblemLog | None = None,
) -> Conversion:
    """``no_target``: ``exclude`` (training), ``include`` (evaluation) or ``only``."""
    if no_target not in ("exclude", "include", "only"):
        raise OdvgError(f"no_target={no_target!r}: choose exclude, include or only")
    if caption_field not in ("sent", "raw"):
        raise OdvgError(f"caption field {caption_field!r}: choose sent or raw")
    grefs_path, instances_path = Path(grefs_path), Path(instances_path)
    problems = problems if problems is not None else ProblemLog()
    refs = read_grefs(grefs_path)
    images: dict[int, _Img] = {}
    anns: dict[int, _Ann] = {}
    for key, _, items in stream_members(instances_path, {"images": _Img, "annotations": _Ann}, problems=problems):
        if key == "images":
            images.update((im.id, im) for im in items)
        else:
            anns.update((a.id, a) for a in items)
    splits = sorted({r.split for r in refs})
    if split not in splits:
        raise OdvgError(f"{grefs_path}: no refs with split {split!r} (splits: {', '.join(splits)})")
    stats: Counter[str] = Counter()
    return Conversion(records=_records(refs, images, anns, split, caption_field, no_target,
                                       grefs_path, problems, stats), stats=stats)


def _records(
    refs: list[GRef], images: dict[int, _Img], anns: dict[int, _Ann], split: str, caption_field: str,
    no_target: str, path: Path, problems: ProblemLog, stats: Counter[str],
) -> Iterator[dict[str, Any]]:
    import numpy as np

    for r, ref in enumerate(refs):
        if ref.split != split:
            continue
        img = images.get(ref.image_id)
        if img is None:
            problems.error("unknown-image", path, f"[{r}]", "image_id", f"image {ref.image_id} is not in instances.json")
            continue
        ann_ids = ref.ann_id if isinstance(ref.ann_id, list) else [ref.ann_id]
        ann_ids = [a for a in ann_ids if a != -1]
        empty = bool(ref.no_target) or not ann_ids
        boxes: list[list[float]] = []
        if not empty:
            missing = [a for a in ann_ids if a not in anns]
            if missing:
                problems.error("unknown-annotation", path, f"[{r}]", "ann_id",
                               f"annotation {missing[0]} is not in instances.json")
                continue
            crowd = [a for a in ann_ids if anns[a].iscrowd]
            if crowd:  # the official gRefCOCO loaders (grefer masks, ReLA) skip crowd targets too
                stats["dropped:crowd-target"] += len(crowd)
                ann_ids = [a for a in ann_ids if not anns[a].iscrowd]
            xywh = np.array([anns[a].bbox for a in ann_ids], dtype=np.float64).reshape(-1, 4)
            area = np.array([anns[a].area for a in ann_ids], dtype=np.float64).reshape(-1)
            ok = overlaps_image(xywh, np.float64(img.width), np.float64(img.height)) & big_enough(xywh, area)
            stats["dropped:invalid-box"] += int((~ok).sum())
            boxes = [[x, y, x + w, y + h] for (x, y, w, h) in xywh[ok].tolist()]
            if not boxes:
                stats["dropped:expression-without-valid-box"] += len(ref.sentences)
                continue
        if empty and no_target == "exclude":
            stats["excluded:no-target-expressions"] += len(ref.sentences)
            continue
        if not empty and no_target == "only":
            continue
        for sentence in ref.sentences:
            caption = (sentence.sent if caption_field == "sent" else sentence.raw) or sentence.raw or sentence.sent
            if not caption:
                problems.error("empty-expression", path, f"[{r}]", "sentences", "empty sentence")
                continue
            regions = [] if empty else [{
                "bbox": boxes[0] if len(boxes) == 1 else boxes,
                "phrase": caption,
                "tokens_positive": [[0, len(caption)]],
            }]
            rec: dict[str, Any] = {
                "filename": img.file_name, "height": img.height, "width": img.width,
                "grounding": {"caption": caption, "regions": regions},
                "ref_id": ref.ref_id, "sent_id": sentence.sent_id,
            }
            if empty:
                rec["no_target"] = True
                stats["no-target-expressions"] += 1
            else:
                stats["boxes"] += len(boxes)
                stats["multi-target-expressions"] += len(boxes) > 1
            stats["expressions"] += 1
            yield rec
