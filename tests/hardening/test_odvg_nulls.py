"""validate: a null detection/grounding block (ODVGDataset crashes on it) is a named error, not a traceback."""

from __future__ import annotations

from hardening._cli import count, examples, jsonl, od_record, summary


def test_null_blocks(work):
    jsonl(work / "od.jsonl", [od_record(), od_record("b.jpg", detection=None), {**od_record("c.jpg"), "grounding": None}])
    r, doc = summary(work, "validate", "od.jsonl")
    assert r.returncode == 1
    assert count(doc, "null-block") == 2
    assert "od.jsonl:2: detection: null (ODVGDataset fails on it); omit the key or give an object" in examples(doc)
    assert "od.jsonl:3: grounding: null (ODVGDataset fails on it); omit the key or give an object" in examples(doc)
