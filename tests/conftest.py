"""Fixtures shared by every test area: the real COCO subset, a CLI runner, data writers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_FIXTURES = REPO.parent / "shared" / "fixtures"
TINY_COCO = SHARED_FIXTURES / "tiny_coco"


@pytest.fixture(scope="session")
def tiny_coco_dir() -> Path:
    """The real COCO 2017 subset (read-only: copy before writing next to it)."""
    if not (TINY_COCO / "annotations" / "instances_train2017.json").is_file():
        pytest.fail(f"shared fixture missing: {TINY_COCO} (the repo's sibling shared/ folder)")
    return TINY_COCO


@pytest.fixture
def tiny_coco(tmp_path: Path, tiny_coco_dir: Path) -> Path:
    """A writable copy of tiny_coco's annotations (images stay in the shared folder)."""
    dst = tmp_path / "tiny_coco" / "annotations"
    dst.mkdir(parents=True)
    for f in (tiny_coco_dir / "annotations").glob("*.json"):
        shutil.copy(f, dst / f.name)
    return dst


def run_cli(*args: str | Path, cwd: Path | None = None, timeout: float = 300, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real console entry point in a subprocess (exit codes and stderr as a user sees them)."""
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "odvgkit", *map(str, args)],
        cwd=cwd, capture_output=True, text=True, timeout=timeout, env=full_env,
    )


@pytest.fixture
def cli():
    return run_cli


def write_json(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
