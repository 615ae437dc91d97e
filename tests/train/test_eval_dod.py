"""D³: dod2odvg (restricted unpickler), the D³ metric against the official procedure, eval --metric dod."""

from __future__ import annotations

import json
import pickle
import random
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from odvgkit_train.suite_data import D3_GROUPS, D3_SENTENCES, make_d3_root

from .conftest import run_cli
from .test_train_errors import _one_line_error


def _read(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def d3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_d3_root(tmp_path_factory.mktemp("d3") / "d3", n_images=8)
    run_cli("convert", "dod2odvg", str(root), "--quiet")
    return root


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory: pytest.TempPathFactory, bert_dir: Path) -> Path:
    """A randomly initialised tiny model saved as a checkpoint (no training: fast)."""
    import torch

    from odvgkit_train.inference import load_model

    torch.manual_seed(0)
    net = load_model(None, model="tiny", text_encoder=bert_dir)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pth"
    torch.save({"state_dict": net.state_dict(), "meta": {}}, path)
    return path


# ------------------------------------------------------------------------------------ dod2odvg
def test_dod2odvg_records_prompts_and_settings(d3: Path) -> None:
    recs = _read(d3 / "d3_od.jsonl")
    lm = json.loads((d3 / "d3_label_map.json").read_text())
    settings = json.loads((d3 / "d3_settings.json").read_text())
    full = json.loads((d3 / "d3_json" / "d3_full_annotations.json").read_text())
    images = pickle.loads((d3 / "d3_pkl" / "images.pkl").read_bytes())
    assert lm == {str(i): s for i, (s, _) in enumerate(D3_SENTENCES)}
    assert [r["dod"]["image_id"] for r in recs] == sorted(images)
    for rec in recs:
        img = images[rec["dod"]["image_id"]]
        assert (rec["filename"], rec["height"], rec["width"]) == (img["file_name"], img["height"], img["width"])
        # the prompt is the whole group (present and absent sentences), in D³'s loader order
        expect: set[int] = set()
        expect |= set(D3_GROUPS[img["group_id"]])
        assert rec["dod"]["sentences"] == [s - 1 for s in expect]
        gt = sorted((a["category_id"] - 1, a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3])
                    for a in full["annotations"] if a["image_id"] == rec["dod"]["image_id"])
        assert sorted((i["label"], *i["bbox"]) for i in rec["detection"]["instances"]) == gt
    assert settings["ABS"]["labels"] == [i for i, (_, neg) in enumerate(D3_SENTENCES) if neg]
    assert settings["PRES"]["labels"] == [i for i, (_, neg) in enumerate(D3_SENTENCES) if not neg]
    assert settings["FULL"]["image_ids"] == sorted(images)


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned > /dev/null",))


def test_dod2odvg_refuses_code_in_a_pickle(d3: Path, tmp_path: Path) -> None:
    root = tmp_path / "d3"
    shutil.copytree(d3 / "d3_pkl", root / "d3_pkl")
    shutil.copytree(d3 / "d3_json", root / "d3_json")
    groups = pickle.loads((root / "d3_pkl" / "groups.pkl").read_bytes())
    groups[1]["group_name"] = _Evil()
    (root / "d3_pkl" / "groups.pkl").write_bytes(pickle.dumps(groups))
    before = sorted(p.name for p in root.rglob("*"))
    proc = run_cli("convert", "dod2odvg", str(root), check=False)
    line = _one_line_error(proc, "groups.pkl", "refused", "system")
    assert "posix.system" in line or "os.system" in line
    assert sorted(p.name for p in root.rglob("*")) == before  # nothing written


def test_dod2odvg_root_without_pickles(d3: Path, tmp_path: Path) -> None:
    root = tmp_path / "d3"
    shutil.copytree(d3 / "d3_json", root / "d3_json")
    proc = run_cli("convert", "dod2odvg", str(root), check=False)
    _one_line_error(proc, "images.pkl", "d3_pkl")
    assert not (root / "d3_od.jsonl").exists() and not (root / "d3_label_map.json").exists()


def test_safe_unpickler_reads_numpy_and_protocol_2() -> None:
    from odvgkit.convert.dod import SafeUnpickler

    obj = {1: {"bbox": np.array([[1.5, 2, 3, 4]]), "n": np.int64(7), "s": {1, 2}, "b": b"\x00\xff"}}
    for proto in (2, 4, 5):
        import io

        got = SafeUnpickler(io.BytesIO(pickle.dumps(obj, protocol=proto))).load()
        assert got[1]["bbox"].tolist() == [[1.5, 2, 3, 4]] and int(got[1]["n"]) == 7 and got[1]["s"] == {1, 2}
        assert got[1]["b"] == b"\x00\xff"


