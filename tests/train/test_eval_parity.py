"""Metric parity with independent implementations, and n/a (−1) where no ground truth is in range."""

from __future__ import annotations

import contextlib
import io
import random

import numpy as np
import pytest

from odvgkit_train import metrics as M

LM = {"0": "cat", "1": "dog", "2": "bird"}


def _dataset(seed: int, n_images: int = 25, small: bool = True) -> tuple[list[dict], list[dict]]:
    """Random ground truth (small, medium and large boxes) and predictions: jittered hits, misses, FPs."""
    rng = random.Random(seed)
    gts, preds = [], []
    for i in range(n_images):
        w, h = 640, 480
        gt_inst, pr_inst = [], []
        for _ in range(rng.randint(0, 6)):
            side = rng.choice([20, 60, 200]) if small else rng.choice([120, 200])
            x1, y1 = rng.uniform(0, w - side), rng.uniform(0, h - side)
            box = [x1, y1, x1 + side * rng.uniform(0.6, 1.0), y1 + side * rng.uniform(0.6, 1.0)]
            label = rng.randrange(3)
            gt_inst.append({"bbox": box, "label": label})
            if rng.random() < 0.8:
                j = [v + rng.uniform(-0.15, 0.15) * side for v in box]
                pr_inst.append({"bbox": j, "label": label if rng.random() < 0.9 else (label + 1) % 3, "score": rng.random()})
        for _ in range(rng.randint(0, 4)):
            x1, y1 = rng.uniform(0, w - 50), rng.uniform(0, h - 50)
            pr_inst.append({"bbox": [x1, y1, x1 + rng.uniform(5, 50), y1 + rng.uniform(5, 50)], "label": rng.randrange(3),
                            "score": rng.random()})
        gts.append({"filename": f"{i}.jpg", "height": h, "width": w, "detection": {"instances": gt_inst}})
        preds.append({"filename": f"{i}.jpg", "height": h, "width": w, "detection": {"instances": pr_inst}})
    return gts, preds


