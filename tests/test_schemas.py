"""schemas/*.json are generated from the record model and must not drift; they accept real records."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from odvgkit.schema import generate, render

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"


@pytest.mark.parametrize("name", sorted(generate()))
def test_schema_files_are_in_sync(name: str) -> None:
    on_disk = (SCHEMAS / name).read_text(encoding="utf-8")
    assert on_disk == render(generate()[name]), f"schemas/{name} drifted: run `nox -s schemas`"


def test_record_schema_accepts_converter_output_and_rejects_bad(tmp_path: Path, tiny_coco: Path, cli) -> None:
    schema = json.loads((SCHEMAS / "odvg-record.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    out = tmp_path / "od.jsonl"
    assert cli("convert", "coco2odvg", tiny_coco / "instances_val2017.json", "-o", out, "-q").returncode == 0
    for line in out.read_text().splitlines():
        validator.validate(json.loads(line))
    vg = {"filename": "a.jpg", "height": 1, "width": 1, "grounding": {"caption": "x", "regions": [
        {"bbox": [[0, 0, 1, 1]], "phrase": ["x"], "tokens_positive": [[0, 1]], "score": [0.5]}]}}
    validator.validate(vg)
    bad = [
        {"filename": "a.jpg", "height": 1},
        {**vg, "grounding": {"caption": "x", "regions": [{"bbox": [0, 0, 1], "phrase": "x", "tokens_positive": [[0, 1]]}]}},
        {"filename": "a.jpg", "height": 1, "width": 1, "detection": {"instances": [{"bbox": [0, 0, 1, 1], "label": -2}]}},
    ]
    for rec in bad:
        assert not validator.is_valid(rec), rec
    lm_validator = jsonschema.Draft202012Validator(json.loads((SCHEMAS / "label-map.schema.json").read_text()))
    lm_validator.validate(json.loads((tmp_path / "coco2017_label_map.json").read_text()))
    assert not lm_validator.is_valid({"a": "cat"}) and not lm_validator.is_valid({"0": 1})
