"""Metrics on ODVG ground truth and ODVG predictions (records with ``score`` on every box).

Pure functions over lists of records, so they are tested on hand-made cases and reused by
pseudo-label loops. Where MMDetection's port differs from the official protocol, both are here
(``protocol="official" | "mmdet"``), see docs/train.md:

* gRefCOCO — official: every ground-truth box of the expression, matched by **GIoU** ≥ 0.5;
  mmdet: only the *first* ground-truth box, matched by IoU. Pr@(F1=1) and N-acc either way.
* RefExp — official: predictions sorted by score before taking the top k; mmdet takes them in
  the order the model returned.
* Flickr30k Entities — ``merge_boxes=True`` (one union box per phrase, the MDETR "merged" mode
  that crashes in mmdet) or False (any of the phrase's boxes).

A metric with no ground truth in its range (COCO APs on a dataset without small objects, LVIS APr
without rare classes, N-acc without no-target expressions) is :data:`NA` = −1, exactly as
pycocotools reports it; never 0, which would read as a model that found nothing. Tables print it
as ``n/a`` (:func:`fmt`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

Record = dict[str, Any]

NA = -1.0  # "no ground truth in range" (pycocotools' −1)


def is_na(value: Any) -> bool:
    """True for an undefined metric: −1 (pycocotools), NaN or None."""
    return value is None or (isinstance(value, float) and (value != value or value == NA))


def mean_defined(values: list[float]) -> float:
    """The mean of the defined values (ODinW's average over datasets with ground truth); NA if none is."""
    defined = [v for v in values if not is_na(v)]
    return sum(defined) / len(defined) if defined else NA


def na(value: float) -> float:
    """NaN (an undefined ratio) → :data:`NA`, anything else unchanged."""
    return NA if value != value else value


def fmt(value: Any, digits: int = 3) -> str:
    """A metric as the guide's tables print it (``n/a`` when undefined)."""
    if is_na(value):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


# ----------------------------------------------------------------------------------- box helpers
def iou_matrix(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]]) -> np.ndarray:
    """Pairwise IoU of xyxy boxes (continuous coordinates, no +1)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def giou_matrix(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]]) -> np.ndarray:
    """Pairwise generalized IoU: IoU − (hull − union) / hull."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    iou = iou_matrix(a, b)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    hull = np.prod(np.maximum(a[:, None, 2:], b[None, :, 2:]) - np.minimum(a[:, None, :2], b[None, :, :2]), axis=2)
    return iou - np.where(hull > 0, (hull - union) / np.where(hull > 0, hull, 1), 0.0)


def _boxes(region: Record) -> list[list[float]]:
    bbox = region.get("bbox") or []
    return bbox if bbox and isinstance(bbox[0], list) else ([bbox] if bbox else [])


def _scored(regions: list[Record], sort: bool = True) -> list[tuple[list[float], float]]:
    out = []
    for r in regions:
        scores = r.get("score")
        boxes = _boxes(r)
        scores = scores if isinstance(scores, list) else [scores if scores is not None else 1.0] * len(boxes)
        out += list(zip(boxes, scores, strict=False))
    return sorted(out, key=lambda t: -t[1]) if sort else out


def _pred_regions(pred: Record) -> list[Record]:
    if "grounding" in pred:
        return pred["grounding"].get("regions", [])
    return (pred.get("detection") or {}).get("instances", [])


# ------------------------------------------------------------------------------------- RefExp
def refexp_precision(gts: list[Record], preds: list[Record], ks: Sequence[int] = (1, 5, 10),
                     iou_thr: float = 0.5, protocol: str = "official") -> dict[str, float]:
    """Precision@k: a referring expression is correct when one of the top-k boxes has IoU ≥ thr."""
    hits = dict.fromkeys(ks, 0)
    for gt, pred in zip(gts, preds, strict=True):
        gt_boxes = [b for r in gt["grounding"]["regions"] for b in _boxes(r)]
        ranked = _scored(_pred_regions(pred), sort=protocol == "official")
        if not gt_boxes or not ranked:
            continue
        ious = iou_matrix([b for b, _ in ranked], gt_boxes).max(axis=1)
        for k in ks:
            hits[k] += bool((ious[:k] >= iou_thr).any())
    n = len(gts)
    return {f"P@{k}": hits[k] / n if n else NA for k in ks}


