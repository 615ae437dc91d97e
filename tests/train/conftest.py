"""Shared fixtures for the trainer tests: a tiny random BERT, a generated OD+VG dataset, one real run.

Everything is generated in a session temp dir; torch runs single-threaded (2 shared cores).
"""

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
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")


def run_cli(*args: str, check: bool = True, env: dict[str, str] | None = None, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    """Run the real ``odvgkit`` CLI in a subprocess (as a user would)."""
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "odvgkit", *args], capture_output=True, text=True, env=full_env, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"odvgkit {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc


@pytest.fixture(scope="session", autouse=True)
def _single_thread() -> None:
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from odvgkit_train.text_encoder import make_tiny_bert

    return make_tiny_bert(tmp_path_factory.mktemp("bert"))


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory):
    from odvgkit_train.demo import make_demo_dataset

    return make_demo_dataset(tmp_path_factory.mktemp("demo"), n_images=16, size=96, seed=0)


@dataclass
class Trained:
    work_dir: Path
    checkpoint: Path
    summary: dict
    stderr: str


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, bert_dir: Path, demo) -> Trained:
    """One real 30-iteration CLI pretraining run of the tiny model on OD + VG data."""
    import json

    work = tmp_path_factory.mktemp("run") / "work"
    proc = run_cli(
        "train", "pretrain", str(demo.od_file), str(demo.vg_file),
        "--label-map", str(demo.label_map), "--image-root", str(demo.image_root),
        "--model", "tiny", "--text-encoder", str(bert_dir), "--work-dir", str(work),
        "--max-iters", "30", "--batch-size", "2", "--num-workers", "0", "--log-interval", "1", "--json",
    )
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    return Trained(work, Path(summary["checkpoint"]), summary, proc.stderr)
