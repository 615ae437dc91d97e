"""diff, NMS, thresholds and the noun-phrase heuristic against hand-computed values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from odvgkit.errors import OdvgError
from odvgkit.io import write_records
from odvgkit.pseudolabel.diff import diff_records, match
from odvgkit.pseudolabel.init import noun_phrases, parse_classes
from odvgkit.pseudolabel.label import filter_od, iou, nms, parse_class_thr

from .conftest import run_cli


def od(name: str, *inst: tuple[list[float], str, float]) -> dict:
    return {"filename": name, "height": 100, "width": 100,
            "detection": {"instances": [{"bbox": b, "label": ["cat", "dog"].index(c), "category": c, "score": s} for b, c, s in inst]}}


def test_iou_hand_computed() -> None:
    assert iou([0, 0, 10, 10], [0, 0, 10, 10]) == 1.0
    assert iou([0, 0, 10, 10], [5, 0, 15, 10]) == pytest.approx(50 / 150)
    assert iou([0, 0, 10, 10], [10, 0, 20, 10]) == 0.0
    assert iou([0, 0, 10, 10], [0, 0, 10, 5]) == pytest.approx(0.5)


def test_greedy_match_prefers_highest_iou() -> None:
    a = [[0, 0, 10, 10], [0, 0, 10, 8]]
    b = [[0, 0, 10, 9]]
    # IoU(a0,b0)=0.9, IoU(a1,b0)=80/90: a0 wins even though a1 comes second
    assert match(a, b, 0.5) == [(0, 0, pytest.approx(0.9))]
    assert match(a, b, 0.95) == []


def test_diff_counts_exact() -> None:
    a = [
        od("1.jpg", ([0, 0, 10, 10], "cat", 0.5), ([50, 50, 60, 60], "cat", 0.9), ([0, 0, 10, 10], "dog", 0.4)),
        od("2.jpg", ([0, 0, 20, 20], "dog", 0.8)),
        od("only_a.jpg", ([0, 0, 5, 5], "cat", 0.3)),
    ]
    b = [
        od("1.jpg", ([0, 0, 10, 10], "cat", 0.7),   # unchanged cat, +0.2
            ([55, 50, 65, 60], "cat", 0.6),          # moved cat: IoU 50/150 < 0.5 → removed + added
            ([0, 0, 10, 10], "cat", 0.2)),           # same box as the first: already matched → added
        od("2.jpg", ([0, 0, 20, 18], "dog", 0.9)),   # moved dog: IoU 0.9, +0.1
        od("only_b.jpg", ([0, 0, 5, 5], "dog", 0.3)),
    ]
    res = diff_records(a, b, match_iou=0.3, same_iou=0.95).as_dict()
    assert (res["images_common"], res["images_only_a"], res["images_only_b"]) == (2, 1, 1)
    rows = {r["key"]: r for r in res["per_key"]}
    # cat: a = 3, b = 3; (a0,b0) IoU 1; (a1,b1) IoU 1/3 ≥ 0.3 → moved; b2 added; only_a cat removed
    assert rows["cat"] == {"key": "cat", "a": 3, "b": 3, "added": 1, "removed": 1, "moved": 1, "unchanged": 1,
                           "mean_iou": pytest.approx((1 + 1 / 3) / 2, abs=1e-6),
                           "mean_score_shift": pytest.approx(((0.7 - 0.5) + (0.6 - 0.9)) / 2, abs=1e-6)}
    # dog: a = 2 (1.jpg, 2.jpg), b = 2 (2.jpg, only_b); 1.jpg dog removed; 2.jpg moved (0.9); only_b added
    assert rows["dog"] == {"key": "dog", "a": 2, "b": 2, "added": 1, "removed": 1, "moved": 1, "unchanged": 0,
                           "mean_iou": pytest.approx(0.9), "mean_score_shift": pytest.approx(0.1)}
    res2 = diff_records(a, b, match_iou=0.5).as_dict()
    cat = {r["key"]: r for r in res2["per_key"]}["cat"]
    assert (cat["added"], cat["removed"], cat["moved"], cat["unchanged"]) == (2, 2, 0, 1)
    assert res2["total"]["a"] == 5 and res2["total"]["b"] == 5


def test_diff_vg_by_phrase_and_cli_json(tmp_path: Path) -> None:
    def vg(boxes: list[tuple[list[float], str, float]]) -> dict:
        cap = "a cat and a dog"
        spans = {"cat": [[2, 5]], "dog": [[12, 15]]}
        return {"filename": "x.jpg", "height": 50, "width": 50, "grounding": {"caption": cap, "regions": [
            {"bbox": bx, "phrase": p, "tokens_positive": spans[p], "score": s} for bx, p, s in boxes]}}

    a = tmp_path / "a.jsonl"
    b = tmp_path / "b.jsonl"
    write_records(a, [vg([([0, 0, 10, 10], "cat", 0.5), ([20, 20, 30, 30], "dog", 0.5)])])
    write_records(b, [vg([([0, 0, 10, 10], "dog", 0.5), ([20, 20, 30, 30], "dog", 0.25)])])
    out = json.loads(run_cli("pseudolabel", "diff", str(a), str(b), "--json").stdout)
    rows = {r["key"]: r for r in out["per_key"]}
    assert rows["cat"]["removed"] == 1 and rows["cat"]["added"] == 0
    assert rows["dog"] == {"key": "dog", "a": 1, "b": 2, "added": 1, "removed": 0, "moved": 0, "unchanged": 1,
                           "mean_iou": 1.0, "mean_score_shift": -0.25}
    assert out["boxes_added"] == 1 and out["boxes_removed"] == 1


def test_nms_and_thresholds() -> None:
    boxes = [[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30], [0, 0, 10, 10]]
    scores = [0.9, 0.95, 0.5, 0.9]
    # sorted: 1 (0.95), 0 (0.9), 3 (0.9), 2; IoU(0,1) = 90/110 > 0.5 → 0 and 3 dropped
    assert nms(boxes, scores, 0.5) == [1, 2]
    assert nms(boxes, scores, 0.9) == [1, 0, 2]  # 0 vs 1: 0.818 ≤ 0.9 kept; 3 == 0 → IoU 1 dropped
    inst = [{"bbox": b, "label": 0 if i < 3 else 1, "category": "cat" if i < 3 else "dog", "score": s}
            for i, (b, s) in enumerate(zip(boxes, scores, strict=True))]
    kept = filter_od(inst, 0.6, {"dog": 0.95}, 0.5)
    assert [(k["category"], k["score"]) for k in kept] == [("cat", 0.95)]
    kept = filter_od(inst, 0.0, {}, None)
    assert [k["score"] for k in kept] == [0.95, 0.9, 0.9, 0.5]


def test_class_thr_parsing_and_errors() -> None:
    assert parse_class_thr(["cat=0.4,dog=0.5", "red box=0.1"], ["cat", "dog", "red box"]) == {"cat": 0.4, "dog": 0.5, "red box": 0.1}
    with pytest.raises(OdvgError, match="'horse': not a class"):
        parse_class_thr(["horse=0.4"], ["cat", "dog"])
    with pytest.raises(OdvgError, match=r"within \[0, 1\]"):
        parse_class_thr(["cat=1.2"], ["cat"])
    with pytest.raises(OdvgError, match="NAME=THRESHOLD"):
        parse_class_thr(["cat"], ["cat"])


def test_noun_phrases_and_classes() -> None:
    cap = "a man holding a red umbrella next to two dogs."
    assert [cap[s:e] for s, e in noun_phrases(cap)] == ["man", "red umbrella", "two dogs"]
    assert noun_phrases("the cat, the dog") == [[4, 7], [13, 16]]
    assert parse_classes("cat, dog ,  red box") == ["cat", "dog", "red box"]
    assert parse_classes("cat . dog") == ["cat", "dog"]
    with pytest.raises(OdvgError, match="duplicate"):
        parse_classes("cat, cat")


def test_diff_pairs_out_of_order_and_first_duplicate_wins() -> None:
    a = [od("1.jpg", ([0, 0, 10, 10], "cat", 0.5)), od("2.jpg"), od("3.jpg"), od("3.jpg", ([0, 0, 10, 10], "dog", 0.5)), od("5.jpg")]
    b = [od("3.jpg"), od("2.jpg"), od("1.jpg", ([0, 0, 10, 10], "cat", 0.75)), od("4.jpg", ([0, 0, 1, 1], "cat", 0.1))]
    res = diff_records(a, b).as_dict()
    assert (res["images_a"], res["images_b"], res["images_common"], res["images_only_a"], res["images_only_b"]) == (4, 4, 3, 1, 1)
    rows = {r["key"]: r for r in res["per_key"]}
    assert set(rows) == {"cat"}  # the second 3.jpg (with a dog) is ignored
    assert (rows["cat"]["unchanged"], rows["cat"]["added"], rows["cat"]["removed"]) == (1, 1, 0)
    assert rows["cat"]["mean_score_shift"] == pytest.approx(0.25)