# ----------------------------------------------------------------------------------- gRefCOCO
def grefcoco_scores(gts: list[Record], preds: list[Record], score_thr: float = 0.7, iou_thr: float = 0.5,
                    f1_thr: float = 1.0, protocol: str = "official") -> dict[str, float]:
    """Pr@(F1=1, IoU≥0.5) (share of expressions with F1 ≥ f1_thr), N-acc and T-acc."""
    correct = 0
    nt = {"TP": 0, "TN": 0, "FP": 0, "FN": 0}
    for gt, pred in zip(gts, preds, strict=True):
        gt_boxes = [b for r in gt["grounding"]["regions"] for b in _boxes(r)]
        if protocol == "mmdet":
            gt_boxes = gt_boxes[:1]
        no_target = not gt_boxes or bool(gt.get("no_target"))
        boxes = [b for b, s in _scored(_pred_regions(pred)) if s >= score_thr]
        if no_target:
            nt["TP" if not boxes else "FN"] += 1
            f1 = 1.0 if not boxes else 0.0
        else:
            nt["TN" if boxes else "FP"] += 1
            tp = 0
            if boxes:
                sim = giou_matrix(boxes, gt_boxes) if protocol == "official" else iou_matrix(boxes, gt_boxes)
                for _ in range(min(len(boxes), len(gt_boxes))):
                    i, j = np.unravel_index(np.argmax(sim), sim.shape)
                    if sim[i, j] < iou_thr:
                        break
                    tp += 1
                    sim[i, :] = -2.0
                    sim[:, j] = -2.0
            fp, fn = len(boxes) - tp, len(gt_boxes) - tp
            f1 = 2 * tp / (2 * tp + fp + fn)
        correct += f1 >= f1_thr
    return {
        "Pr@F1": correct / len(gts) if gts else NA,
        "N-acc": nt["TP"] / (nt["TP"] + nt["FN"]) if nt["TP"] + nt["FN"] else NA,
        "T-acc": nt["TN"] / (nt["TN"] + nt["FP"]) if nt["TN"] + nt["FP"] else NA,
    }


# ---------------------------------------------------------------------------------- Flickr30k
def flickr_recall(gts: list[Record], preds: list[Record], ks: Sequence[int] = (1, 5, 10), iou_thr: float = 0.5,
                  merge_boxes: bool = False) -> dict[str, float]:
    """Recall@k over phrases: a phrase is found when one of its top-k boxes hits its ground truth.

    Predictions are matched to ground-truth phrases by ``tokens_positive``. With ``merge_boxes`` the
    phrase's ground-truth boxes are replaced by their union box (MDETR's merged mode).
    """
    hits = dict.fromkeys(ks, 0)
    total = 0
    for gt, pred in zip(gts, preds, strict=True):
        by_span: dict[str, list[Record]] = {}
        for r in _pred_regions(pred):
            by_span.setdefault(repr(r.get("tokens_positive")), []).append(r)
        for region in gt["grounding"]["regions"]:
            gt_boxes = _boxes(region)
            if not gt_boxes:
                continue
            total += 1
            if merge_boxes:
                arr = np.asarray(gt_boxes, dtype=np.float64)
                gt_boxes = [[arr[:, 0].min(), arr[:, 1].min(), arr[:, 2].max(), arr[:, 3].max()]]
            ranked = _scored(by_span.get(repr(region.get("tokens_positive")), []))
            if not ranked:
                continue
            ious = iou_matrix([b for b, _ in ranked], gt_boxes).max(axis=1)
            for k in ks:
                hits[k] += bool((ious[:k] >= iou_thr).any())
    return {f"R@{k}": hits[k] / total if total else NA for k in ks}


