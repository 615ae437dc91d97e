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
dod         D³ OD + settings   the image's group sentences (concat or parallel), :mod:`.dod`
==========  =================  =========================================================

A metric with no ground truth in its range is −1 (:data:`metrics.NA`), never 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from odvgkit.errors import OdvgError
from odvgkit.io import read_label_map, read_records, write_records
from odvgkit_train import metrics as M
from odvgkit_train.inference import load_model, predict_one, prompt_tokens, to_record

METRICS = ("coco", "lvis", "refexp", "grefcoco", "flickr30k", "odinw", "dod")
OD_METRICS = ("coco", "lvis", "odinw")


def items_from_specs(specs: list[str], image_root: Path | None = None, label_map: Path | None = None) -> list[dict[str, Any]]:
    """``eval`` data items from ``FILE[,images=DIR][,label_map=FILE]`` specs and the command's defaults."""
    from odvgkit_train.data import parse_spec

    items = []
    for spec in specs:
        path, opts = parse_spec(spec)
        items.append({"path": path, "images": opts.get("images") or image_root, "label_map": opts.get("label_map") or label_map})
    return items


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
                    chunked_size: int, on_image: Callable[[int], None] | None,
                    caption_prompt: dict[str, dict[str, str]] | None = None) -> list[dict[str, Any]]:
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
            pred = predict_one(net, image, "", names, None, chunked_size, caption_prompt)
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
             warn: Callable[[str], None] | None = None, prompting: str = "concat",
             score_thr: float = 0.7, frequencies: dict[str, str] | None = None,
             predictions_in: list[dict[str, Any]] | None = None,
             caption_prompt: dict[str, dict[str, str]] | None = None,
             show_dir: str | Path | None = None) -> dict[str, Any]:
    """Metrics of ``checkpoint`` (path or loaded model) on ODVG ground truth ``data``.

    ``predictions_in`` (one prediction record per ground-truth record, in order) scores existing
    predictions without a model (suites resuming from their cache, tests).
    """
    from odvgkit.tokenizer import MAX_TOKENS

    if metric not in METRICS:
        raise OdvgError(f"--metric {metric!r}: choose one of {', '.join(METRICS)}", 2)
    if protocol not in ("official", "mmdet"):
        raise OdvgError(f"--protocol {protocol!r}: choose official or mmdet", 2)
    items = _items(data)
    if metric != "odinw" and len(items) != 1:
        raise OdvgError(f"--metric {metric} takes one ODVG file ({len(items)} given); odinw takes one per dataset", 2)
    if predictions_in is not None:
        if len(items) != 1:
            raise OdvgError("predictions_in scores one ODVG file at a time", 2)
        net = None
    else:
        net = checkpoint if hasattr(checkpoint, "test_step") else load_model(checkpoint, model=model, text_encoder=text_encoder)
    results: dict[str, Any] = {"metric": metric, "protocol": protocol}
    all_preds: list[dict[str, Any]] = []
    per_dataset = []
    for item in items:
        gts = [rec for _, rec in read_records(item["path"])]
        names = keys = None
        if metric == "dod":
            from odvgkit_train.dod import find_settings, predict_dod, read_settings

            lm_path = item["label_map"] or item["path"].parent / "d3_label_map.json"
            if not lm_path.is_file():
                raise OdvgError(f"{lm_path}: no such label map (--metric dod reads d3_label_map.json beside the data)")
            lm = read_label_map(lm_path)
            settings = read_settings(find_settings(item["path"], item["label_map"]))
            preds = (predictions_in if predictions_in is not None
                     else predict_dod(net, gts, item["images"], lm, prompting, item["path"], on_image))
            _check_pairs(item["path"], gts, preds)
            results["prompting"] = prompting
            results.update(M.dod_map(gts, preds, lm, settings))
            results["images"] = len(gts)
            all_preds += preds
            continue
        if metric in OD_METRICS:
            if item["label_map"] is None:
                raise OdvgError(f"{item['path']}: --metric {metric} needs a label map (--label-map or ',label_map=FILE')", 2)
            lm = read_label_map(item["label_map"])
            keys = sorted(lm, key=int)
            names = [lm[k] for k in keys]
            n_tok = prompt_tokens(names, str(net.cfg.model.language_model.name)) if net is not None else 0
            if n_tok > MAX_TOKENS and chunked_size <= 0 and warn is not None:
                warn(f"{item['label_map']}: {len(names)} classes are {n_tok} tokens, over the {MAX_TOKENS}-token limit; "
                     "classes past it are never predicted: use --chunked-size N")
        elif any("grounding" not in r for r in gts):
            raise OdvgError(f"{item['path']}: --metric {metric} needs VG (grounding) records")
        if predictions_in is not None:
            preds = predictions_in
        else:
            preds = predict_records(net, gts, item["images"], metric, names, chunked_size, on_image, caption_prompt)
            if keys is not None:
                _relabel(preds, keys)
        _check_pairs(item["path"], gts, preds)
        if keys is not None:
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
            results.update(M.lvis_fixed_ap(gts, preds, lm, frequencies=frequencies))
        elif metric == "odinw":
            scores = M.coco_map(gts, preds, lm)
            per_dataset.append({"dataset": item["path"].name, "mAP": scores["mAP"], "AP50": scores["AP50"]})
        elif metric == "refexp":
            results.update(M.refexp_precision(gts, preds, protocol=protocol))
        elif metric == "grefcoco":
            results.update(M.grefcoco_scores(gts, preds, score_thr=score_thr, protocol=protocol))
        else:
            results.update(M.flickr_recall(gts, preds, merge_boxes=merge_boxes))
        results["images"] = results.get("images", 0) + len(gts)
    if metric == "odinw":
        results["mean_mAP"] = M.mean_defined([d["mAP"] for d in per_dataset])
        results["datasets"] = per_dataset
    if predictions_out is not None:
        write_records(predictions_out, all_preds, inputs=[i["path"] for i in items])
        results["predictions"] = str(predictions_out)
    # undefined metrics are pycocotools' −1 everywhere, never NaN (invalid JSON) or 0
    return {k: (M.NA if isinstance(v, float) and math.isnan(v) else v) for k, v in results.items()}


def _check_pairs(path: Path, gts: list[dict[str, Any]], preds: list[dict[str, Any]]) -> None:
    """Predictions must be for exactly the ground truth's images, in order (never silently paired)."""
    if len(preds) != len(gts):
        raise OdvgError(f"{path}: {len(gts)} ground-truth images but {len(preds)} prediction records")
    for n, (g, p) in enumerate(zip(gts, preds, strict=True), 1):
        if p.get("filename") != g.get("filename"):
            raise OdvgError(f"{path}:{n}: filename: prediction for {p.get('filename')!r}, which is not this "
                            f"ground-truth image ({g.get('filename')!r})")
