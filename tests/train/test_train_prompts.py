"""Sampled OD prompts (pretrain / open-set finetune / pseudolabel loop) never name a class twice.

mmdet's ``RandomSamplingNegPos`` compares the label map's string keys with integer labels, so a
positive class is also drawn as a negative and appears twice in the prompt, only the first mention
marked. The real mmdet pipeline is built from a config ``odvgkit train`` generates, over the real
tiny_coco subset converted to ODVG, and every sample is checked; with ``--upstream-negatives`` the
duplicates must appear (so this test can fail).
"""

from __future__ import annotations

import json
import random
import re
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from .conftest import run_cli

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures"


def _clean(name: str) -> str:  # how mmdet spells a class in a prompt (independent of the code under test)
    return re.sub(r"  ", " ", re.sub(r"_", " ", re.sub(r"\(.*\)", "", name))).lower()


@pytest.fixture(scope="module")
def coco_od(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    tmp = tmp_path_factory.mktemp("coco")
    src = tmp / "instances_train2017.json"
    shutil.copy(SHARED / "tiny_coco" / "annotations" / "instances_train2017.json", src)
    run_cli("convert", "coco2odvg", str(src), "-o", str(tmp / "train_od.jsonl"), "-q")
    return tmp / "train_od.jsonl", tmp / "coco2017_label_map.json", SHARED / "tiny_coco" / "images" / "train2017"


def _prompts(tmp: Path, coco_od: tuple[Path, Path, Path], bert_dir: Path, *extra: str) -> list[tuple[str, dict, list[int], list[str]]]:
    """Every sample of 3 passes over the data through the generated config's real training pipeline."""
    from mmdet.registry import DATASETS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import odvgkit_train.mmdet_plugin  # noqa: F401

    od, lm, images = coco_od
    work = tmp / "work"
    run_cli("train", "pretrain", f"{od},images={images}", "--label-map", str(lm), "--model", "tiny",
            "--text-encoder", str(bert_dir), "--work-dir", str(work), "--max-iters", "2", "--dry-run", "-q", *extra)
    cfg = Config.fromfile(str(work / "config.py"))
    init_default_scope("mmdet")
    [ds_cfg] = cfg.train_dataloader.dataset.datasets
    ds = DATASETS.build(ds_cfg)
    names = json.loads(lm.read_text())
    records = [json.loads(line) for line in od.read_text().splitlines()]
    random.seed(0)
    np.random.seed(0)
    out = []
    for _ in range(3):
        for i in range(len(ds)):
            sample = ds[i]["data_samples"]
            rec = records[i]
            true = [names[str(inst["label"])] for inst in rec["detection"]["instances"]]
            out.append((sample.text, sample.tokens_positive, sample.gt_instances.labels.tolist(), true))
    return out


def test_sampled_prompts_name_each_class_once_and_mark_every_positive(tmp_path: Path, coco_od, bert_dir: Path) -> None:
    samples = _prompts(tmp_path, coco_od, bert_dir)
    assert len(samples) == 96
    n_boxes = 0
    for caption, spans, labels, true in samples:
        assert caption.endswith(". ")
        named = caption[:-2].split(". ")
        assert len(named) == len(set(named)), f"a class is named twice: {caption!r}"
        # every positive is marked, at the one place its name is
        marked = {caption[s:e] for label in set(labels) for s, e in spans[label]}
        kept = {_clean(n) for n in true}  # a box can only be dropped by the 1e-2 px filter, not here
        assert marked == kept, (caption, kept)
        for label in labels:
            [(s, e)] = spans[label]
            assert caption[s:e] in kept and named.count(caption[s:e]) == 1
        n_boxes += len(labels)
    assert n_boxes > 0


def test_upstream_negatives_reproduce_mmdet_duplicates(tmp_path: Path, coco_od, bert_dir: Path) -> None:
    samples = _prompts(tmp_path, coco_od, bert_dir, "--upstream-negatives")
    config = (tmp_path / "work" / "config.py").read_text()
    assert "RandomSamplingNegPos" in config and "NegPosPrompt" not in config
    dupes = 0
    for caption, spans, labels, _ in samples:
        counts = Counter(caption[:-2].split(". "))
        if any(n > 1 for n in counts.values()):
            dupes += 1
            # the duplicated names are positive classes, and only one mention of each is marked
            marked = {caption[s:e] for label in set(labels) for s, e in spans[label]}
            assert {n for n, c in counts.items() if c > 1} <= marked
    assert dupes > len(samples) // 4, dupes  # about half the samples draw every class (full_sampling_prob 0.5)
