"""JSON Schemas for ODVG records and label maps, generated from :mod:`odvgkit.records`.

The files in ``schemas/`` are the published contract for other tools (editors, other languages);
``tests/test_schemas.py`` fails when they drift from the model. Regenerate with
``nox -s schemas`` (or ``odvgkit schema --write schemas``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from odvgkit.records import LabelMap, Record

SCHEMA_FILES = {
    "odvg-record.schema.json": (Record, "ODVG record", "One line of an ODVG JSON Lines file."),
    "label-map.schema.json": (LabelMap, "ODVG label map", 'Maps 0-based label ids ("0".."N-1") to class names.'),
}


def generate() -> dict[str, dict[str, Any]]:
    out = {}
    for filename, (model, title, description) in SCHEMA_FILES.items():
        schema = model.model_json_schema()
        if model is LabelMap:
            schema["additionalProperties"] = False  # only "0", "1", … keys
        schema = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"https://odvgkit.dev/schemas/{filename}",
            **schema,
            "title": title,
            "description": description,
        }
        out[filename] = schema
    return out


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def write(directory: str | Path) -> list[Path]:
    from odvgkit.io import atomic_path

    written = []
    for filename, schema in generate().items():
        target = Path(directory) / filename
        with atomic_path(target) as tmp:
            tmp.write_text(render(schema), encoding="utf-8")
        written.append(target)
    return written
