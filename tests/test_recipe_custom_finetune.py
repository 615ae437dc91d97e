"""docs/recipes/custom-finetune.md, run end to end on the real BCCD Pascal VOC fixture.

Every step of the recipe is one real ``odvgkit`` command in a subprocess, in the recipe's order:
convert → validate → browse render → zero-shot eval → finetune → eval → infer → one pseudo-label
round. The model is the ``tiny`` preset with a tiny random BERT and a 2-iteration "pretrained"
checkpoint made here (the recipe uses the official MM-Grounding-DINO-T checkpoint and
``bert-base-uncased``); the test checks the outputs of every step, not accuracy.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SHARED_FIXTURES, read_jsonl

BCCD = SHARED_FIXTURES / "bccd_voc"
CLASSES = "Platelets,RBC,WBC"

pytestmark = pytest.mark.slow


def odvgkit(*args: str | Path) -> dict:
    """One recipe step: the real CLI, single-threaded; returns its --json summary."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "NO_ALBUMENTATIONS_UPDATE": "1", "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-m", "odvgkit", *map(str, args), "--json"], capture_output=True,
                          text=True, env=env, timeout=600)
    assert proc.returncode == 0, f"odvgkit {' '.join(map(str, args))}:\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def zero_shot(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Stand-ins for the official checkpoint and BERT: a tiny BERT and a 2-iteration tiny model."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from odvgkit_train import api
    from odvgkit_train.demo import make_demo_dataset
    from odvgkit_train.text_encoder import make_tiny_bert

    root = tmp_path_factory.mktemp("zero_shot")
    bert = make_tiny_bert(root / "bert")
    demo = make_demo_dataset(root / "demo", n_images=2, size=64, seed=0)
    cfg = api.build_config([str(demo.od_file)], image_root=demo.image_root, label_map=demo.label_map, model="tiny",
                           text_encoder=str(bert), work_dir=root / "pretrain", max_iters=2, batch_size=2, log_interval=1)
    result = api.train(cfg)
    return result.checkpoint, bert


def test_custom_finetune_recipe_on_bccd(tmp_path: Path, zero_shot: tuple[Path, Path]) -> None:
    checkpoint, bert = zero_shot
    w = tmp_path

    # 1. convert: one command per split, the same class order for both
    for split in ("train", "val"):
        s = odvgkit("convert", "voc2odvg", BCCD, "--split", split, "--classes", CLASSES, "-o", w / f"bccd/{split}_od.json")
        assert s["records_written"] == {"train": 24, "val": 8}[split] and s["dropped:degenerate"] == 1
    lm = w / "bccd/train_od_label_map.json"
    assert json.loads(lm.read_text()) == {"0": "Platelets", "1": "RBC", "2": "WBC"}
    assert (w / "bccd/val_od_label_map.json").read_text() == lm.read_text()

    # 2. validate against the images
    s = odvgkit("validate", w / "bccd/train_od.json", "-m", lm, "--images-root", BCCD)
    assert s["errors"] == 0 and s["images_checked"] == 24

    # 3. look at a few
    s = odvgkit("browse", "render", w / "bccd/train_od.json", "-i", BCCD, "-m", lm, "-o", w / "vis", "-n", "3")
    assert len(list((w / "vis").iterdir())) == 3

    # 4. zero-shot baseline
    val = f"{w / 'bccd/val_od.json'},images={BCCD}"
    model = ["--text-encoder", bert]
    zs = odvgkit("eval", val, "--label-map", lm, "--checkpoint", checkpoint, "--metric", "coco", *model,
                 "-o", w / "zero_shot_preds.jsonl")
    assert zs["images"] == 8 and 0.0 <= zs["mAP"] <= 1.0

    # 5. finetune (closed set on the three classes)
    ft = odvgkit("train", "finetune", f"{w / 'bccd/train_od.json'},images={BCCD}", "--label-map", lm,
                 "--load-from", checkpoint, "--model", "tiny", *model, "--work-dir", w / "ft",
                 "--max-iters", "2", "--batch-size", "2", "--num-workers", "0", "--log-interval", "1")
    tuned = Path(ft["checkpoint"])
    assert tuned.is_file() and (w / "ft/config.py").is_file()

    # 6. evaluate the finetuned model the same way
    after = odvgkit("eval", val, "--label-map", lm, "--checkpoint", tuned, "--metric", "coco", *model)
    assert after["images"] == 8 and 0.0 <= after["mAP"] <= 1.0

    # 7. infer on new images
    new = w / "new_images"
    new.mkdir()
    for stem in (BCCD / "ImageSets/Main/test.txt").read_text().split()[:3]:
        shutil.copy(BCCD / "JPEGImages" / f"{stem}.jpg", new)
    s = odvgkit("infer", new, "--checkpoint", tuned, "--texts", "Platelets . RBC . WBC", *model,
                "--score-thr", "0", "-o", w / "preds.jsonl")
    preds = read_jsonl(w / "preds.jsonl")
    assert sorted(p["filename"] for p in preds) == sorted(p.name for p in new.iterdir())
    assert all({i["category"] for i in p["detection"]["instances"]} <= {"Platelets", "RBC", "WBC"} for p in preds)

    # 8. one pseudo-label round on the new images
    s = odvgkit("pseudolabel", "loop", "--rounds", "1", "--images", new, "--label-map", lm, "--checkpoint", tuned,
                "--work-dir", w / "pl", "--score-thr", "0.05", "--max-iters", "2", "--batch-size", "2")
    assert s["rounds_done"] == [0, 1]
    assert (w / "pl/round_1/checkpoint.pth").is_file()
    labels = read_jsonl(w / "pl/round_1/labels.jsonl")
    assert sorted(r["filename"] for r in labels) == sorted(p.name for p in new.iterdir())
