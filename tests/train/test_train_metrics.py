"""Every eval metric against values computed by hand on small constructed cases."""

from __future__ import annotations

import pytest

from odvgkit_train import metrics as M


def vg(regions: list[dict], caption: str = "x", **extra) -> dict:
    return {"filename": "a.jpg", "height": 100, "width": 100, "grounding": {"caption": caption, "regions": regions}, **extra}


def pred(boxes_scores: list[tuple[list[float], float]], span: list[list[int]] | None = None) -> dict:
    return vg([{"bbox": b, "phrase": "x", "tokens_positive": span or [[0, 1]], "score": s} for b, s in boxes_scores])


def od(instances: list[tuple[list[float], int]], scores: list[float] | None = None, **extra) -> dict:
    inst = [{"bbox": b, "label": lab} for b, lab in instances]
    if scores is not None:
        for i, s in zip(inst, scores, strict=True):
            i["score"] = s
    return {"filename": "a.jpg", "height": 100, "width": 100, "detection": {"instances": inst}, **extra}


def test_iou_and_giou_by_hand() -> None:
    assert M.iou_matrix([[0, 0, 10, 10]], [[5, 0, 15, 10]])[0, 0] == pytest.approx(50 / 150)
    # diagonal offset 1.8: IoU = 67.24/132.76, hull 11.8² = 139.24 → GIoU = IoU − 6.48/139.24
    b = [[1.8, 1.8, 11.8, 11.8]]
    assert M.iou_matrix([[0, 0, 10, 10]], b)[0, 0] == pytest.approx(67.24 / 132.76)
    assert M.giou_matrix([[0, 0, 10, 10]], b)[0, 0] == pytest.approx(67.24 / 132.76 - 6.48 / 139.24)
    assert M.giou_matrix([[0, 0, 1, 1]], [[2, 0, 3, 1]])[0, 0] == pytest.approx(0 - 1 / 3)


def test_refexp_precision_at_k_and_protocols() -> None:
    gts = [vg([{"bbox": [0, 0, 10, 10], "phrase": "x", "tokens_positive": [[0, 1]]}])] * 2
    # A: the miss scores higher but comes second; B: IoU exactly 0.5 counts
    a = pred([([0, 0, 10, 10], 0.8), ([20, 20, 30, 30], 0.9)])
    b = pred([([0, 0, 10, 5], 0.5)])
    assert M.refexp_precision(gts, [a, b]) == {"P@1": 0.5, "P@5": 1.0, "P@10": 1.0}
    assert M.refexp_precision(gts, [a, b], protocol="mmdet")["P@1"] == 1.0  # takes the model's order


def _gref_cases() -> dict[str, tuple[dict, dict]]:
    two = vg([{"bbox": [[0, 0, 10, 10], [20, 0, 30, 10]], "phrase": "x", "tokens_positive": [[0, 1]]}])
    one = vg([{"bbox": [1.8, 1.8, 11.8, 11.8], "phrase": "x", "tokens_positive": [[0, 1]]}])
    none = vg([], no_target=True)
    return {
        "E1": (two, pred([([0, 0, 10, 10], 0.9), ([20, 0, 30, 10], 0.8), ([50, 50, 60, 60], 0.5)])),
        "E2": (none, pred([([0, 0, 10, 10], 0.6)])),
        "E3": (none, pred([([0, 0, 10, 10], 0.75)])),
        "E4": (one, pred([([0, 0, 10, 10], 0.9)])),
    }


def test_grefcoco_official_vs_mmdet_by_hand() -> None:
    c = _gref_cases()
    # E1: both boxes found → F1 = 1 officially; mmdet scores only the first GT box → TP 1, FP 1 → F1 2/3
    assert M.grefcoco_scores([c["E1"][0]], [c["E1"][1]])["Pr@F1"] == 1.0
    assert M.grefcoco_scores([c["E1"][0]], [c["E1"][1]], protocol="mmdet")["Pr@F1"] == 0.0
    # E4: IoU 0.506 ≥ 0.5 but GIoU 0.460 < 0.5
    assert M.grefcoco_scores([c["E4"][0]], [c["E4"][1]])["Pr@F1"] == 0.0
    assert M.grefcoco_scores([c["E4"][0]], [c["E4"][1]], protocol="mmdet")["Pr@F1"] == 1.0
    names = ["E1", "E2", "E3", "E4"]
    full = M.grefcoco_scores([c[n][0] for n in names], [c[n][1] for n in names])
    # correct: E1, E2 → 2/4; no-target: E2 right (nothing above 0.7), E3 wrong → N-acc 1/2; targets with output: 2/2
    assert full == {"Pr@F1": 0.5, "N-acc": 0.5, "T-acc": 1.0}


