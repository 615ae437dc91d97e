"""``train detector``: bad input gets one line; --max-iters with TensorBoard events; family mix-ups refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from .conftest import run_cli
from .test_detector import BCCD, CLASSES, voc_split_to_odvg
from .test_train_errors import _one_line_error

IMAGES = BCCD / "JPEGImages"


@pytest.fixture(scope="module")
def od(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("od")
    lm = d / "lm.json"
    lm.write_text(json.dumps({str(i): c for i, c in enumerate(CLASSES)}))
    return voc_split_to_odvg("train", d / "train_od.jsonl"), lm


def _fake_checkpoint(path: Path, model_type: str) -> Path:
    """A checkpoint whose stored config names the model family (what mmengine writes in ``meta.cfg``)."""
    import torch

    torch.save({"state_dict": {"x.weight": torch.zeros(1)}, "meta": {"cfg": f"model = dict(type='{model_type}')\n"}}, path)
    return path


def test_unknown_detector_model(od, tmp_path: Path) -> None:
    train, lm = od
    proc = run_cli("train", "detector", f"{train},images={IMAGES}", "--label-map", str(lm), "--model", "rtmdet-xxl",
                   "--work-dir", str(tmp_path / "w"), check=False)
    _one_line_error(proc, "rtmdet-xxl", "rtmdet-tiny, rtmdet-s, rtmdet-m")
    assert proc.returncode == 2 and not (tmp_path / "w").exists()


def test_vg_only_data_is_refused(tmp_path: Path) -> None:
    vg = tmp_path / "vg.jsonl"
    vg.write_text(json.dumps({"filename": "BloodImage_00000.jpg", "height": 480, "width": 640, "grounding": {
        "caption": "a white cell", "regions": [{"bbox": [260, 177, 491, 376], "phrase": "a white cell",
                                                "tokens_positive": [[0, 12]]}]}}) + "\n")
    proc = run_cli("train", "detector", f"{vg},images={IMAGES}", "--work-dir", str(tmp_path / "w"), check=False)
    _one_line_error(proc, str(vg), "closed-set detector needs OD (detection) data with a label map")
    assert proc.returncode == 2


def test_other_family_checkpoints_are_refused(od, demo, bert_dir, tmp_path: Path) -> None:
    train, lm = od
    gdino = _fake_checkpoint(tmp_path / "gdino.pth", "GroundingDINO")
    rtmdet = _fake_checkpoint(tmp_path / "rtmdet.pth", "RTMDet")
    proc = run_cli("train", "detector", f"{train},images={IMAGES}", "--label-map", str(lm), "--load-from", str(gdino),
                   "--work-dir", str(tmp_path / "w1"), check=False)
    _one_line_error(proc, "gdino.pth", "Grounding DINO checkpoint", "closed-set detector", "train pretrain|finetune")
    proc = run_cli("train", "finetune", str(demo.od_file), "--label-map", str(demo.label_map), "--image-root",
                   str(demo.image_root), "--model", "tiny", "--text-encoder", str(bert_dir), "--work-dir",
                   str(tmp_path / "w2"), "--max-iters", "1", "--num-workers", "0", "--load-from", str(rtmdet), check=False)
    _one_line_error(proc, "rtmdet.pth", "closed-set detector (RTMDet) checkpoint", "Grounding DINO", "train detector")
    proc = run_cli("infer", str(IMAGES / "BloodImage_00000.jpg"), "--checkpoint", str(rtmdet), "--texts", "cell .",
                   "-o", str(tmp_path / "p.jsonl"), check=False)
    _one_line_error(proc, "--texts", "closed-set detector", "no text prompt")
    proc = run_cli("infer", str(IMAGES / "BloodImage_00000.jpg"), "--checkpoint", str(gdino),
                   "-o", str(tmp_path / "p.jsonl"), check=False)
    _one_line_error(proc, "--texts is required", "Grounding DINO")
    assert not (tmp_path / "p.jsonl").exists()


def test_training_image_that_does_not_decode(od, tmp_path: Path) -> None:
    _, lm = od
    images = tmp_path / "images"
    images.mkdir()
    shutil.copy(IMAGES / "BloodImage_00000.jpg", images / "ok.jpg")
    (images / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    data = tmp_path / "od.jsonl"
    box = {"bbox": [260, 177, 491, 376], "label": 1}
    data.write_text("".join(json.dumps({"filename": f, "height": 480, "width": 640, "detection": {"instances": [box]}}) + "\n"
                            for f in ("ok.jpg", "broken.jpg")))
    proc = run_cli("train", "detector", f"{data},images={images}", "--label-map", str(lm), "--epochs", "1",
                   "--batch-size", "2", "--img-size", "64", "--num-workers", "0", "--work-dir", str(tmp_path / "w"),
                   check=False)
    _one_line_error(proc, f"{data}:2: filename:", "broken.jpg", "does not decode")


def test_max_iters_run_writes_tensorboard_events_and_switches_by_iteration(od, tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train, lm = od
    work = tmp_path / "w"
    proc = run_cli("train", "detector", f"{train},images={IMAGES}", "--label-map", str(lm), "--max-iters", "3",
                   "--batch-size", "2", "--img-size", "64", "--num-workers", "0", "--log-interval", "1",
                   "--vis-backend", "tensorboard", "--work-dir", str(work), "--json")
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["iterations"] == 3 and summary["epochs"] is None and summary["stage2_from"] == "iteration 3"
    assert "Switch pipeline now! (stage 2 from iteration 3)" in proc.stderr
    assert Path(summary["checkpoint"]).name == "iter_3.pth"
    events = sorted(work.rglob("events.out.tfevents.*"))
    assert events, list(work.rglob("*"))
    acc = EventAccumulator(str(events[0].parent), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    assert [e.step for e in acc.Scalars("loss")] == [1, 2, 3]
    assert "train_sample" in acc.Tags()["images"]
    image = acc.Images("train_sample")[0]
    assert (image.width, image.height) == (64, 64)


def test_grounding_dino_commands_take_the_tensorboard_backend_too(demo, bert_dir, tmp_path: Path) -> None:
    from mmengine.config import Config

    work = tmp_path / "w"
    run_cli("train", "pretrain", str(demo.od_file), "--label-map", str(demo.label_map), "--image-root", str(demo.image_root),
            "--model", "tiny", "--text-encoder", str(bert_dir), "--work-dir", str(work), "--max-iters", "1",
            "--vis-backend", "tensorboard", "--dry-run")
    cfg = Config.fromfile(str(work / "config.py"))
    assert [b.type for b in cfg.vis_backends] == ["TensorboardVisBackend"] == [b.type for b in cfg.visualizer.vis_backends]
    proc = run_cli("train", "pretrain", str(demo.od_file), "--label-map", str(demo.label_map), "--image-root",
                   str(demo.image_root), "--model", "tiny", "--text-encoder", str(bert_dir), "--work-dir", str(tmp_path / "x"),
                   "--vis-backend", "wandb", "--dry-run", check=False)
    _one_line_error(proc, "--vis-backend 'wandb'", "local or tensorboard")


def test_several_files_share_one_class_list_and_switch_every_dataset(od, tmp_path: Path) -> None:
    from odvgkit.errors import OdvgError
    from odvgkit_train.data import collect
    from odvgkit_train.detector import DetectorOptions, detector_config

    train, lm = od
    val = voc_split_to_odvg("val", tmp_path / "val_od.jsonl")
    sources = collect([f"{train},images={IMAGES}", f"{val},images={IMAGES}"], label_map=lm)
    cfg = detector_config(sources, DetectorOptions(epochs=30, batch_size=8, img_size=320, work_dir=tmp_path / "w"))
    ds = cfg["train_dataloader"]["dataset"]
    assert ds["type"] == "ConcatDataset" and len(ds["datasets"]) == 2
    [hook] = [h for h in cfg["custom_hooks"] if "Switch" in h["type"]]
    # 32 images / 8 = 4 iterations per epoch; stage 2 = round(30 × 20/300) = 2 epochs → switch at epoch index 28
    assert (hook["type"], hook["switch_epoch"], hook["switch_iter"]) == ("StagedPipelineSwitchHook", 28, None)
    assert cfg["train_cfg"] == {"type": "EpochBasedTrainLoop", "max_epochs": 30, "val_interval": 31}
    assert cfg["param_scheduler"][0]["end"] == 12  # 120 iterations // 10
    mosaic = [s for s in ds["datasets"][0]["pipeline"] if s["type"] == "CachedMosaic"]
    assert mosaic[0]["img_scale"] == (320, 320)
    other = tmp_path / "lm2.json"
    other.write_text(json.dumps({"0": "RBC", "1": "Platelets", "2": "WBC"}))
    mixed = collect([f"{train},images={IMAGES}", f"{val},images={IMAGES},label_map={other}"], label_map=lm)
    with pytest.raises(OdvgError, match="classes differ"):
        detector_config(mixed, DetectorOptions(epochs=2, work_dir=tmp_path / "w"))
    gaps = tmp_path / "gaps.json"
    gaps.write_text(json.dumps({"0": "RBC", "1": "WBC", "5": "Platelets"}))
    with pytest.raises(OdvgError, match="label ids 0 … 2 without gaps"):
        detector_config(collect([f"{train},images={IMAGES}"], label_map=gaps), DetectorOptions(epochs=2, work_dir=tmp_path / "w"))


def test_show_dir_for_grounding_dino_pairs_phrases(trained, demo, tmp_path: Path) -> None:
    from PIL import Image

    show = tmp_path / "show"
    proc = run_cli("eval", f"{demo.vg_file},images={demo.image_root}", "--checkpoint", str(trained.checkpoint),
                   "--metric", "refexp", "--show-dir", str(show), "--json")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    gts = [json.loads(line) for line in demo.vg_file.read_text().splitlines()]
    shown = sorted(show.rglob("*.png"))
    assert result["shown"] == len(gts) == len(shown)
    assert sorted(p.relative_to(show).with_suffix("").as_posix() for p in shown) == sorted(
        Path(g["filename"]).with_suffix("").as_posix() for g in gts)
    for g in gts:
        with Image.open(show / Path(g["filename"]).with_suffix(".png")) as im, Image.open(demo.image_root / g["filename"]) as orig:
            assert im.size == (2 * orig.width, orig.height)
            assert im.crop((0, 0, orig.width, orig.height)).tobytes() != orig.convert("RGB").tobytes()  # phrases' boxes drawn


def test_show_dir_pairs_without_a_model(tmp_path: Path) -> None:
    from PIL import Image

    from odvgkit.errors import OdvgError
    from odvgkit_train.showdir import write_pairs

    root = tmp_path / "imgs"
    (root / "sub").mkdir(parents=True)
    Image.new("RGB", (40, 30), (255, 255, 255)).save(root / "sub" / "a.jpg")
    gt = {"filename": "sub/a.jpg", "height": 30, "width": 40, "detection": {"instances": [{"bbox": [2, 2, 20, 20], "label": 0}]}}
    pred = {"filename": "sub/a.jpg", "detection": {"instances": [
        {"bbox": [5, 5, 30, 25], "label": 0, "category": "cell", "score": 0.9},
        {"bbox": [1, 1, 39, 29], "label": 0, "category": "cell", "score": 0.1}]}}  # under 0.3: not drawn
    out = tmp_path / "show"
    assert write_pairs([gt], [pred], root, out, {"0": "cell"}) == 1
    with Image.open(out / "sub" / "a.png") as im:
        assert im.size == (80, 30)
        px = im.load()
        assert px[2, 10] != (255, 255, 255) and px[40 + 2, 10] == (255, 255, 255)  # GT box left only
        assert px[40 + 5, 15] != (255, 255, 255) and px[40 + 1, 15] == (255, 255, 255)  # 0.9 drawn, 0.1 not
    absolute = dict(gt, filename=str(root / "sub" / "a.jpg"))
    assert write_pairs([absolute], [pred], root, tmp_path / "abs") == 1 and (tmp_path / "abs" / "a.png").is_file()
    with pytest.raises(OdvgError, match="leaves --show-dir"):
        write_pairs([dict(gt, filename="../sub/a.jpg")], [pred], root / "sub", tmp_path / "esc")