# ---------------------------------------------------------------------------------------- COCO
def coco_dicts(gts: list[Record], preds: list[Record], label_map: dict[str, str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """COCO ground-truth dict and detection list from OD records (labels = label-map keys)."""
    cats = [{"id": int(k), "name": v} for k, v in sorted(label_map.items(), key=lambda kv: int(kv[0]))]
    images, anns, dets = [], [], []
    for i, (gt, pred) in enumerate(zip(gts, preds, strict=True)):
        images.append({"id": i, "file_name": gt["filename"], "height": gt["height"], "width": gt["width"]})
        for inst in (gt.get("detection") or {}).get("instances", []):
            x1, y1, x2, y2 = inst["bbox"]
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": int(inst["label"]),
                         "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1),
                         "iscrowd": int(inst.get("iscrowd", 0))})
        for inst in (pred.get("detection") or {}).get("instances", []):
            x1, y1, x2, y2 = inst["bbox"]
            dets.append({"image_id": i, "category_id": int(inst["label"]), "bbox": [x1, y1, x2 - x1, y2 - y1],
                         "score": float(inst.get("score", 1.0))})
    return {"images": images, "annotations": anns, "categories": cats}, dets


COCO_NAMES = ("mAP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")


COCO_BACKENDS = ("auto", "pycocotools", "faster-coco-eval")
COCO_BACKEND_ENV = "ODVGKIT_COCO_BACKEND"


def coco_backend(backend: str = "auto") -> tuple[Any, Any, str]:
    """``(COCO, COCOeval, name)``: faster-coco-eval's drop-in when importable (``auto``), else pycocotools.

    ``auto`` defers to ``$ODVGKIT_COCO_BACKEND`` when it is set (``pycocotools`` forces the reference
    implementation even where faster-coco-eval is installed). Both give pycocotools' numbers
    (tests/train/test_eval_parity.py); faster-coco-eval is only faster.
    """
    import os

    if backend == "auto":
        backend = os.environ.get(COCO_BACKEND_ENV, "").strip() or "auto"
    if backend not in COCO_BACKENDS:
        from odvgkit.errors import OdvgError

        raise OdvgError(f"COCO metric backend {backend!r} (${COCO_BACKEND_ENV}): expected one of {', '.join(COCO_BACKENDS)}", 2)
    if backend in ("auto", "faster-coco-eval"):
        try:
            from faster_coco_eval import COCO  # type: ignore[import-not-found]
            from faster_coco_eval import COCOeval_faster as COCOeval  # type: ignore[import-not-found]

            return COCO, COCOeval, "faster-coco-eval"
        except ImportError:
            if backend != "auto":
                from odvgkit.errors import OdvgError

                raise OdvgError("faster-coco-eval is not installed (pip install faster-coco-eval)", 3) from None
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    return COCO, COCOeval, "pycocotools"


def coco_evaluate(gt: dict[str, Any], dets: list[dict[str, Any]], backend: str = "auto") -> Any:
    """A summarised ``COCOeval`` of ``dets`` against the COCO dict ``gt`` (stdout silenced).

    No detections at all is a valid result (AP 0 where there is ground truth, −1 where there is
    none); pycocotools' ``loadRes([])`` crashes on it, so the empty result is built directly.
    """
    import gc

    COCO, COCOeval, _ = coco_backend(backend)
    # pycocotools allocates millions of small dicts and lists that form no reference cycles; the
    # cyclic collector would rescan them (and the caller's records) again and again, a large share
    # of the evaluation time. It is paused for the evaluation only.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _coco_evaluate(COCO, COCOeval, gt, dets)
    finally:
        if was_enabled:
            gc.enable()


