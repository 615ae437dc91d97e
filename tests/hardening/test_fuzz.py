"""Fuzz the COCO and ODVG readers: any mutation of a small valid document is either converted
(bad parts counted in the ProblemLog) or refused with one-line :class:`OdvgError` — never
another exception. In-process, with the library functions the CLI calls."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odvgkit.errors import OdvgError, ProblemLog

COCO = {
    "info": {"description": "fuzz"},
    "images": [
        {"id": 1, "file_name": "a.jpg", "height": 30, "width": 40},
        {"id": 2, "file_name": "b.jpg", "height": 20, "width": 20},
    ],
    "annotations": [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1.0, 2.0, 10.0, 8.0], "area": 80.0, "iscrowd": 0},
        {"id": 2, "image_id": 2, "category_id": 2, "bbox": [0, 0, 5, 5], "area": 25, "iscrowd": 0,
         "segmentation": [[0, 0, 5, 0, 5, 5]]},
        {"id": 3, "image_id": 1, "category_id": 2, "bbox": [3, 3, 4, 4], "area": 16, "iscrowd": 1},
    ],
    "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
}
ODVG = [
    {"filename": "a.jpg", "height": 30, "width": 40,
     "detection": {"instances": [{"bbox": [1.0, 2.0, 11.0, 10.0], "label": 0, "category": "cat"}]}},
    {"filename": "b.jpg", "height": 20, "width": 20,
     "grounding": {"caption": "a dog", "regions": [{"bbox": [0, 0, 5, 5], "phrase": "a dog", "tokens_positive": [[0, 5]]}]}},
]

ODD_VALUES = st.sampled_from([
    None, True, 0, -1, 2**63, -(2**63) - 1, 2**70, 1.5, math.nan, math.inf, -math.inf, "", "é\u0000\ud7ff🐱",
    "12", [], {}, [1, 2], [[0, 1]], {"a": 1},
])


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def mutated(draw: st.DrawFn, base: Any) -> Any:
    """``base`` with 1–3 mutations: a value replaced by an odd one, a key or element deleted."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            break
        # depth first, then a path of that depth: top-level members are hit as often as leaves
        depth = draw(st.sampled_from(sorted({len(p) for p in paths})))
        path = draw(st.sampled_from([p for p in paths if len(p) == depth]))
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.booleans()):
            parent[path[-1]] = copy.deepcopy(draw(ODD_VALUES))  # shared literals must not alias
        else:
            del parent[path[-1]]
    return doc


def _bytes(doc: Any, draw_cut: int | None) -> bytes:
    # allow_nan: Python writes NaN/Infinity (a classic of json.dump'ed COCO files)
    data = json.dumps(doc, ensure_ascii=False, allow_nan=True).encode("utf-8", "surrogatepass")
    return data[:draw_cut] if draw_cut is not None else data


def _convert_coco(path: Path) -> None:
    from odvgkit.convert.coco import coco_to_odvg

    conv = coco_to_odvg(path, problems=ProblemLog())
    assert conv.jsonl_chunks is not None
    for chunk, n in conv.jsonl_chunks:
        assert chunk.count(b"\n") == n
        for line in chunk.splitlines():
            json.loads(line)  # every record written is valid JSON (no NaN, no null box)
    conv = coco_to_odvg(path, problems=ProblemLog())
    for rec in conv.records:
        assert all(math.isfinite(v) for i in rec["detection"]["instances"] for v in i["bbox"])


FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@FUZZ
@given(doc=mutated(COCO), cut=st.one_of(st.none(), st.integers(0, 400)))
def test_coco_reader(tmp_path_factory: pytest.TempPathFactory, doc: Any, cut: int | None) -> None:
    path = tmp_path_factory.mktemp("coco") / "in.json"
    path.write_bytes(_bytes(doc, cut))
    try:
        _convert_coco(path)
    except OdvgError as exc:
        assert "\n" not in str(exc)


@FUZZ
@given(doc=mutated(COCO))
def test_lvis_reader(tmp_path_factory: pytest.TempPathFactory, doc: Any) -> None:
    from odvgkit.convert.lvis import lvis_to_odvg

    path = tmp_path_factory.mktemp("lvis") / "in.json"
    path.write_bytes(_bytes(doc, None))
    try:
        conv = lvis_to_odvg(path, problems=ProblemLog())
        for rec in conv.records:
            json.dumps(rec, allow_nan=False)
    except OdvgError as exc:
        assert "\n" not in str(exc)


