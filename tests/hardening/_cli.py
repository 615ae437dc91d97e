"""What every hardening test checks about a run of the real CLI on a bad input.

* a fatal mistake: a non-zero exit and exactly one line on stderr, ``odvgkit: error: …``;
* a bad record: the command goes on, the record is named (``FILE:LINE`` / ``annotations[i]``) and
  counted in the summary;
* never a ``Traceback``; inputs byte-for-byte unchanged; no output or temporary file left behind
  by a run that failed.

The inputs are written by the tests themselves (no hidden data).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

from conftest import run_cli  # tests/conftest.py (tests/ is on the path)
from PIL import Image


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` → its SHA-256 (inputs unchanged, nothing new left)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def one_error(r: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Assert a failed run printed exactly one ``odvgkit: error:`` line containing ``fragments``."""
    assert "Traceback" not in r.stderr + r.stdout, r.stderr
    assert r.returncode != 0, (r.stdout, r.stderr)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    line = lines[0]
    assert line.startswith("odvgkit: error: "), line
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    return line


def refused(folder: Path, *args: Any, fragments: tuple[str, ...] = ()) -> str:
    """Run the CLI in ``folder``; it must fail with one error line and leave ``folder`` as it was."""
    before = snapshot(folder)
    r = run_cli(*args, "-q", cwd=folder)
    line = one_error(r, *fragments)
    assert snapshot(folder) == before, "inputs changed or outputs/temporaries left behind"
    return line


def summary(folder: Path, *args: Any) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """Run with ``--json``: the process and its parsed summary (no traceback, inputs unchanged)."""
    inputs = snapshot(folder)
    r = run_cli(*args, "--json", cwd=folder)
    assert "Traceback" not in r.stderr + r.stdout, r.stderr
    after = snapshot(folder)
    assert {k: v for k, v in after.items() if k in inputs} == inputs, "an input changed"
    return r, json.loads(r.stdout)


def examples(doc: dict[str, Any]) -> list[str]:
    return doc["problems"]["examples"]


def count(doc: dict[str, Any], code: str) -> int:
    return sum(c["count"] for c in doc["problems"]["by_code"] if c["code"] == code)


def dump(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def dump_gz(path: Path, data: Any) -> Path:
    path.write_bytes(gzip.compress(json.dumps(data).encode()))
    return path


def jsonl(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def jpeg(path: Path, size: tuple[int, int] = (40, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (120, 30, 200)).save(path, "JPEG")
    return path


CATS = [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]


def coco_image(i: int, **kw: Any) -> dict[str, Any]:
    return {"id": i, "file_name": f"{i:012d}.jpg", "height": 30, "width": 40, **kw}


def coco_ann(i: int, image_id: int, category_id: int = 1, **kw: Any) -> dict[str, Any]:
    return {"id": i, "image_id": image_id, "category_id": category_id, "bbox": [2.0, 3.0, 10.0, 8.0],
            "area": 80.0, "iscrowd": 0, **kw}


def lvis_image(i: int, **kw: Any) -> dict[str, Any]:
    return {"id": i, "coco_url": f"http://images.cocodataset.org/train2017/{i:012d}.jpg", "height": 30,
            "width": 40, "neg_category_ids": [], "not_exhaustive_category_ids": [], **kw}


LVIS_CATS = [{"id": 1, "name": "cat", "frequency": "f"}, {"id": 2, "name": "dog", "frequency": "r"}]


def mdetr_image(i: int, caption: str = "a black cat", **kw: Any) -> dict[str, Any]:
    return {"id": i, "file_name": f"{i}.jpg", "height": 30, "width": 40, "caption": caption,
            "dataset_name": "x", "tokens_negative": [], "original_id": i, **kw}


def mdetr_ann(i: int, image_id: int, spans: list[list[int]] | None = None, **kw: Any) -> dict[str, Any]:
    return {"id": i, "image_id": image_id, "category_id": 1, "bbox": [2.0, 3.0, 10.0, 8.0], "area": 80.0,
            "iscrowd": 0, "tokens_positive": spans if spans is not None else [[0, 11]], **kw}


def od_record(name: str = "a.jpg", **kw: Any) -> dict[str, Any]:
    return {"filename": name, "height": 30, "width": 40,
            "detection": {"instances": [{"bbox": [2.0, 3.0, 12.0, 11.0], "label": 0, "category": "cat"}]}, **kw}


def vg_record(name: str = "a.jpg", **kw: Any) -> dict[str, Any]:
    return {"filename": name, "height": 30, "width": 40,
            "grounding": {"caption": "a black cat", "regions": [
                {"bbox": [2.0, 3.0, 12.0, 11.0], "phrase": "a black cat", "tokens_positive": [[0, 11]]}]}, **kw}


def one_image_coco(path: Path, names: list[str]) -> Path:
    """A COCO-format export of one image with one 10-px box per class ``names`` (ids 1..K)."""
    doc = {
        "images": [{"id": 1, "file_name": "a.jpg", "height": 100, "width": 100}],
        "annotations": [
            {"id": i + 1, "image_id": 1, "category_id": i + 1, "bbox": [1, 1, 10, 10], "area": 100, "iscrowd": 0}
            for i in range(len(names))
        ],
        "categories": [{"id": i + 1, "name": n} for i, n in enumerate(names)],
    }
    path.write_text(json.dumps(doc))
    return path
