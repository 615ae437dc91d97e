"""``odvgkit train detector`` (RTMDet) on the real BCCD VOC fixture, then eval / infer / --show-dir through the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import run_cli

REPO = Path(__file__).resolve().parents[2]
BCCD = REPO.parent / "shared" / "fixtures" / "bccd_voc"
CLASSES = ["RBC", "WBC", "Platelets"]


def voc_split_to_odvg(split: str, out: Path) -> Path:
    """A minimal VOC → ODVG OD conversion (the real VOC importer is a separate module)."""
    lines = []
    for stem in (BCCD / "ImageSets" / "Main" / f"{split}.txt").read_text().split():
        root = ET.parse(BCCD / "Annotations" / f"{stem}.xml").getroot()
        instances = []
        for obj in root.findall("object"):
            box = [float(obj.find(f"bndbox/{k}").text) for k in ("xmin", "ymin", "xmax", "ymax")]
            if box[2] - box[0] < 1 or box[3] - box[1] < 1:  # BCCD's zero-size boxes: dropped, as mmdet's loaders do
                continue
            name = obj.find("name").text
            instances.append({"bbox": box, "label": CLASSES.index(name), "category": name})
        lines.append(json.dumps({"filename": f"{stem}.jpg", "height": int(root.find("size/height").text),
                                 "width": int(root.find("size/width").text), "detection": {"instances": instances}}))
    out.write_text("\n".join(lines) + "\n")
    return out


@dataclass
class Bccd:
    train: Path
    val: Path
    label_map: Path
    images: Path


@dataclass
class DetectorRun:
    work_dir: Path
    summary: dict
    stderr: str


@pytest.fixture(scope="module")
def bccd(tmp_path_factory: pytest.TempPathFactory) -> Bccd:
    if not (BCCD / "Annotations").is_dir():
        pytest.fail(f"shared fixture missing: {BCCD}")
    d = tmp_path_factory.mktemp("bccd")
    lm = d / "bccd_label_map.json"
    lm.write_text(json.dumps({str(i): c for i, c in enumerate(CLASSES)}))
    return Bccd(voc_split_to_odvg("train", d / "train_od.jsonl"), voc_split_to_odvg("val", d / "val_od.jsonl"), lm,
                BCCD / "JPEGImages")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, bccd: Bccd) -> DetectorRun:
    """One real RTMDet-tiny run: 6 epochs × 6 iterations at 192 px, validated (best checkpoint kept)."""
    work = tmp_path_factory.mktemp("det") / "work"
    proc = run_cli(
        "train", "detector", f"{bccd.train},images={bccd.images}", "--label-map", str(bccd.label_map),
        "--val", f"{bccd.val},images={bccd.images}", "--model", "rtmdet-tiny", "--epochs", "6", "--batch-size", "4",
        "--img-size", "192", "--lr", "0.5", "--val-interval", "3", "--num-workers", "0", "--log-interval", "1",
        "--work-dir", str(work), "--json",
    )
    return DetectorRun(work, json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr)


def _losses(work_dir: Path) -> list[float]:
    from odvgkit_train.api import read_losses

    logs = sorted(p for p in work_dir.iterdir() if p.is_dir() and (p / "vis_data").is_dir())
    return read_losses(logs[-1])


def test_loss_falls_and_schedule_follows_the_tutorial(run: DetectorRun) -> None:
    s = run.summary
    assert (s["classes"], s["images"], s["val_images"], s["epochs"], s["iterations"]) == (3, 24, 8, 6, 36)
    assert s["lr"] == pytest.approx(0.5 * 4 / 256)  # lr × batch / 256
    assert s["stage2_from"] == "epoch 6"  # RTMDet's 20/300 of 6 epochs → 1 stage-2 epoch (the last)
    assert "Switch pipeline now!" in run.stderr
    losses = _losses(run.work_dir)
    assert len(losses) == 36
    # the first two iterations have almost no positive samples (loss ≈ 0); compare the first epoch after them
    early, late = sum(losses[2:8]) / 6, sum(losses[-6:]) / 6
    assert late < 0.85 * early, (early, late, losses)
    assert Path(s["checkpoint"]).name == "epoch_6.pth"
    best = Path(s["best_checkpoint"])
    assert best.is_file() and best.name.startswith("best_coco_bbox_mAP_epoch_")


def test_written_config_reproduces_with_plain_mmdet_from_another_dir(run: DetectorRun, bccd: Bccd, tmp_path: Path) -> None:
    from mmengine.config import Config

    cfg_path = run.work_dir / "config.py"
    cfg = Config.fromfile(str(cfg_path))
    assert cfg.model.type == "RTMDet" and cfg.model.bbox_head.num_classes == 3
    assert "init_cfg" not in cfg.model.backbone and "Pretrained" not in cfg_path.read_text()
    ds = cfg.train_dataloader.dataset
    assert tuple(ds.metainfo.classes) == tuple(CLASSES)
    for path in (ds.ann_file, ds.label_map_file, ds.data_prefix.img, cfg.val_dataloader.dataset.ann_file, cfg.work_dir):
        assert Path(path).is_absolute(), path
    switch = [h for h in cfg.custom_hooks if h.type == "PipelineSwitchHook"]
    assert [h.switch_epoch for h in switch] == [5]
    assert not any(step.type == "CachedMosaic" for step in switch[0].switch_pipeline)
    assert any(step.type == "CachedMosaic" for step in ds.pipeline)
    assert cfg.default_hooks.checkpoint.save_best == "coco/bbox_mAP"
    warm, cosine = cfg.param_scheduler
    assert (warm.type, warm.end) == ("LinearLR", 3)  # 36 iterations // 10
    assert (cosine.type, cosine.begin, cosine.end, cosine.eta_min) == ("CosineAnnealingLR", 3, 6, pytest.approx(0.05 * 0.5 * 4 / 256))
    # plain mmengine Runner, another working directory, one epoch, no odvgkit import in the script
    script = (
        "import sys\nfrom mmengine.config import Config\nfrom mmengine.runner import Runner\n"
        "cfg = Config.fromfile(sys.argv[1]); cfg.work_dir = sys.argv[2]; cfg.train_cfg.max_epochs = 1\n"
        "cfg.train_cfg.val_interval = 1; cfg.default_hooks.logger.interval = 1\n"
        "cfg.train_dataloader.dataset.indices = 8; cfg.val_dataloader.dataset.indices = 2\n"
        "runner = Runner.from_cfg(cfg); runner.train()\nprint('iters', runner.iter)\n"
    )
    out = tmp_path / "plain"
    proc = subprocess.run([sys.executable, "-c", script, str(cfg_path), str(out)], cwd=tmp_path, capture_output=True,
                          text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "iters 2" in proc.stdout
    assert (out / "epoch_1.pth").is_file()
    assert "coco/bbox_mAP" in proc.stdout + proc.stderr


def test_checkpoint_reloads_strictly_with_its_classes(run: DetectorRun) -> None:
    import torch

    from odvgkit_train.checkpoint import read_state_dict
    from odvgkit_train.detector import checkpoint_family, load_detector

    ckpt = Path(run.summary["best_checkpoint"])
    assert checkpoint_family(ckpt) == "detector"
    net = load_detector(ckpt)
    state = read_state_dict(ckpt)
    loaded = net.state_dict()
    assert set(loaded) == set(state)
    assert all(torch.equal(loaded[k], state[k]) for k in state)
    assert net.dataset_meta["classes"] == tuple(CLASSES) and not net.training


def _pycocotools(gts: list[dict], preds: list[dict]) -> list[float]:
    """COCO bbox stats computed here, independently of odvgkit's metric code."""
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, anns, dets = [], [], []
    for i, (g, p) in enumerate(zip(gts, preds, strict=True)):
        images.append({"id": i, "width": g["width"], "height": g["height"]})
        for inst in g["detection"]["instances"]:
            x1, y1, x2, y2 = inst["bbox"]
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": inst["label"], "bbox": [x1, y1, x2 - x1, y2 - y1],
                         "area": (x2 - x1) * (y2 - y1), "iscrowd": 0})
        for inst in p["detection"]["instances"]:
            x1, y1, x2, y2 = inst["bbox"]
            dets.append({"image_id": i, "category_id": inst["label"], "bbox": [x1, y1, x2 - x1, y2 - y1], "score": inst["score"]})
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": images, "annotations": anns, "categories": [{"id": i, "name": c} for i, c in enumerate(CLASSES)]}
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(dets), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return [float(v) for v in ev.stats]


