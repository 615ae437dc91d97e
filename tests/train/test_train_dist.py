"""Data-parallel training with 2 CPU processes on gloo over 127.0.0.1 (torchrun spawned by the CLI)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from .conftest import run_cli


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_ranks_train_and_agree_on_weights(demo, bert_dir, tmp_path: Path) -> None:
    work = tmp_path / "dist"
    proc = run_cli(
        "train", "pretrain", str(demo.od_file), str(demo.vg_file), "--label-map", str(demo.label_map),
        "--image-root", str(demo.image_root), "--model", "tiny", "--text-encoder", str(bert_dir),
        "--work-dir", str(work), "--max-iters", "2", "--batch-size", "1", "--num-workers", "0", "--log-interval", "1",
        "--nproc", "2", "--master-addr", "127.0.0.1", "--master-port", str(_free_port()), "--check-sync", "--json",
        env={"MASTER_ADDR": "127.0.0.1"},
    )
    summary = json.loads(proc.stdout.strip())  # nothing but the summary on stdout
    assert summary["world_size"] == 2
    # lr scales with the world size: tiny's 1e-3 at 16 images × (1 image × 2 ranks)
    assert abs(summary["lr"] - 1e-3 * 2 / 16) < 1e-12
    assert "Distributed launcher: pytorch" in proc.stderr and "Distributed training: True" in proc.stderr
    rows = [(work / f"weights_rank{r}.txt").read_text().split() for r in (0, 1)]
    for iters, before, after in rows:
        assert iters == "2"
        assert before != after  # this rank's weights moved: it trained
    assert rows[0][2] == rows[1][2]  # and both ranks hold the same weights after the steps
    assert Path(summary["checkpoint"]).is_file()
