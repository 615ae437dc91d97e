"""labels remap never coerces a label or "remaps" a VG file; label maps with a repeated key are refused."""

from __future__ import annotations

import json

import pytest
from hardening._cli import count, jsonl, od_record, refused, summary, vg_record


def _lm(work):
    (work / "lm.json").write_text('{"0": "cat", "3": "dog"}')


@pytest.mark.parametrize("label", [1.7, "3", True, None])
def test_remap_refuses_non_integer_labels(work, label):
    _lm(work)
    rec = od_record()
    rec["detection"]["instances"].append({"bbox": [1.0, 1.0, 5.0, 5.0], "label": label, "category": "dog"})
    jsonl(work / "od.jsonl", [od_record(), rec])
    refused(work, "labels", "remap", "od.jsonl", "-m", "lm.json", "-o", "dense.jsonl",
            fragments=(f"od.jsonl:2: detection.instances[1].label: must be an integer, got {label!r}",))


def test_remap_refuses_a_vg_file(work):
    _lm(work)
    jsonl(work / "vg.jsonl", [vg_record()])
    refused(work, "labels", "remap", "vg.jsonl", "-m", "lm.json", "-o", "dense.jsonl",
            fragments=("vg.jsonl:1: grounding record: labels remap changes detection labels",))


def test_remap_counts_records_without_detection(work):
    _lm(work)
    jsonl(work / "od.jsonl", [od_record(), vg_record("b.jpg")])
    r, doc = summary(work, "labels", "remap", "od.jsonl", "-m", "lm.json", "-o", "dense.jsonl")
    assert r.returncode == 0, r.stderr
    assert count(doc, "no-detection") == 1
    recs = [json.loads(line) for line in (work / "dense.jsonl").read_text().splitlines()]
    assert recs[1] == vg_record("b.jpg")


def test_rename_refuses_duplicate_keys(work):
    (work / "lm.json").write_text('{"0": "cat", "1": "dog", "0": "kitten"}')
    refused(work, "labels", "rename", "lm.json", "-s", "lower", "-o", "new.json",
            fragments=("lm.json: label '0' appears twice (names 'cat' and 'kitten')",))


def test_label_map_with_non_integer_keys(work):
    (work / "lm.json").write_text('{"a": "cat"}')
    jsonl(work / "od.jsonl", [od_record()])
    for args in (("export", "coco", "od.jsonl", "--label-map", "lm.json", "-o", "c.json"),
                 ("labels", "merge", "lm.json", "lm.json", "-o", "m.json")):
        refused(work, *args, fragments=("lm.json: label 'a': keys must be non-negative integers as strings",))