def _pycocotools(gts: list[dict], preds: list[dict], lm: dict[str, str] = LM) -> np.ndarray:
    """COCO evaluation written out directly with pycocotools (image ids from 1, category ids from 1)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images = [{"id": i + 1, "height": g["height"], "width": g["width"]} for i, g in enumerate(gts)]
    anns = []
    for i, g in enumerate(gts):
        for x in g["detection"]["instances"]:
            b = x["bbox"]
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": x["label"] + 1, "iscrowd": x.get("iscrowd", 0),
                         "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]], "area": (b[2] - b[0]) * (b[3] - b[1])})
    dets = [{"image_id": i + 1, "category_id": x["label"] + 1, "score": x["score"],
             "bbox": [x["bbox"][0], x["bbox"][1], x["bbox"][2] - x["bbox"][0], x["bbox"][3] - x["bbox"][1]]}
            for i, p in enumerate(preds) for x in p["detection"]["instances"]]
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": images, "annotations": anns, "categories": [{"id": k + 1, "name": v} for k, v in enumerate(lm.values())]}
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(dets), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_coco_map_equals_pycocotools(seed: int) -> None:
    gts, preds = _dataset(seed)
    got = M.coco_map(gts, preds, LM, backend="pycocotools")
    want = _pycocotools(gts, preds)
    assert [got[k] for k in M.COCO_NAMES] == pytest.approx(list(want), abs=1e-12)
    assert 0.1 < got["mAP"] < 0.95


def _edge_dataset(seed: int, n_images: int = 40) -> tuple[list[dict], list[dict], dict[str, str]]:
    """The cases where two COCO implementations could part: crowd ground truth (matches ignored), a
    category with detections but no ground truth (its AP −1), images without predictions, images with
    more than maxDets=100 detections (the per-image cut), and tied scores (the sort's tie order)."""
    rng = random.Random(seed)
    lm = {"0": "cat", "1": "dog", "2": "bird", "3": "fish", "4": "never annotated"}
    gts, preds = [], []
    for i in range(n_images):
        gi, pi = [], []
        for _ in range(rng.randint(0, 5)):
            side = rng.choice([20, 60, 200])
            x1, y1 = rng.uniform(0, 400), rng.uniform(0, 250)
            box = [x1, y1, x1 + side * rng.uniform(0.6, 1.0), y1 + side * rng.uniform(0.6, 1.0)]
            label = rng.randrange(4)
            gi.append({"bbox": box, "label": label, "iscrowd": int(rng.random() < 0.15)})
            if rng.random() < 0.8:
                pi.append({"bbox": [v + rng.uniform(-0.15, 0.15) * side for v in box], "label": label,
                           "score": round(rng.random(), 1)})  # coarse scores: many ties
        if i % 7 == 3:
            pi = []
        elif i % 11 == 5:
            for _ in range(130):
                x1, y1 = rng.uniform(0, 500), rng.uniform(0, 350)
                pi.append({"bbox": [x1, y1, x1 + rng.uniform(5, 80), y1 + rng.uniform(5, 80)], "label": rng.randrange(5),
                           "score": round(rng.random(), 2)})
        gts.append({"filename": f"{i}.jpg", "height": 480, "width": 640, "detection": {"instances": gi}})
        preds.append({"filename": f"{i}.jpg", "height": 480, "width": 640, "detection": {"instances": pi}})
    return gts, preds, lm


def _per_category_ap(ev) -> dict[int, float]:
    """AP of each category as dod_map (and MMDetection's classwise table) read it from ``eval["precision"]``."""
    out = {}
    for k, cat in enumerate(ev.params.catIds):
        p = ev.eval["precision"][:, :, k, 0, -1]
        out[int(cat)] = float(p[p > -1].mean()) if (p > -1).any() else M.NA
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_coco_map_edge_cases_equal_pycocotools(seed: int) -> None:
    gts, preds, lm = _edge_dataset(seed)
    got = M.coco_map(gts, preds, lm, backend="pycocotools")
    assert [got[k] for k in M.COCO_NAMES] == pytest.approx(list(_pycocotools(gts, preds, lm)), abs=1e-12)
    assert sum(len(p["detection"]["instances"]) > 100 for p in preds) >= 3
    assert any(x.get("iscrowd") for g in gts for x in g["detection"]["instances"])


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_coco_map_faster_coco_eval_equals_pycocotools(seed: int) -> None:
    """faster-coco-eval (requirements/train.txt) gives pycocotools' 12 stats and per-category AP.

    Not bit for bit: its C++ accumulation differs from numpy's in the last bit (≤ 2.3e-16 on a
    precision value), so the comparison is to 1e-12, and −1 (n/a) lands in exactly the same places.
    """
    pytest.importorskip("faster_coco_eval", reason="faster-coco-eval is in requirements/train.txt")
    gts, preds = _dataset(seed)
    fast = M.coco_map(gts, preds, LM, backend="faster-coco-eval")
    slow = M.coco_map(gts, preds, LM, backend="pycocotools")
    assert [fast[k] for k in M.COCO_NAMES] == pytest.approx([slow[k] for k in M.COCO_NAMES], abs=1e-12)

    gts, preds, lm = _edge_dataset(seed)
    gt, dets = M.coco_dicts(gts, preds, lm)
    a = M.coco_evaluate(gt, dets, "pycocotools")
    b = M.coco_evaluate(gt, dets, "faster-coco-eval")
    assert type(b).__module__.startswith("faster_coco_eval")  # the fast path really ran
    assert list(b.stats) == pytest.approx(list(a.stats), abs=1e-12)
    assert list(b.stats == M.NA) == list(a.stats == M.NA)
    assert list(a.params.maxDets) == list(b.params.maxDets) == [1, 10, 100]
    assert a.eval["precision"].shape == b.eval["precision"].shape
    np.testing.assert_allclose(b.eval["precision"], a.eval["precision"], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(b.eval["recall"], a.eval["recall"])
    pa, pb = _per_category_ap(a), _per_category_ap(b)
    assert pa.keys() == pb.keys() and pa[4] == pb[4] == M.NA  # "never annotated": n/a in both
    assert [pb[c] for c in pa] == pytest.approx([pa[c] for c in pa], abs=1e-12)

    # no detections at all (odvgkit builds the empty result itself): 0 with ground truth, −1 without
    empty = [{**p, "detection": {"instances": []}} for p in preds]
    assert (M.coco_map(gts, empty, lm, backend="faster-coco-eval")
            == M.coco_map(gts, empty, lm, backend="pycocotools"))


def test_coco_backend_auto_and_forced_by_environment(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """``auto`` takes faster-coco-eval where installed; ``$ODVGKIT_COCO_BACKEND=pycocotools`` forces the reference."""
    from odvgkit.errors import OdvgError
    from odvgkit_train.evaluation import evaluate

    monkeypatch.delenv(M.COCO_BACKEND_ENV, raising=False)
    try:
        import faster_coco_eval  # noqa: F401

        installed = "faster-coco-eval"
    except ImportError:
        installed = "pycocotools"
    assert M.coco_backend()[2] == installed
    assert M.coco_backend("pycocotools")[2] == "pycocotools"
    monkeypatch.setenv(M.COCO_BACKEND_ENV, "pycocotools")
    assert M.coco_backend()[2] == "pycocotools"
    if installed == "faster-coco-eval":
        assert M.coco_backend("faster-coco-eval")[2] == "faster-coco-eval"  # an explicit backend wins
    monkeypatch.setenv(M.COCO_BACKEND_ENV, "fast")
    with pytest.raises(OdvgError, match="ODVGKIT_COCO_BACKEND"):
        M.coco_backend()

    # `odvgkit eval --metric coco` goes through the same choice (scoring given predictions, no model)
    import json

    gts, preds = _dataset(0)
    used = []
    real = M._coco_evaluate
    monkeypatch.setattr(M, "_coco_evaluate", lambda C, E, *a: used.append(E.__module__) or real(C, E, *a))
    data, lm_path = tmp_path / "gt.jsonl", tmp_path / "lm.json"
    data.write_text("".join(json.dumps(g) + "\n" for g in gts))
    lm_path.write_text(json.dumps(LM))
    scores = {}
    for env in ("pycocotools", ""):  # empty = unset
        monkeypatch.setenv(M.COCO_BACKEND_ENV, env)
        scores[env] = evaluate({"path": data, "label_map": lm_path}, None, "coco", predictions_in=preds)
    assert used[0].startswith("pycocotools") and used[1].startswith(installed.replace("-", "_"))
    assert [scores[""][k] for k in M.COCO_NAMES] == pytest.approx([scores["pycocotools"][k] for k in M.COCO_NAMES], abs=1e-12)


def test_no_ground_truth_in_range_is_minus_one_not_zero() -> None:
    gts, preds = _dataset(5, small=False)  # only boxes ≥ 72 px: nothing small (< 32²)
    got = M.coco_map(gts, preds, LM, backend="pycocotools")
    want = _pycocotools(gts, preds)
    assert got["APs"] == M.NA == want[3] and got["ARs"] == M.NA == want[9]
    assert got["mAP"] > 0 and M.fmt(got["APs"]) == "n/a" and M.fmt(got["mAP"]) != "n/a"
    # no predictions at all: 0 where there is ground truth, still −1 where there is none
    empty = [{**p, "detection": {"instances": []}} for p in preds]
    none = M.coco_map(gts, empty, LM)
    assert none["mAP"] == 0.0 and none["AP50"] == 0.0 and none["APs"] == M.NA
    # the VG metrics: no expressions / phrases → n/a, not 0
    assert M.refexp_precision([], []) == {"P@1": M.NA, "P@5": M.NA, "P@10": M.NA}
    assert M.flickr_recall([], [])["R@1"] == M.NA
    only_targets = [{"grounding": {"caption": "a", "regions": [{"bbox": [0, 0, 5, 5]}]}}]
    assert M.grefcoco_scores(only_targets, [{"grounding": {"regions": []}}])["N-acc"] == M.NA
    assert M.na_for_table({"a": M.NA, "b": [{"c": 0.0}]}) == {"a": "n/a", "b": [{"c": 0.0}]}


def test_lvis_frequency_groups_and_empty_group() -> None:
    lm = {"0": "a", "1": "b", "2": "c"}
    A, B = [0, 0, 10, 10], [50, 50, 60, 60]
    gts = [{"detection": {"instances": [{"bbox": A, "label": 0}, {"bbox": B, "label": 1}]}, "neg_category_ids": []}]
    preds = [{"detection": {"instances": [{"bbox": A, "label": 0, "score": 0.9}, {"bbox": [80, 80, 90, 90], "label": 1, "score": 0.8}]}}]
    got = M.lvis_fixed_ap(gts, preds, lm, frequencies={"0": "r", "1": "f", "2": "c"})
    # class 0 (rare) found → 1; class 1 (frequent) missed → 0; no common class has ground truth → n/a
    assert (got["APr"], got["APf"], got["APc"], got["AP"]) == (1.0, 0.0, M.NA, 0.5)


def _lvis_case(seed: int) -> tuple[list[dict], list[dict], dict[str, str], dict[str, str]]:
    """Federated ground truth (negatives, not-exhaustive classes) over 8 classes, and predictions."""
    rng = random.Random(seed)
    n_cls = 8
    lm = {str(c): f"class{c}" for c in range(n_cls)}
    freqs = {str(c): "rcf"[c % 3] for c in range(n_cls)}
    gts, preds = [], []
    for i in range(30):
        present = rng.sample(range(n_cls), rng.randint(0, 3))
        absent = [c for c in range(n_cls) if c not in present]
        neg = rng.sample(absent, min(len(absent), rng.randint(0, 3)))
        not_exh = rng.sample(present, min(len(present), rng.randint(0, 1)))
        gi, pi = [], []
        for c in present:
            for _ in range(rng.randint(1, 3)):
                x1, y1 = rng.uniform(0, 500), rng.uniform(0, 350)
                box = [x1, y1, x1 + rng.uniform(10, 120), y1 + rng.uniform(10, 120)]
                gi.append({"bbox": box, "label": c})
                if rng.random() < 0.75:
                    pi.append({"bbox": [v + rng.uniform(-6, 6) for v in box], "label": c, "score": rng.random()})
        for _ in range(rng.randint(0, 5)):  # FPs on any class: kept only where the class is evaluated
            x1, y1 = rng.uniform(0, 500), rng.uniform(0, 350)
            pi.append({"bbox": [x1, y1, x1 + rng.uniform(10, 80), y1 + rng.uniform(10, 80)], "label": rng.randrange(n_cls),
                       "score": rng.random()})
        gts.append({"filename": f"{i}.jpg", "height": 480, "width": 640, "detection": {"instances": gi},
                    "neg_category_ids": neg, "not_exhaustive_category_ids": not_exh})
        preds.append({"filename": f"{i}.jpg", "detection": {"instances": pi}})
    return gts, preds, lm, freqs


def _lvis_api_fixed_ap(tmp_path, gts: list[dict], preds: list[dict], freqs: dict[str, str], per_cat: int) -> dict[str, float]:
    """Fixed AP as Dave et al. run it on lvis-api 0.5.3: top ``per_cat`` detections per class over the
    dataset, no per-image cap (``max_dets=-1``). lvis 0.5.3 uses ``np.float``, removed in numpy 1.24."""
    import json
    import logging

    lvis = pytest.importorskip("lvis", reason="lvis-api (requirements/dev.txt) is the reference")
    logging.getLogger("lvis").setLevel(logging.ERROR)
    if not hasattr(np, "float"):
        np.float = float  # type: ignore[attr-defined]
    doc = {"images": [], "annotations": [], "categories": [{"id": int(c) + 1, "name": f"c{c}", "frequency": f} for c, f in freqs.items()]}
    for i, g in enumerate(gts):
        doc["images"].append({"id": i + 1, "height": 480, "width": 640, "neg_category_ids": [c + 1 for c in g["neg_category_ids"]],
                              "not_exhaustive_category_ids": [c + 1 for c in g["not_exhaustive_category_ids"]]})
        for x in g["detection"]["instances"]:
            b = x["bbox"]
            doc["annotations"].append({"id": len(doc["annotations"]) + 1, "image_id": i + 1, "category_id": x["label"] + 1,
                                       "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]], "area": (b[2] - b[0]) * (b[3] - b[1])})
    path = tmp_path / "lvis_gt.json"
    path.write_text(json.dumps(doc))
    by_cat: dict[int, list[dict]] = {}
    for i, p in enumerate(preds):
        for x in p["detection"]["instances"]:
            b = x["bbox"]
            by_cat.setdefault(x["label"], []).append({"image_id": i + 1, "category_id": x["label"] + 1, "score": x["score"],
                                                      "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]]})
    dets = [d for c in sorted(by_cat) for d in sorted(by_cat[c], key=lambda d: -d["score"])[:per_cat]]
    gt = lvis.LVIS(str(path))
    with contextlib.redirect_stdout(io.StringIO()):
        ev = lvis.LVISEval(gt, lvis.LVISResults(gt, dets, max_dets=-1), "bbox")
        ev.params.max_dets = -1
        ev.run()
    return ev.get_results()


@pytest.mark.parametrize(("seed", "per_cat"), [(0, 10000), (1, 10000), (2, 6)])
def test_lvis_fixed_ap_equals_lvis_api(tmp_path, seed: int, per_cat: int) -> None:
    gts, preds, lm, freqs = _lvis_case(seed)
    want = _lvis_api_fixed_ap(tmp_path, gts, preds, freqs, per_cat)
    got = M.lvis_fixed_ap(gts, preds, lm, max_dets_per_cat=per_cat, frequencies=freqs)
    for key in ("AP", "AP50", "AP75", "APr", "APc", "APf"):
        assert got[key] == pytest.approx(float(want[key]), abs=1e-12), key
    assert 0.05 < got["AP"] < 0.95
