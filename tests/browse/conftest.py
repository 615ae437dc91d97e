"""Fixtures for the browse tests: ODVG records made from the real tiny COCO subset, and a private
MongoDB for FiftyOne (its own directory under pytest's tmp, so no user dataset is ever touched)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

TINY_COCO = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "tiny_coco"
VAL_IMAGES = TINY_COCO / "images" / "val2017"


def coco_val() -> dict[str, Any]:
    return json.loads((TINY_COCO / "annotations" / "instances_val2017.json").read_text())


def coco_od_records() -> tuple[list[dict[str, Any]], dict[str, str]]:
    """tiny_coco val2017 as ODVG OD records (non-crowd boxes, xywh → xyxy, 0-based labels)."""
    coco = coco_val()
    cat_ids = sorted(c["id"] for c in coco["categories"])
    names = {c["id"]: c["name"] for c in coco["categories"]}
    label = {cid: i for i, cid in enumerate(cat_ids)}
    records = []
    for im in sorted(coco["images"], key=lambda i: i["id"]):
        instances = []
        for a in coco["annotations"]:
            if a["image_id"] != im["id"] or a["iscrowd"]:
                continue
            x, y, w, h = a["bbox"]
            instances.append({"bbox": [x, y, x + w, y + h], "label": label[a["category_id"]], "category": names[a["category_id"]]})
        records.append({"filename": im["file_name"], "height": im["height"], "width": im["width"],
                        "detection": {"instances": instances}})
    return records, {str(i): names[cid] for i, cid in enumerate(cat_ids)}


def vg_from_od(record: dict[str, Any]) -> dict[str, Any]:
    """A VG record: one phrase per category of the OD record, boxes grouped, spans exact."""
    groups: dict[str, list[list[float]]] = {}
    for inst in record["detection"]["instances"]:
        groups.setdefault(inst["category"], []).append(inst["bbox"])
    caption = "A photo of "
    regions = []
    for k, (name, boxes) in enumerate(groups.items()):
        if k:
            caption += ", "
        phrase = f"the {name}"
        start = len(caption)
        caption += phrase
        regions.append({"bbox": boxes if len(boxes) > 1 else boxes[0], "phrase": phrase,
                        "tokens_positive": [[start, len(caption)]]})
    return {"filename": record["filename"], "height": record["height"], "width": record["width"],
            "grounding": {"caption": caption + ".", "regions": regions}}


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="session")
def fiftyone_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A mongod of our own for the whole session, on a tmp directory; stopped at the end."""
    from odvgkit.browse.app import database

    db_dir = tmp_path_factory.mktemp("fiftyone-db")
    saved = {k: os.environ.get(k) for k in ("FIFTYONE_DATABASE_DIR", "FIFTYONE_DATABASE_URI")}
    os.environ["FIFTYONE_DATABASE_DIR"] = str(db_dir)  # FiftyOne never falls back to ~/.fiftyone
    os.environ.pop("FIFTYONE_DATABASE_URI", None)
    try:
        with database(db_dir):
            yield db_dir
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