@FUZZ
@given(records=mutated(ODVG), cut=st.one_of(st.none(), st.integers(0, 300)), gz=st.booleans())
def test_odvg_reader_and_validator(tmp_path_factory: pytest.TempPathFactory, records: Any, cut: int | None,
                                   gz: bool) -> None:
    import gzip

    from odvgkit.validate import validate_file

    folder = tmp_path_factory.mktemp("odvg")
    lines = records if isinstance(records, list) else [records]
    data = b"".join(_bytes(r, None) + b"\n" for r in lines)
    data = data[:cut] if cut is not None else data
    path = folder / ("in.jsonl.gz" if gz else "in.jsonl")
    path.write_bytes(gzip.compress(data)[: (cut or 10**9) + 20] if gz else data)
    from odvgkit.browse.scene import scene_of
    from odvgkit.convert.export_coco import export_coco
    from odvgkit.curate.labels import remap_records
    from odvgkit.curate.lint import lint_file
    from odvgkit.curate.stats import compute
    from odvgkit.io import read_records

    for run in (
        lambda: validate_file(path, ProblemLog(), label_map={"0": "cat"}),
        lambda: compute(path, {"0": "cat"}, ProblemLog(), count_tokens=False),
        lambda: export_coco(path, folder / "coco.json", problems=ProblemLog()),
        lambda: lint_file(path, {"0": "cat"}, ProblemLog()),
        lambda: list(remap_records(path, {0: 0}, {"0": "cat"}, ProblemLog())),
        lambda: [scene_of(rec, {"0": "cat"}, 0.3) for _, rec in read_records(path, ProblemLog())],
    ):
        try:
            run()
        except OdvgError as exc:
            assert "\n" not in str(exc)


MDETR = {
    "images": [
        {"id": 1, "file_name": "a.jpg", "height": 30, "width": "40", "caption": "a black cat", "original_id": 9},
        {"id": 2, "file_name": "b.jpg", "height": 20, "width": 20, "caption": "two dogs"},
    ],
    "annotations": [
        {"id": 1, "image_id": 1, "bbox": [1.0, 2.0, 10.0, 8.0], "area": 80.0, "iscrowd": 0, "tokens_positive": [[0, 11]]},
        {"id": 2, "image_id": 2, "bbox": [0, 0, 5, 5], "area": 25, "iscrowd": 0, "tokens_positive": [[0, 3], [4, 8]]},
    ],
    "categories": [{"id": 1, "name": "object"}],
}


@FUZZ
@given(doc=mutated(MDETR), cut=st.one_of(st.none(), st.integers(0, 400)))
def test_mdetr_reader(tmp_path_factory: pytest.TempPathFactory, doc: Any, cut: int | None) -> None:
    from odvgkit.convert.goldg import goldg_to_odvg

    path = tmp_path_factory.mktemp("mdetr") / "in.json"
    path.write_bytes(_bytes(doc, cut))
    try:
        conv = goldg_to_odvg(path, problems=ProblemLog())
        assert conv.jsonl_chunks is not None
        for chunk, n in conv.jsonl_chunks:
            assert chunk.count(b"\n") == n
            for line in chunk.splitlines():
                json.loads(line)
    except OdvgError as exc:
        assert "\n" not in str(exc)


MANIFEST_SOURCES = [
    {"name": "a", "path": "od.jsonl", "kind": "od", "label_map": "lm.json", "num_records": 1, "ratio": None,
     "repeat": 2, "samples": None, "samples_per_epoch": 2, "class_balanced_threshold": 0.001, "image_root": None},
    {"name": "b", "path": "od.jsonl", "kind": "vg", "label_map": None, "num_records": 1, "ratio": None,
     "repeat": None, "samples": 3, "samples_per_epoch": 3},
]
MANIFEST = {"odvgkit_mixture": 1, "seed": 0, "epoch_size": 5, "sources": MANIFEST_SOURCES}


@FUZZ
@given(doc=mutated(MANIFEST), lm=mutated({"0": "cat", "1": "dog"}))
def test_manifest_and_label_map_readers(tmp_path_factory: pytest.TempPathFactory, doc: Any, lm: Any) -> None:
    from odvgkit.curate.mix import load_manifest
    from odvgkit.io import read_label_map

    folder = tmp_path_factory.mktemp("mix")
    (folder / "od.jsonl").write_text(json.dumps(ODVG[0]) + "\n")
    (folder / "lm.json").write_bytes(_bytes(lm, None))
    (folder / "mix.json").write_bytes(_bytes(doc, None))
    for run in (lambda: load_manifest(folder / "mix.json"), lambda: read_label_map(folder / "lm.json")):
        try:
            run()
        except OdvgError as exc:
            assert "\n" not in str(exc)
