"""coco2odvg / lvis2odvg on inputs shaped like the real files (issue #17), against the upstream port.

Real COCO and Objects365 files differ from tidy generated ones where a streaming parser notices:
annotations interleaved across images, crowd boxes with an uncompressed RLE dict (whose ``}``
followed by ``,`` sits inside an element — the parallel reader's speculative cut lands there),
polygons of varying length, full-precision float areas, sparse ids and varying key order. Every
fast path (parallel reader, forked formatter, packed-key grouping) must give the serial bytes.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import upstream_coco2odvg as upstream

from odvgkit.convert import coco as coco_mod
from odvgkit.convert import lvis as lvis_mod
from odvgkit.convert.coco import coco_to_odvg, grouped
from odvgkit.errors import OdvgError, ProblemLog
from odvgkit.io import jsonstream

COCO_KEYS = ("segmentation", "area", "iscrowd", "image_id", "bbox", "category_id", "id")
O365_KEYS = ("id", "iscrowd", "isfake", "area", "isreflected", "bbox", "image_id", "category_id")


def realistic(seed: int, n_images: int, dataset: str, crowd: float = 0.08) -> dict[str, Any]:
    """A small COCO-/Objects365-shaped document with the real files' quirks (see the module doc)."""
    rnd = random.Random(seed)
    if dataset == "coco":
        cat_ids = list(upstream.COCO80_IDS)  # COCO's 80 non-contiguous ids
        keys = COCO_KEYS
    else:
        cat_ids = list(range(1, 13))
        keys = O365_KEYS
    ids = rnd.sample(range(1, 581_930), n_images)  # sparse, in no order
    if dataset == "o365v2":
        ids[3] = 320532  # an id upstream skips as a corrupt file
    images = []
    for i in ids:
        h, w = rnd.choice([(480, 640), (427, 640), (640, 480), (333, 500)])
        name = f"{i:012d}.jpg" if dataset == "coco" else f"images/v2/patch{i % 7}/objects365_v2_{i:08d}.jpg"
        images.append({"license": 3, "file_name": name, "height": h, "width": w, "id": i})
    anns = []
    for img in images:
        for _ in range(rnd.choice([0, 1, 3, 7, 15])):
            h, w = img["height"], img["width"]
            bw, bh = round(rnd.uniform(0.3, w / 2), 2), round(rnd.uniform(0.3, h / 2), 2)
            x, y = round(rnd.uniform(-5, w + 2), 2), round(rnd.uniform(-5, h), 2)
            is_crowd = rnd.random() < crowd
            fields: dict[str, Any] = {
                "area": bw * bh * rnd.uniform(0.3, 0.95) if rnd.random() > 0.02 else 0.0,  # full precision
                "iscrowd": int(is_crowd), "image_id": img["id"], "bbox": [x, y, bw, bh],
                "category_id": rnd.choice(cat_ids), "id": 0,
                "isfake": int(rnd.random() < 0.01), "isreflected": 0,
            }
            if is_crowd:  # uncompressed RLE: "...], "size": [h, w]}, "area": ..." — a '},' inside the element
                fields["segmentation"] = {"counts": [rnd.randrange(1, 400) for _ in range(rnd.randrange(3, 60))],
                                          "size": [h, w]}
            else:
                fields["segmentation"] = [[round(rnd.uniform(0, w), 2) for _ in range(2 * rnd.randrange(3, 25))]
                                          for _ in range(rnd.choice([1, 1, 1, 2, 4]))]
            anns.append(fields)
    rnd.shuffle(anns)  # interleaved across images, as in the real files
    out = []
    for n, fields in enumerate(anns):
        fields["id"] = 900100000000 + n if fields["iscrowd"] and dataset == "coco" else 3 * n + 1
        order = list(keys)
        if rnd.random() < 0.2:
            rnd.shuffle(order)
        out.append({k: fields[k] for k in order})
    cats = [{"supercategory": "thing", "id": c, "name": f"class {c}"} for c in sorted(cat_ids, key=lambda _: rnd.random())]
    return {"info": {"year": 2017}, "images": images, "annotations": out, "categories": cats}