def test_eval_prints_pycocotools_map_and_show_dir_pairs(run: DetectorRun, bccd: Bccd, tmp_path: Path) -> None:
    from odvgkit_train.metrics import COCO_NAMES

    preds_path, show = tmp_path / "preds.jsonl", tmp_path / "show"
    spec = f"{bccd.val},images={bccd.images},label_map={bccd.label_map}"
    proc = run_cli("eval", spec, "--checkpoint", run.summary["best_checkpoint"], "-o", str(preds_path),
                   "--show-dir", str(show), env={"COLUMNS": "200"})
    table = {}
    for line in proc.stderr.splitlines():  # the summary table: "│ key │ value │"
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if len(cells) == 2:
            table[cells[0]] = cells[1]
    gts = [json.loads(line) for line in bccd.val.read_text().splitlines()]
    preds = [json.loads(line) for line in preds_path.read_text().splitlines()]
    assert table["images"] == "8" == str(len(preds)) and table["model"] == "detector", proc.stderr
    assert [p["filename"] for p in preds] == [g["filename"] for g in gts]
    assert all(p["detection"]["instances"] for p in preds)
    from odvgkit.report import _fmt  # the summary's number format

    stats = _pycocotools(gts, preds)
    assert -1.0 in stats  # no BCCD val box is small (< 32² px): APs/ARs are undefined
    for name, value in zip(COCO_NAMES, stats, strict=True):
        assert table[name] == ("n/a" if value == -1.0 else _fmt(float(value))), (name, value, table[name])
    # --show-dir: one image per test image, ground truth | prediction, twice the width
    from PIL import Image

    shown = sorted(show.glob("*.png"))
    assert [p.stem for p in shown] == sorted(Path(g["filename"]).stem for g in gts) and table["shown"] == "8"
    for p in shown:
        with Image.open(p) as im, Image.open(bccd.images / f"{p.stem}.jpg") as orig:
            assert im.size == (2 * orig.width, orig.height)
            left, right = im.crop((0, 0, orig.width, orig.height)), im.crop((orig.width, 0, 2 * orig.width, orig.height))
            assert left.tobytes() != right.tobytes()  # different boxes drawn on each half
            assert left.tobytes() != orig.convert("RGB").tobytes()  # ground truth drawn


