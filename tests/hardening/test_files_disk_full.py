"""A full disk is one line naming the output being written, and leaves nothing behind.

Two real ways to make the kernel refuse a write, both through odvgkit's real write path:
a tiny tmpfs (``ENOSPC``; needs root to mount, which CI and this machine have) and, where mounting
is not allowed, a file-size limit on the process (``RLIMIT_FSIZE`` → ``EFBIG``, same handling).
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest


def _mount_tmpfs(where: Path, size: str) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return False
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True)
    return r.returncode == 0


def _limit_file_size() -> None:  # runs in the child before exec
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failing write, not a killed process
    resource.setrlimit(resource.RLIMIT_FSIZE, (2048, 2048))


@pytest.fixture(params=["tmpfs", "rlimit"])
def small_disk(request, tmp_path: Path):
    """``(folder, run, message)``: a folder where writes over a few KB fail, and how to run there."""
    folder = tmp_path / "small"
    mounted = request.param == "tmpfs" and _mount_tmpfs(folder, "8k")
    folder.mkdir(exist_ok=True)

    def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "odvgkit", *map(str, args)], capture_output=True, text=True, timeout=120,
            preexec_fn=None if mounted else _limit_file_size,
        )

    yield folder, run, os.strerror(28 if mounted else 27)  # ENOSPC / EFBIG
    if mounted:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.parametrize("output", ["train_od.jsonl", "train_od.jsonl.gz", "train_od.parquet"])
def test_convert_on_a_full_disk_names_the_records_file(small_disk, tiny_coco: Path, output: str):
    folder, run, message = small_disk
    src = tiny_coco / "instances_train2017.json"
    before = src.read_bytes()
    r = run("convert", "coco2odvg", src, "-o", folder / output, "--label-map", folder / "lm.json")
    assert r.returncode == 1
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert lines == [f"odvgkit: error: {folder / output}: cannot write: {message}"], r.stderr
    assert list(folder.iterdir()) == []  # neither output nor any temporary
    assert src.read_bytes() == before


def test_export_on_a_full_disk_names_its_file(small_disk, tmp_path: Path):
    folder, run, message = small_disk
    src = tmp_path / "big.jsonl"
    src.write_text("".join(
        json.dumps({"filename": f"{i:06d}.jpg", "height": 100, "width": 100,
                    "detection": {"instances": [{"bbox": [1, 2, 30, 40], "label": 0, "category": "cat"}]}}) + "\n"
        for i in range(400)))
    r = run("export", "coco", src, "-o", folder / "coco.json")
    assert r.returncode == 1
    assert [x for x in r.stderr.splitlines() if x.strip()] == [f"odvgkit: error: {folder / 'coco.json'}: cannot write: {message}"]
    assert list(folder.iterdir()) == []
