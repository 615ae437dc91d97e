"""``browse pipeline``: the images are the training dataloader's tensors, boxes and prompts are right."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from odvgkit.browse.draw import font, sizes_for

from .conftest import run_cli

N = 6


@pytest.fixture(scope="module")
def previewed(gdino_workdir: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("pipeline") / "viz"
    proc = run_cli("browse", "pipeline", gdino_workdir, "-n", str(N), "-o", out, "--json")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    return json.loads(proc.stdout), out, rows


def _source_records(work: Path) -> dict[tuple[str, str], dict]:
    """(mode, file name) → the ODVG record the sample came from, read straight from the demo files."""
    demo = work.parent / "demo"
    out = {}
    for mode, name in (("OD", "demo_od.jsonl"), ("VG", "demo_vg.jsonl")):
        for line in (demo / name).read_text().splitlines():
            rec = json.loads(line)
            out[(mode, rec["filename"])] = rec
    return out


def test_summary_and_files(previewed) -> None:
    summary, out, rows = previewed
    assert summary["images written"] == N and summary["images with a text prompt"] == N
    assert summary["boxes past the image border"] == 0
    assert summary["boxes drawn"] == sum(len(r["boxes"]) for r in rows) > 0
    assert sorted(p.name for p in out.iterdir()) == [f"{i:04d}.png" for i in range(N)] + ["samples.jsonl"]


def test_boxes_and_prompts_match_the_source_records(previewed, gdino_workdir) -> None:
    _, _, rows = previewed
    sources = _source_records(gdino_workdir)
    label_map = json.loads((gdino_workdir.parent / "demo" / "demo_label_map.json").read_text())
    for row in rows:
        rec = sources[(row["dataset_mode"], Path(row["img_path"]).name)]
        h, w = row["input_shape"]
        assert max(h, w) <= 128 and (max(h, w) == 128 or min(h, w) in (96, 112, 128))  # the tiny preset's scales
        sx, sy = row["scale_factor"]
        if row["dataset_mode"] == "OD":
            src = [(i["bbox"], i["category"]) for i in rec["detection"]["instances"]]
        else:
            src = [(r["bbox"], r["phrase"]) for r in rec["grounding"]["regions"]]
        expected = []
        for (x1, y1, x2, y2), name in src:
            x1, x2 = x1 * sx, x2 * sx
            if row["flip"]:
                x1, x2 = w - x2, w - x1
            expected.append(([x1, y1 * sy, x2, y2 * sy], name))
        got = [(b["bbox"], b["name"]) for b in row["boxes"]]
        assert len(got) == len(expected)
        for (box, name), (ebox, ename) in zip(sorted(got), sorted(expected), strict=True):
            assert box == pytest.approx(ebox, abs=0.02)
            assert name == ename  # the prompt span of each box names its class / phrase
            assert 0 <= box[0] < box[2] <= w and 0 <= box[1] < box[3] <= h
        for b in row["boxes"]:
            assert b["tokens_positive"] and all(row["text"][s:e] == b["name"] for s, e in b["tokens_positive"])
        if row["dataset_mode"] == "OD":  # every name in the OD prompt is a label-map class
            names = [t.strip() for t in row["text"].split(".") if t.strip()]
            assert set(names) <= set(label_map.values())
        else:
            assert row["text"] == rec["grounding"]["caption"]


def test_images_equal_the_dataloader_tensors(previewed, gdino_workdir) -> None:
    """Rebuild the training dataloader as mmengine's Runner does and compare pixels."""
    from mmdet.utils import register_all_modules
    from mmengine.config import Config
    from mmengine.runner import Runner, set_random_seed

    from odvgkit_train.api import prepare

    _, out, rows = previewed
    prepare()
    register_all_modules(init_default_scope=True)
    cfg = Config.fromfile(str(gdino_workdir / "config.py"))
    seed = cfg.randomness.seed
    set_random_seed(seed)
    tensors = []
    for batch in Runner.build_dataloader(cfg.train_dataloader, seed=seed):
        tensors += list(zip(batch["inputs"], batch["data_samples"], strict=True))
        if len(tensors) >= N:
            break
    for row, (inputs, ds) in zip(rows, tensors, strict=False):
        rgb = inputs.permute(1, 2, 0).numpy()[..., ::-1]  # mmcv loads BGR
        h, w = rgb.shape[:2]
        assert row["input_shape"] == [h, w] and list(ds.metainfo["img_shape"]) == [h, w]
        assert row["img_path"] == ds.metainfo["img_path"]
        with Image.open(out / row["file"]) as im:
            drawn = np.asarray(im.convert("RGB"))
        assert drawn.shape[1] == w and drawn.shape[0] > h  # the prompt strip is under the image
        top = drawn[:h]
        untouched = np.ones((h, w), bool)  # pixels away from box outlines and their label tabs
        size, _ = sizes_for(w, h)
        for (x1, y1, x2, y2), b in zip(ds.gt_instances.bboxes.tolist(), row["boxes"], strict=True):
            tab = font(size).getbbox(b["name"])[2] + 8
            untouched[max(0, int(y1) - size - 8):int(max(y2, y1 + size + 8)) + 4,
                      max(0, int(x1) - 4):int(max(x2, x1 + tab)) + 4] = False
        assert untouched.mean() > 0.15
        bad = np.argwhere(untouched & (top != rgb).any(axis=2))
        assert np.array_equal(top[untouched], rgb[untouched]), (row["file"], len(bad), bad[:5].tolist(), ds.gt_instances.bboxes.tolist())
        assert not np.array_equal(top, rgb)  # and the boxes were drawn


def test_closed_set_detector_pipeline(gdino_workdir, tmp_path) -> None:
    """The config ``odvgkit train detector`` writes (RTMDet: mosaic, HSV, flip, pad, mixup) on ODVG OD data."""
    demo = gdino_workdir.parent / "demo"
    names = list(json.loads((demo / "demo_label_map.json").read_text()).values())
    size = 96
    work = tmp_path / "work"
    proc = run_cli("train", "detector", f"{demo / 'demo_od.jsonl'},images={demo / 'images'}", "--label-map",
                   demo / "demo_label_map.json", "--model", "rtmdet-tiny", "--img-size", size, "--max-iters", 4,
                   "--batch-size", 2, "--num-workers", 0, "--work-dir", work, "--dry-run", "-q")
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("browse", "pipeline", work, "-n", 4, "-o", tmp_path / "viz", "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    rows = [json.loads(line) for line in (tmp_path / "viz" / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 4 == summary["images written"] and summary["images with a text prompt"] == 0
    assert summary["boxes drawn"] == sum(len(r["boxes"]) for r in rows) > 0
    for row in rows:
        assert row["input_shape"] == [size, size] and row["text"] is None
        for b in row["boxes"]:
            assert b["name"] == names[b["label"]] and b["tokens_positive"] == []  # metainfo = the label map
            x1, y1, x2, y2 = b["bbox"]
            assert 0 <= x1 < x2 <= size and 0 <= y1 < y2 <= size  # RandomCrop clips to the crop
        with Image.open(tmp_path / "viz" / row["file"]) as im:
            assert im.size[0] == size and im.size[1] > size