def test_infer_without_text_returns_trained_classes(run: DetectorRun, bccd: Bccd, tmp_path: Path) -> None:
    from odvgkit.records import Record

    images = sorted(bccd.images.glob("*.jpg"))[:3]
    out = tmp_path / "p.jsonl"
    proc = run_cli("infer", *map(str, images), "--checkpoint", run.summary["checkpoint"], "--score-thr", "0",
                   "-o", str(out), "--json")
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert summary["images"] == 3 == len(records) and summary["boxes"] > 0
    for rec, img in zip(records, images, strict=True):
        Record.model_validate(rec)
        assert (rec["filename"], rec["width"], rec["height"]) == (img.name, 640, 480)
        inst = rec["detection"]["instances"]
        assert inst and [i["score"] for i in inst] == sorted((i["score"] for i in inst), reverse=True)
        assert all(i["category"] == CLASSES[i["label"]] for i in inst)


def test_a_checkpoint_without_config_needs_and_takes_config(run: DetectorRun, bccd: Bccd, tmp_path: Path) -> None:
    """Weights saved without mmengine's meta (torch.save of the state dict): --config builds the model."""
    import torch

    from .test_train_errors import _one_line_error

    ckpt = torch.load(run.summary["checkpoint"], map_location="cpu", weights_only=False)
    bare = tmp_path / "bare.pth"
    torch.save({"state_dict": ckpt["state_dict"]}, bare)
    image = sorted(bccd.images.glob("*.jpg"))[0]
    proc = run_cli("infer", str(image), "--checkpoint", str(bare), "-o", str(tmp_path / "x.jsonl"), check=False)
    assert proc.returncode != 0 and "--config" in _one_line_error(proc)
    outs = []
    for ck, extra in ((run.summary["checkpoint"], []), (str(bare), ["--config", str(run.work_dir / "config.py")])):
        out = tmp_path / f"p{len(outs)}.jsonl"
        proc = run_cli("infer", str(image), "--checkpoint", ck, "--score-thr", "0", "-o", str(out), *extra)
        assert proc.returncode == 0, proc.stderr
        outs.append(json.loads(out.read_text()))
    assert outs[0] == outs[1] and outs[0]["detection"]["instances"]  # the same model, the same boxes


