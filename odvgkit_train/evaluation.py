"""``evaluate``: run a checkpoint over ODVG ground truth with the right prompt, then score it.

==========  =================  =========================================================
metric      data               prompt per image
==========  =================  =========================================================
coco        OD + label map     all class names (``--chunked-size`` for > 256 tokens)
lvis        OD + label map     same; fixed AP (:func:`metrics.lvis_fixed_ap`)
odinw       several OD files   each dataset's class names; AP per dataset and the mean
refexp      VG                 the referring expression (one phrase)
grefcoco    VG                 the expression; boxes above score 0.7 are the answer
flickr30k   VG                 the caption with the regions' ``tokens_positive``
==========  =================  =========================================================
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from odvgkit.errors import OdvgError
from odvgkit.io import read_label_map, read_records, write_records
from odvgkit_train import metrics as M

METRICS = ("coco", "lvis", "refexp", "grefcoco", "flickr30k", "odinw")
OD_METRICS = ("coco", "lvis", "odinw")


def _items(data: Any) -> list[dict[str, Any]]:
    items = data if isinstance(data, list) else [data]
    out = []
    for item in items:
        if not isinstance(item, dict):
            item = {"path": item}
        path = Path(item["path"])
        if not path.is_file():
            raise OdvgError(f"{path}: no such file")
        out.append({"path": path, "images": Path(item["images"]) if item.get("images") else path.parent,
                    "label_map": Path(item["label_map"]) if item.get("label_map") else None})
    return out


def predict_records(net: Any, gts: list[dict[str, Any]], image_root: Path, metric: str, names: list[str] | None,
                    chunked_size: int, on_image: Callable[[int], None] | None) -> list[dict[str, Any]]:
    from odvgkit_train.inference import predict_one, to_record

    preds = []
    for rec in gts:
        image = image_root / rec["filename"]
        if not image.is_file():
            raise OdvgError(f"{image}: image not found (give ',images=DIR' or --image-root)")
        caption = rec.get("grounding", {}).get("caption", "")
        spans = None
        if metric == "flickr30k":
            spans = [r["tokens_positive"] for r in rec["grounding"]["regions"]] or None
        if names is not None:
            pred = predict_one(net, image, "", names, None, chunked_size)
            out = to_record(image, image_root, pred, "", names, None, 0.0)
        else:
            pred = predict_one(net, image, caption, None, spans, -1)
            out = to_record(image, image_root, pred, caption, None, spans, 0.0)
        out["filename"] = rec["filename"]
        preds.append(out)
        if on_image is not None:
            on_image(1)
    return preds


def _relabel(preds: list[dict[str, Any]], keys: list[str]) -> None:
    """Predicted labels are positions in the prompt; turn them back into label-map keys."""
    for p in preds:
        for inst in (p.get("detection") or {}).get("instances", []):
            inst["label"] = int(keys[inst["label"]])


def evaluate(data: Any, checkpoint: Any, metric: str, *, protocol: str = "official", model: str | None = None,
             text_encoder: str | Path | None = None, chunked_size: int = -1, predictions_out: str | Path | None = None,
             merge_boxes: bool = False, on_image: Callable[[int], None] | None = None,
             warn: Callable[[str], None] | None = None, show_dir: str | Path | None = None) -> dict[str, Any]:
    """Metrics of ``checkpoint`` (path or loaded model) on ODVG ground truth ``data``."""
    from odvgkit.tokenizer import MAX_TOKENS
    from odvgkit_train.inference import load_model, prompt_tokens

    if metric not in METRICS:
        raise OdvgError(f"--metric {metric!r}: choose one of {', '.join(METRICS)}", 2)
    if protocol not in ("official", "mmdet"):
        raise OdvgError(f"--protocol {protocol!r}: choose official or mmdet", 2)
    items = _items(data)
    if metric != "odinw" and len(items) != 1:
        raise OdvgError(f"--metric {metric} takes one ODVG file ({len(items)} given); odinw takes one per dataset", 2)
    net = checkpoint if hasattr(checkpoint, "test_step") else load_model(checkpoint, model=model, text_encoder=text_encoder)
    results: dict[str, Any] = {"metric": metric, "protocol": protocol}
    all_preds: list[dict[str, Any]] = []
    per_dataset = []
    for item in items:
        gts = [rec for _, rec in read_records(item["path"])]
        names = keys = None
        if metric in OD_METRICS:
            if item["label_map"] is None:
                raise OdvgError(f"{item['path']}: --metric {metric} needs a label map (--label-map or ',label_map=FILE')", 2)
            lm = read_label_map(item["label_map"])
            keys = sorted(lm, key=int)
            names = [lm[k] for k in keys]
            n_tok = prompt_tokens(names, str(net.cfg.model.language_model.name))
            if n_tok > MAX_TOKENS and chunked_size <= 0 and warn is not None:
                warn(f"{item['label_map']}: {len(names)} classes are {n_tok} tokens, over the {MAX_TOKENS}-token limit; "
                     "classes past it are never predicted: use --chunked-size N")
        elif any("grounding" not in r for r in gts):
            raise OdvgError(f"{item['path']}: --metric {metric} needs VG (grounding) records")
        preds = predict_records(net, gts, item["images"], metric, names, chunked_size, on_image)
        if keys is not None:
            _relabel(preds, keys)
            lm = read_label_map(item["label_map"])
        all_preds += preds
        if show_dir is not None:  # ground truth | prediction side by side (mmdet's test.py --show-dir)
            from odvgkit_train.showdir import write_pairs

            target = Path(show_dir) if len(items) == 1 else Path(show_dir) / item["path"].name.split(".")[0]
            results["shown"] = results.get("shown", 0) + write_pairs(
                gts, preds, item["images"], target, read_label_map(item["label_map"]) if keys is not None else None)
        if metric == "coco":
            results.update(M.coco_map(gts, preds, lm))
        elif metric == "lvis":
            results.update(M.lvis_fixed_ap(gts, preds, lm))
        elif metric == "odinw":
            scores = M.coco_map(gts, preds, lm)
            per_dataset.append({"dataset": item["path"].name, "mAP": scores["mAP"], "AP50": scores["AP50"]})
        elif metric == "refexp":
            results.update(M.refexp_precision(gts, preds, protocol=protocol))
        elif metric == "grefcoco":
            results.update(M.grefcoco_scores(gts, preds, protocol=protocol))
        else:
            results.update(M.flickr_recall(gts, preds, merge_boxes=merge_boxes))
        results["images"] = results.get("images", 0) + len(gts)
    if metric == "odinw":
        defined = [d["mAP"] for d in per_dataset if d["mAP"] is not None]  # None: a dataset without boxes
        results["mean_mAP"] = sum(defined) / len(defined) if defined else None
        results["datasets"] = per_dataset
    if predictions_out is not None:
        write_records(predictions_out, all_preds, inputs=[i["path"] for i in items])
        results["predictions"] = str(predictions_out)
    # undefined ratios (e.g. N-acc without no-target expressions) are None, not NaN (valid JSON)
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in results.items()}
