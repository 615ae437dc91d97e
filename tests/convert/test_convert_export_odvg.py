"""export odvg --dialect: the exact records MMDetection, Open-GroundingDino and TAO read."""

from __future__ import annotations

import json

import numpy as np
import pytest

from odvgkit.convert.export_odvg import export_odvg
from odvgkit.errors import OdvgError, ProblemLog
from odvgkit.io import write_records

OD = {"filename": "a/1.jpg", "height": 10, "width": 20,
      "detection": {"instances": [{"bbox": [1, 2, 3, 4], "label": 0, "category": "dog", "score": 0.5}]}}
VG = {"filename": "b/2.jpg", "height": 30, "width": 40, "grounding": {
    "caption": "two dogs and a red ball",
    "regions": [
        {"bbox": [[1, 1, 5, 5], [6, 6, 9, 9.5]], "phrase": "two dogs", "tokens_positive": [[0, 8]], "score": [0.9, 0.8]},
        {"bbox": [10, 10, 20, 20], "phrase": ["a", "red ball"], "tokens_positive": [[13, 14], [15, 23]]},
        {"bbox": [], "phrase": "nothing", "tokens_positive": [[0, 3]]},
    ]}, "source": "flickr"}

VG_ONE_BOX = [
    {"bbox": [1, 1, 5, 5], "phrase": "two dogs", "tokens_positive": [[0, 8]], "score": 0.9},
    {"bbox": [6, 6, 9, 9.5], "phrase": "two dogs", "tokens_positive": [[0, 8]], "score": 0.8},
    {"bbox": [10, 10, 20, 20], "phrase": "a red ball", "tokens_positive": [[13, 14], [15, 23]]},
]


def _lines(path):
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def src(tmp_path):
    return tmp_path / "in.jsonl", write_records(tmp_path / "in.jsonl", [OD, VG])


def test_mmdet_is_a_copy(src, tmp_path):
    stats = export_odvg(src[0], tmp_path / "m.jsonl", "mmdet")
    assert _lines(tmp_path / "m.jsonl") == [OD, VG]
    assert stats["records_written"] == 2


def test_ogd_has_one_box_and_one_string_phrase_per_region(src, tmp_path):
    stats = export_odvg(src[0], tmp_path / "o.jsonl", "ogd")
    od, vg = _lines(tmp_path / "o.jsonl")
    assert od == OD
    assert vg == {"filename": "b/2.jpg", "height": 30, "width": 40,
                  "grounding": {"caption": "two dogs and a red ball", "regions": VG_ONE_BOX}, "source": "flickr"}
    assert (stats["regions_split"], stats["phrases_joined"], stats["regions_dropped:no-box"], stats["regions"]) == (1, 1, 1, 3)
    # what Open-GroundingDino's loader does (torch.as_tensor(...).reshape(-1, 4)): one class per box
    boxes = np.asarray([r["bbox"] for r in vg["grounding"]["regions"]], dtype=np.float32).reshape(-1, 4)
    phrases = [r["phrase"] for r in vg["grounding"]["regions"]]
    assert len(set(phrases)) == 2 and boxes.shape == (len(phrases), 4)


def test_tao_renames_filename_in_place(src, tmp_path, cli):
    r = cli("export", "odvg", src[0], tmp_path / "t.jsonl", "--dialect", "tao", "--json")
    assert r.returncode == 0, r.stderr
    od, vg = _lines(tmp_path / "t.jsonl")
    assert list(od) == ["file_name", "height", "width", "detection"]
    assert od == {"file_name": "a/1.jpg", "height": 10, "width": 20, "detection": OD["detection"]}
    assert vg["file_name"] == "b/2.jpg" and "filename" not in vg
    assert vg["grounding"]["regions"] == VG_ONE_BOX
    s = json.loads(r.stdout)
    assert s["records_written"] == 2 and s["regions_split"] == 1


def test_bad_records_and_dialects_are_named(tmp_path, cli):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(OD) + "\n" + json.dumps({"filename": "x.jpg", "height": 1, "width": 1, "grounding": {
        "caption": "c", "regions": [{"bbox": [0, 0, "1", 1], "phrase": "c", "tokens_positive": [[0, 1]]}]}}) + "\n")
    r = cli("export", "odvg", bad, tmp_path / "o.jsonl", "--dialect", "ogd")
    assert r.returncode == 1
    assert f"{bad}:2: grounding.regions[0].bbox: not 4 finite numbers: [0, 0, '1', 1]" in r.stderr
    assert _lines(tmp_path / "o.jsonl") == [OD]
    r = cli("export", "odvg", bad, tmp_path / "s.jsonl", "--dialect", "ogd", "--strict")
    assert r.stderr.splitlines() == [f"odvgkit: error: {bad}:2: grounding.regions[0].bbox: not 4 finite numbers: [0, 0, '1', 1]"]
    assert not (tmp_path / "s.jsonl").exists()
    with pytest.raises(OdvgError, match="--dialect 'glip': choose one of mmdet, ogd, tao"):
        export_odvg(bad, tmp_path / "g.jsonl", "glip", ProblemLog())
    with pytest.raises(OdvgError, match="same file as input"):
        export_odvg(bad, bad, "tao")