def test_eval_and_infer_name_an_image_that_does_not_decode(run: DetectorRun, bccd: Bccd, tmp_path: Path) -> None:
    from .test_train_errors import _one_line_error

    images = tmp_path / "images"
    images.mkdir()
    (images / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a JPEG")
    proc = run_cli("infer", str(images / "broken.jpg"), "--checkpoint", run.summary["checkpoint"], "-o",
                   str(tmp_path / "p.jsonl"), check=False)
    _one_line_error(proc, "broken.jpg", "does not decode")
    assert not (tmp_path / "p.jsonl").exists()
    gt = tmp_path / "gt.jsonl"
    gt.write_text(json.dumps({"filename": "broken.jpg", "height": 480, "width": 640,
                              "detection": {"instances": [{"bbox": [1, 1, 50, 50], "label": 0}]}}) + "\n")
    proc = run_cli("eval", f"{gt},images={images},label_map={bccd.label_map}", "--checkpoint", run.summary["checkpoint"],
                   check=False)
    _one_line_error(proc, f"{gt}:1: filename:", "does not decode")


def test_load_from_reinitialises_only_a_class_head_of_another_size(run: DetectorRun, bccd: Bccd, tmp_path: Path) -> None:
    """The tutorial's fine-tuning: a checkpoint trained on other classes (here: 80) loads except its class head."""
    import torch

    from odvgkit_train.checkpoint import read_checkpoint

    from .test_train_errors import _one_line_error

    ckpt = read_checkpoint(run.summary["checkpoint"])
    state = {k: (torch.zeros((80, *v.shape[1:])) if k.startswith("bbox_head.rtm_cls.") else v)
             for k, v in ckpt["state_dict"].items()}
    coco80 = tmp_path / "coco80.pth"
    torch.save({"state_dict": state, "meta": ckpt["meta"]}, coco80)
    work = tmp_path / "w"
    common = [f"{bccd.train},images={bccd.images}", "--label-map", str(bccd.label_map), "--max-iters", "1",
              "--batch-size", "2", "--img-size", "64", "--num-workers", "0", "--frozen-stages", "2"]
    proc = run_cli("train", "detector", *common, "--load-from", str(coco80), "--work-dir", str(work), "--json",
                   env={"COLUMNS": "400"})
    assert "class head re-initialised for 3 classes" in proc.stderr and "bbox_head.rtm_cls.0.weight (80, 96, 1, 1)" in proc.stderr
    assert Path(json.loads(proc.stdout.strip().splitlines()[-1])["checkpoint"]).is_file()
    from mmengine.config import Config

    cfg = Config.fromfile(str(work / "config.py"))
    assert cfg.model.backbone.frozen_stages == 2 and cfg.load_from == str(coco80)
    del state["backbone.stem.0.conv.weight"]
    broken = tmp_path / "broken.pth"
    torch.save({"state_dict": state, "meta": ckpt["meta"]}, broken)
    proc = run_cli("train", "detector", *common, "--load-from", str(broken), "--work-dir", str(tmp_path / "w2"), check=False)
    _one_line_error(proc, "broken.pth", "1 missing: backbone.stem.0.conv.weight", "check --model")
    assert "rtm_cls" not in proc.stderr.splitlines()[-1]