def _write(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(json.dumps(doc))  # Python's separators, as the real files
    return path


def _oracle(src: Path, dataset: str) -> tuple[bytes, dict[str, str]]:
    records, label_map = upstream.upstream_coco2odvg(str(src), dataset)
    return b"".join(orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE) for r in records), label_map


def _ours(src: Path, dataset: str) -> tuple[bytes, dict[str, str]]:
    conv = coco_to_odvg(src, dataset, problems=ProblemLog(strict=True))
    return b"".join(c for c, _ in conv.jsonl_chunks or []), conv.label_map


@pytest.mark.parametrize("dataset", ["coco", "o365v2"])
def test_realistic_shape_matches_upstream(tmp_path: Path, dataset: str) -> None:
    doc = realistic(17, 300, "coco" if dataset == "coco" else "o365v2")
    src = _write(tmp_path / "in.json", doc)
    want, want_map = _oracle(src, dataset)
    got, got_map = _ours(src, dataset)
    assert got == want
    assert got_map == want_map
    assert want.count(b"\n") == len(doc["images"]) - (dataset == "o365v2")


def test_parallel_reader_and_formatter_give_the_serial_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiny read blocks make the speculative cut land inside crowd RLE dicts; the redo is exact."""
    src = _write(tmp_path / "in.json", realistic(3, 400, "coco", crowd=0.3))
    serial, _ = _ours(src, "coco")
    seeks = []
    real_seek = jsonstream._Buffer.seek
    monkeypatch.setattr(jsonstream._Buffer, "seek", lambda self, off: (seeks.append(off), real_seek(self, off))[1])
    monkeypatch.setattr(coco_mod, "WORKERS", 2)
    monkeypatch.setattr(coco_mod, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(coco_mod, "BLOCK_SIZE", 3000)
    monkeypatch.setattr(coco_mod, "_FORMAT_BLOCK", 37)
    monkeypatch.setattr(coco_mod, "_PARALLEL_FORMAT_MIN_BOXES", 0)
    monkeypatch.setattr(coco_mod, "_MASK_ROWS", 7)
    parallel, _ = _ours(src, "coco")
    assert parallel == serial
    assert len(seeks) > 1  # wrong cuts inside elements happened (not only the one at the array's end)
    want, _ = _oracle(src, "coco")
    assert serial == want


@pytest.mark.parametrize("tail", [64, 300, 1100])
def test_sparse_cutter_gives_the_serial_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tail: int) -> None:
    """The main process reads only each batch's tail to cut it; cuts in RLE dicts are redone."""
    src = _write(tmp_path / "in.json", realistic(11, 400, "coco", crowd=0.3))
    serial, _ = _ours(src, "coco")
    used = []
    real = jsonstream._sparse_cut
    monkeypatch.setattr(jsonstream, "_sparse_cut", lambda buf: (r := real(buf), used.append(r is not None))[0])
    monkeypatch.setattr(jsonstream, "_TAIL", tail)
    monkeypatch.setattr(coco_mod, "WORKERS", 2)
    monkeypatch.setattr(coco_mod, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(coco_mod, "BLOCK_SIZE", 5000)
    seen = []
    conv = coco_to_odvg(src, "coco", problems=ProblemLog(strict=True), on_bytes=seen.append)
    assert b"".join(c for c, _ in conv.jsonl_chunks or []) == serial
    assert sum(used) > 10
    assert sum(seen) >= src.stat().st_size  # progress reaches the end (re-reads after a wrong cut count again)


@pytest.mark.parametrize("damage", [b'"iscrowd": 0,', b'"bbox": ['])
def test_sparse_cutter_reports_malformed_json_as_the_serial_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: bytes
) -> None:
    """A syntax error deep inside the annotations: the same one-line error with line and column."""
    text = json.dumps(realistic(13, 400, "coco", crowd=0.1)).encode()
    at = text.index(damage, len(text) * 2 // 3)
    src = tmp_path / "bad.json"
    src.write_bytes(text[:at] + b"NaN, " + text[at:])

    def error() -> str:
        with pytest.raises(OdvgError) as exc:
            coco_to_odvg(src, "coco", problems=ProblemLog(strict=True))
        return str(exc.value)

    serial = error()
    assert "malformed JSON" in serial and serial.startswith(f"{src}:1:")
    monkeypatch.setattr(jsonstream, "_TAIL", 300)
    monkeypatch.setattr(coco_mod, "WORKERS", 2)
    monkeypatch.setattr(coco_mod, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(coco_mod, "BLOCK_SIZE", 5000)
    assert error() == serial


def test_lvis_parallel_formatter_gives_the_serial_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = realistic(5, 300, "o365v2", crowd=0.0)
    for im in doc["images"]:
        im["coco_url"] = f"http://images.cocodataset.org/train2017/{im.pop('file_name').rsplit('/', 1)[1]}"
        im["neg_category_ids"], im["not_exhaustive_category_ids"] = [3, 1], [12]
    for ann in doc["annotations"]:
        for key in ("iscrowd", "isfake", "isreflected"):
            del ann[key]
    doc = {"info": {}, "annotations": doc["annotations"], "images": doc["images"], "categories": doc["categories"]}
    src = _write(tmp_path / "lvis.json", doc)

    def run() -> bytes:
        conv = lvis_mod.lvis_to_odvg(src, problems=ProblemLog(strict=True))
        return b"".join(c for c, _ in conv.jsonl_chunks or [])

    serial = run()
    monkeypatch.setattr(lvis_mod, "WORKERS", 2)
    monkeypatch.setattr(lvis_mod, "_BLOCK", 29)
    monkeypatch.setattr(coco_mod, "_PARALLEL_FORMAT_MIN_BOXES", 0)
    assert run() == serial
    assert serial.count(b"\n") == len(doc["images"])
    assert b'"neg_category_ids":[2,0],"not_exhaustive_category_ids":[11]' in serial


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 40), max_size=300), st.data())
def test_grouped_is_a_stable_argsort(groups: list[int], data: st.DataObject) -> None:
    group = np.array(groups, dtype=np.int64)
    rows = np.array(sorted(data.draw(st.sets(st.integers(0, max(len(groups) - 1, 0)))) if groups else []),
                    dtype=np.int64)
    assert grouped(group, rows).tolist() == rows[np.argsort(group[rows], kind="stable")].tolist()


def test_grouped_falls_back_for_huge_group_values() -> None:
    group = np.array([1 << 40, 5, 1 << 40, 5, 0], dtype=np.int64)
    rows = np.arange(5)
    assert grouped(group, rows).tolist() == [4, 1, 3, 0, 2]


@settings(max_examples=60, deadline=None)
@given(st.sets(st.integers(0, 500), min_size=1, max_size=60), st.lists(st.integers(-5, 520), max_size=200),
       st.integers(1, 9))
def test_lookup_in_small_steps_finds_every_id(keys: set[int], queries: list[int], step: int) -> None:
    coco_mod._MASK_ROWS, saved = step, coco_mod._MASK_ROWS
    try:
        k = np.array(sorted(keys, key=lambda v: (v * 7919) % 503), dtype=np.int64)  # in no order
        pos, found = coco_mod.lookup(k, np.array(queries, dtype=np.int64))
    finally:
        coco_mod._MASK_ROWS = saved
    where = {int(v): i for i, v in enumerate(k)}
    assert found.tolist() == [q in where for q in queries]
    assert pos.tolist() == [where.get(q, 0) for q in queries]