def test_flickr_recall_any_box_and_merged() -> None:
    gt = vg([
        {"bbox": [[0, 0, 10, 10], [20, 0, 30, 10]], "phrase": "dogs", "tokens_positive": [[0, 4]]},
        {"bbox": [0, 20, 10, 30], "phrase": "cat", "tokens_positive": [[9, 12]]},
    ], caption="dogs and cat")
    p = vg([
        {"bbox": [21, 0, 31, 10], "phrase": "dogs", "tokens_positive": [[0, 4]], "score": 0.9},  # IoU 90/110 with box 2
        {"bbox": [50, 50, 60, 60], "phrase": "cat", "tokens_positive": [[9, 12]], "score": 0.9},
        {"bbox": [0, 20, 10, 30], "phrase": "cat", "tokens_positive": [[9, 12]], "score": 0.3},
    ])
    assert M.flickr_recall([gt], [p]) == {"R@1": 0.5, "R@5": 1.0, "R@10": 1.0}
    # merged: the dogs' union box [0,0,30,10] vs [21,0,31,10] → IoU 90/310 < 0.5
    assert M.flickr_recall([gt], [p], merge_boxes=True) == {"R@1": 0.0, "R@5": 0.5, "R@10": 0.5}


def test_coco_map_by_hand() -> None:
    lm = {"0": "cat", "1": "dog"}
    gt = [od([([0, 0, 10, 10], 0), ([50, 50, 70, 70], 1)])]
    perfect = [od([([0, 0, 10, 10], 0), ([50, 50, 70, 70], 1)], scores=[0.9, 0.8])]
    assert M.coco_map(gt, perfect, lm)["mAP"] == pytest.approx(1.0)
    # a higher-scored false positive of class 0: precision 1/2 at recall 1 → AP(cat) 0.5, AP(dog) 1 → 0.75
    fp = [od([([80, 80, 90, 90], 0), ([0, 0, 10, 10], 0), ([50, 50, 70, 70], 1)], scores=[0.95, 0.9, 0.8])]
    got = M.coco_map(gt, fp, lm)
    assert got["mAP"] == pytest.approx(0.75) and got["AP50"] == pytest.approx(0.75)


def test_lvis_fixed_ap_federated_by_hand() -> None:
    lm = {"0": "a", "1": "b", "2": "c"}
    A, B, FAR = [0, 0, 10, 10], [50, 50, 60, 60], [80, 0, 90, 10]
    img0 = od([(A, 0)], neg_category_ids=[1])
    img1 = od([(B, 1)], neg_category_ids=[], not_exhaustive_category_ids=[1])
    p0 = od([(A, 0)], scores=[0.9])
    p1 = od([(FAR, 0), (FAR, 1), (B, 1)], scores=[0.95, 0.99, 0.5])
    # class 0 is not evaluated on img1 (neither positive nor negative there) → its det is dropped;
    # class 1's unmatched det on img1 is ignored (not exhaustive); class 2 has no GT → not averaged
    assert M.lvis_fixed_ap([img0, img1], [p0, p1], lm) == {"AP": 1.0, "AP50": 1.0, "AP75": 1.0, "classes": 2.0}
    # class 0 verified absent on img1 → its det there is a FP ranked first → AP(0) = 0.5
    img1_neg = od([(B, 1)], neg_category_ids=[0], not_exhaustive_category_ids=[1])
    assert M.lvis_fixed_ap([img0, img1_neg], [p0, p1], lm)["AP"] == pytest.approx(0.75)
    # the per-class budget keeps only the top detection, taken over the raw results as the official
    # script does: class 1 keeps just the ignored one → AP(1) = 0; class 0's is on img1, where class 0
    # is not evaluated, so it is dropped after the cap → AP(0) = 0
    assert M.lvis_fixed_ap([img0, img1], [p0, p1], lm, max_dets_per_cat=1)["AP"] == pytest.approx(0.0)
    assert M.lvis_fixed_ap([img0, img1], [p0, p1], lm, max_dets_per_cat=2)["AP"] == pytest.approx(1.0)