# ------------------------------------------------------------------------------------ the metric
def _official_d3(gt_path: Path, dets: list[dict]) -> tuple[float, dict[str, float | None]]:
    """D³'s eval_and_analysis_json.py procedure (pycocotools on the setting's json, length buckets)."""
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(gt_path))
        res = coco.loadRes(dets)
        ev = COCOeval(coco, res, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    aps = ev.eval["precision"][:, :, :, 0, -1]
    names = [c["name"] for c in coco.loadCats(coco.getCatIds())]
    aps_lens, counter = defaultdict(list), defaultdict(int)
    for i, name in enumerate(names):
        ap = aps[:, :, i]
        value = ap[ap > -1].mean() if (ap > -1).any() else float("nan")
        if not np.isnan(value):
            aps_lens[len(name.split(" "))].append(value)
            counter[len(name.split(" "))] += 1
    buckets: dict[str, float | None] = {}
    top = max(counter) + 1 if counter else 10
    for key, lengths in (("short", range(0, 4)), ("middle", range(4, 7)), ("long", range(7, 10)), ("very_long", range(10, max(top, 11)))):
        c = sum(counter[i] for i in lengths)
        buckets[key] = sum(sum(aps_lens[i]) for i in lengths) / c if c else None  # D³ divides by zero here
    return float(ev.stats[0]), buckets


def _constructed_predictions(d3: Path, seed: int) -> tuple[list[dict], list[dict]]:
    """Jittered ground truth, missed boxes and false positives; as ODVG records and as COCO results."""
    rng = random.Random(seed)
    recs = _read(d3 / "d3_od.jsonl")
    preds, dets = [], []
    for rec in recs:
        insts = []
        for inst in rec["detection"]["instances"]:
            if rng.random() < 0.2:
                continue  # missed
            x1, y1, x2, y2 = (v + rng.uniform(-4, 4) for v in inst["bbox"])
            insts.append({"bbox": [x1, y1, x2, y2], "label": inst["label"], "score": round(rng.random(), 4)})
        for _ in range(rng.randint(0, 3)):  # false positives on the image's prompt sentences
            x1, y1 = rng.uniform(0, 60), rng.uniform(0, 60)
            insts.append({"bbox": [x1, y1, x1 + rng.uniform(5, 30), y1 + rng.uniform(5, 30)],
                          "label": rng.choice(rec["dod"]["sentences"]), "score": round(rng.random(), 4)})
        preds.append({"filename": rec["filename"], "height": rec["height"], "width": rec["width"],
                      "detection": {"instances": insts}})
        for inst in insts:
            x1, y1, x2, y2 = inst["bbox"]
            dets.append({"image_id": rec["dod"]["image_id"], "category_id": inst["label"] + 1,
                         "bbox": [x1, y1, x2 - x1, y2 - y1], "score": inst["score"]})
    return preds, dets


@pytest.mark.parametrize("backend", ["pycocotools", "faster-coco-eval"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dod_map_equals_official_procedure_with_empty_bucket(d3: Path, seed: int, backend: str) -> None:
    from odvgkit_train import metrics as M

    if backend == "faster-coco-eval":
        pytest.importorskip("faster_coco_eval", reason="faster-coco-eval is in requirements/train.txt")
    gts = _read(d3 / "d3_od.jsonl")
    lm = json.loads((d3 / "d3_label_map.json").read_text())
    settings = json.loads((d3 / "d3_settings.json").read_text())
    preds, dets = _constructed_predictions(d3, seed)
    got = M.dod_map(gts, preds, lm, settings, backend=backend)
    for name, fname in (("FULL", "full"), ("PRES", "pres"), ("ABS", "abs")):
        m, buckets = _official_d3(d3 / "d3_json" / f"d3_{fname}_annotations.json", dets)
        assert got[name] == pytest.approx(m, abs=1e-12)
        assert 0 < got[name] < 1  # a real, non-trivial value
        for key, value in buckets.items():
            if value is None:
                assert got[f"{name}/{key}"] == M.NA  # n/a, where D³'s script divides by zero
            else:
                assert got[f"{name}/{key}"] == pytest.approx(value, abs=1e-12)
    assert got["FULL/very_long"] == M.NA and got["ABS/short"] == M.NA  # no such sentences


# ------------------------------------------------------------------------------------ eval CLI
@pytest.mark.parametrize("prompting", ["concat", "parallel"])
def test_eval_dod_cli_scores_its_own_predictions(d3: Path, tiny_ckpt: Path, bert_dir: Path, tmp_path: Path, prompting: str) -> None:
    from odvgkit_train import metrics as M

    out = tmp_path / "preds.jsonl"
    proc = run_cli("eval", f"{d3 / 'd3_od.jsonl'},images={d3 / 'd3_images'}", "--checkpoint", str(tiny_ckpt), "--model", "tiny",
                   "--text-encoder", str(bert_dir), "--metric", "dod", "--prompting", prompting, "-o", str(out), "--json")
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    preds = _read(out)
    gts = _read(d3 / "d3_od.jsonl")
    assert len(preds) == len(gts) == summary["images"] == 8
    for g, p in zip(gts, preds, strict=True):  # labels are the image's prompt sentences only
        assert {i["label"] for i in p["detection"]["instances"]} <= set(g["dod"]["sentences"])
        assert p["detection"]["instances"]
    expect = M.dod_map(gts, preds, json.loads((d3 / "d3_label_map.json").read_text()),
                       json.loads((d3 / "d3_settings.json").read_text()))
    for key, value in expect.items():
        assert summary[key] == pytest.approx(value)
    assert summary["FULL/very_long"] == -1.0 and summary["prompting"] == prompting
    # the parallel path runs one transformer pass per sentence: ≥ one box set per prompt sentence
    if prompting == "parallel":
        n_sent = {len(g["dod"]["sentences"]) for g in gts}
        assert all(len(p["detection"]["instances"]) >= max(n_sent) for p in preds)


def test_dod_needs_records_from_dod2odvg(tmp_path: Path) -> None:
    from odvgkit.errors import OdvgError
    from odvgkit_train.dod import find_settings, predict_dod

    plain = [{"filename": "a.jpg", "height": 4, "width": 4, "detection": {"instances": []}}]
    with pytest.raises(OdvgError, match=r"x\.jsonl:1: dod\.sentences: missing"):
        predict_dod(None, plain, tmp_path, {"0": "a"}, "concat", tmp_path / "x.jsonl")
    with pytest.raises(OdvgError, match="--prompting 'sideways'"):
        predict_dod(None, plain, tmp_path, {"0": "a"}, "sideways", tmp_path / "x.jsonl")
    with pytest.raises(OdvgError, match=r"d3_settings\.json: missing"):
        find_settings(tmp_path / "x.jsonl", None)


def test_dod2odvg_bad_annotation_skipped_or_strict(d3: Path, tmp_path: Path) -> None:
    root = tmp_path / "d3"
    shutil.copytree(d3 / "d3_pkl", root / "d3_pkl")
    shutil.copytree(d3 / "d3_json", root / "d3_json")
    full = root / "d3_json" / "d3_full_annotations.json"
    doc = json.loads(full.read_text())
    doc["annotations"][2]["image_id"] = 999  # not an image of images.pkl
    full.write_text(json.dumps(doc))
    pres = root / "d3_json" / "d3_pres_annotations.json"  # keep PRES/ABS FULL's restriction
    cat = doc["annotations"][2]["category_id"]
    setting = pres if cat in {c["id"] for c in json.loads(pres.read_text())["categories"]} else root / "d3_json" / "d3_abs_annotations.json"
    sub = json.loads(setting.read_text())
    sub["annotations"] = [a for a in doc["annotations"] if a["category_id"] in {c["id"] for c in sub["categories"]}]
    setting.write_text(json.dumps(sub))
    proc = run_cli("convert", "dod2odvg", str(root), "--strict", check=False)
    _one_line_error(proc, "d3_full_annotations.json", "annotations[2]", "image_id", "999")
    assert not (root / "d3_od.jsonl").exists()
    proc = run_cli("convert", "dod2odvg", str(root), "--json", check=False)
    assert proc.returncode == 1  # written, with the bad annotation named and counted
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["dropped:unknown-image"] == 1 and summary["images"] == 8
    assert sum(len(r["detection"]["instances"]) for r in _read(root / "d3_od.jsonl")) == len(doc["annotations"]) - 1


def test_dod_map_equals_mmdet_dodcocometric_when_every_bucket_is_filled(tmp_path: Path) -> None:
    """MMDetection's port (DODCocoMetric, rounded to 3 decimals) agrees where it does not divide by zero."""
    from mmdet.evaluation.metrics import DODCocoMetric

    from odvgkit_train import metrics as M

    root = make_d3_root(tmp_path / "d3", n_images=10, seed=5, very_long=True)  # every sentence has ground truth
    run_cli("convert", "dod2odvg", str(root), "--quiet")
    gts = _read(root / "d3_od.jsonl")
    lm = json.loads((root / "d3_label_map.json").read_text())
    settings = json.loads((root / "d3_settings.json").read_text())
    preds, _ = _constructed_predictions(root, seed=9)
    got = M.dod_map(gts, preds, lm, settings)
    for name, fname in (("FULL", "full"), ("PRES", "pres")):  # ABS has only middle-length sentences
        metric = DODCocoMetric(ann_file=str(root / "d3_json" / f"d3_{fname}_annotations.json"))
        results = []
        for g, p in zip(gts, preds, strict=True):
            insts = p["detection"]["instances"]
            results.append({"img_id": g["dod"]["image_id"], "bboxes": np.array([i["bbox"] for i in insts]).reshape(-1, 4),
                            "scores": np.array([i["score"] for i in insts]), "labels": np.array([i["label"] + 1 for i in insts])})
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):
            theirs = metric.compute_metrics(results)
        assert round(got[name], 3) == theirs["mAP"] and 0 < got[name] < 1
        for ours, key in (("short", "mAP_short"), ("middle", "mAP_mid"), ("long", "mAP_long"), ("very_long", "mAP_very_long")):
            assert round(got[f"{name}/{ours}"], 3) == pytest.approx(theirs[key], abs=1e-9), (name, ours)
            assert got[f"{name}/{ours}"] != M.NA