def _coco_evaluate(COCO: Any, COCOeval: Any, gt: dict[str, Any], dets: list[dict[str, Any]]) -> Any:
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        if dets:
            coco_dt = coco_gt.loadRes(dets)
        else:
            coco_dt = COCO()
            coco_dt.dataset = {"images": gt["images"], "annotations": [], "categories": gt["categories"]}
            coco_dt.createIndex()
        ev = COCOeval(coco_gt, coco_dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def coco_map(gts: list[Record], preds: list[Record], label_map: dict[str, str], backend: str = "auto") -> dict[str, float]:
    """COCO bbox AP/AR with pycocotools (faster-coco-eval's drop-in when installed).

    Values are pycocotools' own: −1 (:data:`NA`) where no ground truth falls in the range.
    """
    gt, dets = coco_dicts(gts, preds, label_map)
    ev = coco_evaluate(gt, dets, backend)
    return {name: float(v) for name, v in zip(COCO_NAMES, ev.stats, strict=False)}


# ----------------------------------------------------------------------------------- LVIS (fixed AP)
def _ap101(tp: np.ndarray, n_gt: int) -> float:
    """COCO-style 101-point interpolated AP from a score-sorted TP/FP vector (ignored dets removed)."""
    if n_gt == 0:
        return float("nan")
    if tp.size == 0:
        return 0.0
    ctp = np.cumsum(tp)
    cfp = np.cumsum(1 - tp)
    recall = ctp / n_gt
    precision = ctp / np.maximum(ctp + cfp, np.finfo(np.float64).eps)
    for i in range(precision.size - 1, 0, -1):  # make precision monotone non-increasing
        precision[i - 1] = max(precision[i - 1], precision[i])
    points = np.linspace(0, 1, 101)
    idx = np.searchsorted(recall, points, side="left")
    return float(np.mean([precision[i] if i < precision.size else 0.0 for i in idx]))


def lvis_fixed_ap(gts: list[Record], preds: list[Record], label_map: dict[str, str], max_dets_per_cat: int = 10000,
                  iou_thrs: Sequence[float] = tuple(np.linspace(0.5, 0.95, 10)),
                  frequencies: dict[str, str] | None = None) -> dict[str, float]:
    """LVIS federated AP with the fixed-AP protocol (Dave et al. 2021): no per-image cap, the top
    ``max_dets_per_cat`` detections of each class over the whole dataset.

    A class is evaluated on images where it is annotated positive or listed in
    ``neg_category_ids``; on images listing it in ``not_exhaustive_category_ids`` its unmatched
    detections are ignored (neither TP nor FP). AP averages over classes with ground truth.
    With ``frequencies`` (label → ``r``/``c``/``f``, LVIS's ``frequency``) APr/APc/APf average over
    the rare/common/frequent classes with ground truth (−1 when a group has none, as lvis-api).
    """
    cats = sorted(int(k) for k in label_map)
    per_cat_ap: dict[int, list[float]] = {}
    for c in cats:
        evaluated: set[int] = set()
        gt_by_img: dict[int, list[list[float]]] = {}
        not_exh: set[int] = set()
        for i, gt in enumerate(gts):
            boxes = [inst["bbox"] for inst in (gt.get("detection") or {}).get("instances", []) if int(inst["label"]) == c]
            if boxes:
                gt_by_img[i] = boxes
                evaluated.add(i)
            if c in (gt.get("neg_category_ids") or []):
                evaluated.add(i)
            if c in (gt.get("not_exhaustive_category_ids") or []):
                not_exh.add(i)
        n_gt = sum(len(v) for v in gt_by_img.values())
        if n_gt == 0:
            continue
        # the budget is taken over the raw results, before the federated filter (as Dave et al.'s
        # evaluate_ap_fixed.py caps the results file, then lvis-api drops non-evaluated images)
        dets = [(float(inst.get("score", 1.0)), i, inst["bbox"]) for i, pred in enumerate(preds)
                for inst in (pred.get("detection") or {}).get("instances", []) if int(inst["label"]) == c]
        dets.sort(key=lambda t: -t[0])
        dets = [d for d in dets[:max_dets_per_cat] if d[1] in evaluated]
        aps = []
        for thr in iou_thrs:
            used: dict[int, np.ndarray] = {i: np.zeros(len(b), bool) for i, b in gt_by_img.items()}
            flags = []
            for _, i, box in dets:
                gtb = gt_by_img.get(i)
                match = -1
                if gtb:
                    ious = iou_matrix([box], gtb)[0]
                    ious[used[i]] = -1
                    j = int(np.argmax(ious))
                    if ious[j] >= thr:
                        match = j
                if match >= 0:
                    used[i][match] = True
                    flags.append(1)
                elif i in not_exh:
                    continue  # ignored
                else:
                    flags.append(0)
            aps.append(_ap101(np.asarray(flags, dtype=np.float64), n_gt))
        per_cat_ap[c] = aps
    if not per_cat_ap:
        return {"AP": NA, "AP50": NA, "AP75": NA, "classes": 0.0}
    arr = np.asarray(list(per_cat_ap.values()))
    out = {"AP": float(arr.mean()), "AP50": float(arr[:, 0].mean()), "AP75": float(arr[:, 5].mean())}
    if frequencies is not None:
        for f in "rcf":
            rows = [v for c, v in per_cat_ap.items() if frequencies.get(str(c)) == f]
            out[f"AP{f}"] = float(np.mean(rows)) if rows else NA
    out["classes"] = float(len(per_cat_ap))
    return out


# ------------------------------------------------------------------------------------------ D³
DOD_BUCKETS = (("short", 1, 3), ("middle", 4, 6), ("long", 7, 9), ("very_long", 10, 10**9))


def dod_length_buckets(names: dict[int, str], per_cat_ap: dict[int, float]) -> dict[str, float]:
    """Unweighted mean AP of the sentences of each length (words split on single spaces, as D³).

    A bucket with no sentence that has ground truth is :data:`NA` (D³'s script and MMDetection divide
    by zero there).
    """
    out = {}
    for bucket, lo, hi in DOD_BUCKETS:
        aps = [ap for c, ap in per_cat_ap.items() if lo <= len(names[c].split(" ")) <= hi]
        out[bucket] = float(np.mean(aps)) if aps else NA
    return out


def _restrict(rec: Record, labels: set[int]) -> Record:
    insts = [x for x in (rec.get("detection") or {}).get("instances", []) if int(x["label"]) in labels]
    return {**rec, "detection": {"instances": insts}}


def dod_map(gts: list[Record], preds: list[Record], label_map: dict[str, str], settings: dict[str, Any],
            backend: str = "auto") -> dict[str, float]:
    """D³ mAP per setting (FULL/PRES/ABS) and by sentence length, from *one* set of predictions.

    Each setting is COCO evaluation restricted to its sentences (categories) and images, exactly as
    D³'s official script runs pycocotools on ``d3_{full,pres,abs}_annotations.json``; a sentence's AP
    is the mean of its precision over IoU thresholds and recall points (``precision[..., 0, -1] > -1``).
    Keys: ``FULL``, ``FULL/short``, ``FULL/middle``, ``FULL/long``, ``FULL/very_long``, and so on.
    """
    out: dict[str, float] = {}
    for name, setting in settings.items():
        labels = {int(v) for v in setting["labels"]}
        image_ids = {int(v) for v in setting["image_ids"]}
        keep = [i for i, g in enumerate(gts) if int(g["dod"]["image_id"]) in image_ids]

        sub_gts = [_restrict(gts[i], labels) for i in keep]
        sub_preds = [_restrict(preds[i], labels) for i in keep]
        lm = {str(c): label_map[str(c)] for c in sorted(labels)}
        gt, dets = coco_dicts(sub_gts, sub_preds, lm)
        ev = coco_evaluate(gt, dets, backend)
        precision = ev.eval["precision"][:, :, :, 0, -1]
        per_cat: dict[int, float] = {}
        for k, cat in enumerate(ev.params.catIds):
            p = precision[:, :, k]
            if (p > -1).any():
                per_cat[int(cat)] = float(p[p > -1].mean())
        out[name] = float(ev.stats[0])
        names = {int(c): n for c, n in lm.items()}
        for bucket, value in dod_length_buckets(names, per_cat).items():
            out[f"{name}/{bucket}"] = value
    return out


def na_for_table(result: Any) -> Any:
    """A copy of a result (dicts/lists nested) with undefined metrics as the string ``n/a``."""
    if isinstance(result, dict):
        return {k: na_for_table(v) for k, v in result.items()}
    if isinstance(result, list):
        return [na_for_table(v) for v in result]
    return "n/a" if isinstance(result, float) and is_na(result) else result
