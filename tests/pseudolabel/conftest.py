"""Fixtures for the pseudo-label tests: tiny random BERT, generated images, a tiny initial checkpoint.

Same approach as tests/train (copied, not imported): everything is generated in session temp dirs
and torch runs single-threaded (2 shared cores).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

CLASSES = ["red box", "blue box", "green box"]


def run_cli(*args: str, check: bool = True, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    """Run the real ``odvgkit`` CLI in a subprocess, as a user would."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "odvgkit", *args], capture_output=True, text=True, env=env, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"odvgkit {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc


@dataclass
class Seed:
    images: Path
    od_file: Path
    vg_file: Path
    label_map: Path
    bert: Path
    checkpoint: Path


@pytest.fixture(scope="session")
def seed(tmp_path_factory: pytest.TempPathFactory) -> Seed:
    """4 generated 64-px images with ground truth, a tiny BERT and a 2-iteration tiny checkpoint."""
    import torch

    torch.set_num_threads(1)
    from odvgkit_train import api
    from odvgkit_train.demo import make_demo_dataset
    from odvgkit_train.text_encoder import make_tiny_bert

    root = tmp_path_factory.mktemp("seed")
    bert = make_tiny_bert(root / "bert")
    demo = make_demo_dataset(root / "demo", n_images=4, size=64, seed=0)
    cfg = api.build_config([str(demo.od_file), str(demo.vg_file)], image_root=demo.image_root, label_map=demo.label_map,
                           model="tiny", text_encoder=str(bert), work_dir=root / "pretrain", max_iters=2, batch_size=2,
                           log_interval=1)
    cfg["experiment_name"] = "seed"
    result = api.train(cfg)
    assert result.checkpoint is not None
    return Seed(demo.image_root, demo.od_file, demo.vg_file, demo.label_map, bert, result.checkpoint)
