"""Session fixtures for the explain tests: a tiny RTMDet overfitted in-process, a tiny Grounding DINO,
and a work dir written by odvgkit's own config builder. Torch runs single-threaded (2 shared cores)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import odvgkit_train  # noqa: F401  (first: registers the mmcv._ext stand-in before anything imports mmcv.ops)

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SIZE = 96
# two images, one bright square each; the first is the one whose map the tests measure
BOXES = [(52, 14, 81, 43), (9, 48, 38, 76)]


def run_cli(*args: object, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    """The real ``odvgkit`` entry point in a subprocess, single-threaded, as a user runs it."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "odvgkit", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout)


@pytest.fixture(scope="session", autouse=True)
def _single_thread() -> None:
    import torch

    torch.set_num_threads(1)


@dataclass
class RTMDetRun:
    checkpoint: Path
    images: list[Path]
    boxes: list[tuple[int, int, int, int]]


@pytest.fixture(scope="session")
def rtmdet(tmp_path_factory: pytest.TempPathFactory) -> RTMDetRun:
    """mmdet's RTMDet-tiny (1 class, 96 px) overfitted for 120 iterations on two synthetic images."""
    from explain.helpers import blob_image, rtmdet_config, train_rtmdet

    d = tmp_path_factory.mktemp("rtmdet")
    images = [blob_image(d / f"img{i}.png", box, size=SIZE, seed=i) for i, box in enumerate(BOXES)]
    cfg = rtmdet_config(size=SIZE, classes=["blob"])
    ckpt = train_rtmdet(cfg, list(zip(images, BOXES, strict=True)), d / "rtmdet_tiny.pth", iters=120)
    return RTMDetRun(ckpt, images, BOXES)


@pytest.fixture(scope="session")
def gdino_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from explain.helpers import gdino_checkpoint

    return gdino_checkpoint(tmp_path_factory.mktemp("gdino"))


@pytest.fixture(scope="session")
def gdino_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A work dir with the config ``odvgkit train pretrain --model tiny`` writes (OD + VG demo data)."""
    from odvgkit_train import api
    from odvgkit_train.demo import make_demo_dataset
    from odvgkit_train.text_encoder import make_tiny_bert

    d = tmp_path_factory.mktemp("gdino_work")
    demo = make_demo_dataset(d / "demo", n_images=6, size=96, seed=0)
    bert = make_tiny_bert(d / "bert")
    api.build_config([str(demo.od_file), str(demo.vg_file)], label_map=demo.label_map, image_root=demo.image_root,
                     model="tiny", text_encoder=str(bert), work_dir=d / "work", max_iters=5)
    return d / "work"
