"""A real tiny run through the CLI: loss falls, config reproduces, checkpoint round-trips, infer works."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from odvgkit.records import Record

from .conftest import run_cli


def _losses(work_dir: Path) -> list[float]:
    from odvgkit_train.api import read_losses

    logs = sorted(p for p in work_dir.iterdir() if p.is_dir() and (p / "vis_data").is_dir())
    assert logs, f"no mmengine log dir in {work_dir}"
    return read_losses(logs[-1])


def test_loss_decreases_over_30_iterations(trained) -> None:
    losses = _losses(trained.work_dir)
    assert len(losses) == 30
    first, last = sum(losses[:5]) / 5, sum(losses[-10:]) / 10
    assert last < 0.85 * first, (first, last, losses)
    assert trained.summary["iterations"] == 30
    assert trained.summary["sources"] == 2 and trained.summary["records"] == 32
    assert trained.summary["images"] == 16  # the OD and VG files describe the same 16 images


def test_written_config_is_plain_mmengine(trained, demo) -> None:
    from mmengine.config import Config

    text = (trained.work_dir / "config.py").read_text()
    assert "import " not in text.replace("custom_imports", "")
    cfg = Config.fromfile(str(trained.work_dir / "config.py"))
    datasets = cfg.train_dataloader.dataset.datasets
    assert [d.type for d in datasets] == ["IndexedODVGDataset", "IndexedODVGDataset"]  # odvgkit_train/indexed.py
    assert all(Path(d.index_file).is_file() for d in datasets)
    assert datasets[0].label_map_file == str(demo.label_map.resolve())
    assert datasets[1].label_map_file is None
    assert cfg.train_dataloader.sampler.type == "InfiniteSampler"
    assert cfg.train_cfg.type == "IterBasedTrainLoop" and cfg.train_cfg.max_iters == 30
    # lr at batch 16 for tiny is 1e-3; batch 2 × 1 process → 1.25e-4
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(1e-3 * 2 / 16)
    assert cfg.model.encoder.num_cp == 0


def test_checkpoint_loads_back_strictly(trained) -> None:
    import torch

    from odvgkit_train.api import load_model
    from odvgkit_train.checkpoint import read_state_dict

    state = read_state_dict(trained.checkpoint)
    model = load_model(trained.checkpoint)
    loaded = model.state_dict()
    assert set(loaded) == set(state)
    for key in ("query_embedding.weight", "bbox_head.cls_branches.0.bias", "backbone.patch_embed.projection.weight"):
        if key in state:
            assert torch.equal(loaded[key], state[key]), key
    assert all(torch.equal(loaded[k], state[k]) for k in state)


def test_infer_cli_returns_scored_odvg(trained, demo, tmp_path: Path) -> None:
    out = tmp_path / "preds.jsonl"
    images = sorted(demo.image_root.glob("*.jpg"))[:3]
    proc = run_cli("infer", *map(str, images), "--checkpoint", str(trained.checkpoint), "--texts", "red box . blue box . green box",
                   "--score-thr", "0", "-o", str(out), "--render", str(tmp_path / "vis"), "--json")
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["rendered"] == 3
    from PIL import Image

    for img in images:
        with Image.open(tmp_path / "vis" / f"{img.stem}.png") as drawn, Image.open(img) as orig:
            assert drawn.size == orig.size
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 3 == summary["images"]
    for rec, img in zip(records, images, strict=True):
        Record.model_validate(rec)
        assert rec["filename"] == img.name
        inst = rec["detection"]["instances"]
        assert inst, "no boxes for the prompt"
        scores = [i["score"] for i in inst]
        assert scores == sorted(scores, reverse=True)
        for i in inst:
            assert i["category"] == ["red box", "blue box", "green box"][i["label"]]
            x1, y1, x2, y2 = i["bbox"]
            assert 0 <= x1 <= x2 <= rec["width"] + 0.5 and 0 <= y1 <= y2 <= rec["height"] + 0.5


def test_infer_caption_with_tokens_positive_and_rec(trained, demo) -> None:
    from odvgkit_train.api import infer, load_model

    model = load_model(trained.checkpoint)
    image = sorted(demo.image_root.glob("*.jpg"))[0]
    caption = "a red box and a blue box"
    [rec] = infer([image], model, caption, tokens_positive=[[[2, 9]], [[16, 24]]], score_thr=0.0)
    regions = rec["grounding"]["regions"]
    assert rec["grounding"]["caption"] == caption and regions
    assert {r["phrase"] for r in regions} <= {"red box", "blue box"}
    assert all(r["tokens_positive"] in ([[2, 9]], [[16, 24]]) for r in regions)
    [rec2] = infer([image], model, "the red box", score_thr=0.0)
    assert {r["phrase"] for r in rec2["grounding"]["regions"]} == {"the red box"}


def test_infer_is_deterministic_and_thresholded(trained, demo) -> None:
    from odvgkit_train.api import infer, load_model

    model = load_model(trained.checkpoint)
    image = sorted(demo.image_root.glob("*.jpg"))[1]
    a = infer([image], model, ["red box", "blue box"], score_thr=0.0)
    b = infer([image], model, ["red box", "blue box"], score_thr=0.0)
    assert a == b
    scores = [i["score"] for i in a[0]["detection"]["instances"]]
    distinct = sorted(set(scores))
    k = len(distinct) // 2
    thr = (distinct[k - 1] + distinct[k]) / 2  # between two scores: no rounding tie at the threshold
    c = infer([image], model, ["red box", "blue box"], score_thr=thr)
    assert [i["score"] for i in c[0]["detection"]["instances"]] == [s for s in scores if s >= thr]


def test_finetune_from_checkpoint_all_modes(trained, demo, bert_dir, tmp_path: Path) -> None:
    for mode, extra in (("closed-set", []), ("ovd", ["--base-classes", "red box,blue box"]), ("open-set", [])):
        work = tmp_path / mode
        proc = run_cli("train", "finetune", str(demo.od_file), str(demo.vg_file), "--label-map", str(demo.label_map),
                       "--image-root", str(demo.image_root), "--model", "tiny", "--text-encoder", str(bert_dir),
                       "--work-dir", str(work), "--max-iters", "2", "--num-workers", "0", "--log-interval", "1",
                       "--load-from", str(trained.checkpoint), "--finetune-mode", mode, *extra, "--json")
        summary = json.loads(proc.stdout.strip().splitlines()[-1])
        assert Path(summary["checkpoint"]).is_file(), mode
        assert "Load checkpoint from" in proc.stderr
        assert "do not match exactly" not in proc.stderr
        text = (work / "config.py").read_text()
        if mode == "open-set":
            assert "NegPosPrompt" in text and "ClosedSetPrompt" not in text
        else:
            assert "ClosedSetPrompt" in text and "RandomSamplingNegPos" not in text
        if mode == "ovd":
            from mmengine.config import Config

            steps = Config.fromfile(str(work / "config.py")).train_dataloader.dataset.datasets[0].pipeline
            assert [s.labels for s in steps if s.type == "KeepLabels"] == [[0, 1]]


@pytest.mark.parametrize("metric", ["coco", "refexp", "flickr30k"])
def test_eval_cli_metrics_match_its_predictions(metric: str, trained, demo, tmp_path: Path) -> None:
    from odvgkit_train import metrics as M

    preds_path = tmp_path / "preds.jsonl"
    if metric == "coco":
        data = [f"{demo.od_file},images={demo.image_root},label_map={demo.label_map}"]
    else:
        data = [f"{demo.vg_file},images={demo.image_root}"]
    proc = run_cli("eval", *data, "--checkpoint", str(trained.checkpoint), "--metric", metric, "-o", str(preds_path), "--json")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    preds = [json.loads(line) for line in preds_path.read_text().splitlines()]
    gt_file = demo.od_file if metric == "coco" else demo.vg_file
    gts = [json.loads(line) for line in gt_file.read_text().splitlines()]
    assert result["images"] == len(gts) == len(preds)
    assert [p["filename"] for p in preds] == [g["filename"] for g in gts]
    if metric == "coco":
        expected = M.coco_map(gts, preds, json.loads(demo.label_map.read_text()))
        assert all(0.0 <= result[k] <= 1.0 or result[k] == M.NA for k in M.COCO_NAMES)
        # no ground-truth box of these ≤ 128-px images is large (> 96²): n/a (−1) as pycocotools says, not 0
        assert result["APl"] == M.NA and result["ARl"] == M.NA
        assert all(i["label"] in (0, 1, 2) for p in preds for i in p["detection"]["instances"])
    elif metric == "refexp":
        expected = M.refexp_precision(gts, preds)
        assert result["P@1"] <= result["P@5"] <= result["P@10"]
    else:
        expected = M.flickr_recall(gts, preds)
        gt_spans = [sorted(map(repr, (r["tokens_positive"] for r in g["grounding"]["regions"]))) for g in gts]
        assert all({repr(r["tokens_positive"]) for r in p["grounding"]["regions"]} <= set(s) for p, s in zip(preds, gt_spans, strict=True))
    for key, value in expected.items():
        assert result[key] == pytest.approx(value), key
