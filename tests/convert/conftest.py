"""Helpers for the converter tests: writers for generated inputs and readers for outputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image


def _dump(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # indent so that elements span several lines, as in real files
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


def _jpeg(path: Path, size: tuple[int, int], orientation: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.new("RGB", size, (120, 30, 200))
    if orientation is None:
        im.save(path, "JPEG")
    else:
        exif = Image.Exif()
        exif[0x0112] = orientation
        im.save(path, "JPEG", exif=exif)
    return path


@pytest.fixture
def dump():
    return _dump


@pytest.fixture
def read_jsonl():
    return _read_jsonl


@pytest.fixture
def jpeg():
    return _jpeg
