"""Helpers for the curation tests: generated ODVG/COCO/refexp inputs and real images."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image


def _write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


def _write_json(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _picture(path: Path, seed: int, size: tuple[int, int] = (320, 240), quality: int = 90) -> Path:
    """A textured image (smooth random blobs) whose perceptual hash is distinctive per seed."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)
    im = Image.fromarray(small).resize(size, Image.BICUBIC)
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, quality=quality) if path.suffix.lower() in (".jpg", ".jpeg") else im.save(path)
    return path


def od_record(name: str, labels: list[int], w: int = 100, h: int = 80) -> dict[str, Any]:
    return {
        "filename": name, "height": h, "width": w,
        "detection": {"instances": [
            {"bbox": [1.0 + i, 2.0, 11.0 + i, 22.0], "label": lab, "category": f"c{lab}"} for i, lab in enumerate(labels)
        ]},
    }


@pytest.fixture
def write_jsonl():
    return _write_jsonl


@pytest.fixture
def read_jsonl():
    return _read_jsonl


@pytest.fixture
def write_json():
    return _write_json


@pytest.fixture
def picture():
    return _picture


@pytest.fixture
def od():
    return od_record


@pytest.fixture(scope="session")
def coco_train(tiny_coco_dir: Path) -> Path:
    return tiny_coco_dir / "annotations" / "instances_train2017.json"


@pytest.fixture(scope="session")
def coco_train_doc(coco_train: Path) -> dict[str, Any]:
    return json.loads(coco_train.read_text())


def mdetr_file(path: Path, coco_ids: list[int], per_image: int = 2) -> Path:
    """An MDETR refexp file: one 'image' per expression (so ids repeat), COCO-2014 names."""
    images = []
    for cid in coco_ids:
        for _ in range(per_image):
            images.append({"file_name": f"COCO_train2014_{cid:012d}.jpg", "id": len(images), "original_id": cid,
                           "caption": "the thing", "height": 10, "width": 10, "dataset_name": "refcoco",
                           "tokens_negative": []})
    return _write_json(path, {"images": images, "annotations": [], "categories": [{"id": 1, "name": "object"}]})


@pytest.fixture
def mdetr():
    return mdetr_file
