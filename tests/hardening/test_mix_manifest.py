"""Mixture manifests are checked when loaded (what the trainer calls), not hours into training."""

from __future__ import annotations

import json

import pytest
from hardening._cli import jsonl, od_record


def _manifest(work, **changes):
    jsonl(work / "od.jsonl", [od_record(), od_record("b.jpg")])
    (work / "lm.json").write_text('{"0": "cat"}')
    src = {"name": "a", "path": "od.jsonl", "kind": "od", "label_map": "lm.json", "num_records": 2,
           "ratio": None, "repeat": None, "samples": 3, "samples_per_epoch": 3}
    src.update(changes.pop("source", {}))
    doc = {"odvgkit_mixture": 1, "seed": 0, "epoch_size": 3, "sources": [src], **changes}
    (work / "mix.json").write_text(json.dumps(doc))
    return work / "mix.json"


def _load(path):
    from odvgkit.curate.mix import load_manifest

    return load_manifest(path)


def test_valid_manifest_loads(work):
    m = _load(_manifest(work))
    assert m.epoch_size == 3 and m.sources[0].path == (work / "od.jsonl").resolve()


CASES = {
    "missing-source": ({"source": {"path": "nope.jsonl"}}, r"mix.json: sources\[0\]\.path: .*nope.jsonl: no such file"),
    "missing-label-map": ({"source": {"label_map": "nope.json"}}, r"sources\[0\]\.label_map: .*nope.json: no such file"),
    "negative-samples": ({"source": {"samples": -5, "samples_per_epoch": 3}}, r"sources\[0\]\.samples: expected a positive integer, got -5"),
    "float-samples": ({"source": {"samples": 2.5}}, r"sources\[0\]\.samples: expected a positive integer, got 2.5"),
    "samples-disagree": ({"source": {"samples": 2}}, r"samples_per_epoch: 3 disagrees with samples: 2"),
    "epoch-size-disagrees": ({"epoch_size": 10}, r"epoch_size: 10 disagrees with the sources \(their samples_per_epoch add up to 3\)"),
    "epoch-size-string": ({"epoch_size": "3"}, r"epoch_size: '3' disagrees"),
    "ratio-above-one": ({"source": {"samples": None, "ratio": 1.5}}, r"ratio: a fraction of the epoch must be <= 1"),
    "path-with-nul": ({"source": {"path": "od\u0000.jsonl"}}, r"sources\[0\]\.path: expected a path string"),
    "repeat-infinite": ({"source": {"samples": None, "repeat": float("inf")}}, r"repeat: expected a positive number"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_manifest_is_one_error_at_load_time(work, case):
    from odvgkit.errors import OdvgError

    changes, pattern = CASES[case]
    with pytest.raises(OdvgError, match=pattern) as exc:
        _load(_manifest(work, **changes))
    assert "\n" not in str(exc.value)


def test_duplicate_source_names(work):
    from odvgkit.errors import OdvgError

    path = _manifest(work)
    doc = json.loads(path.read_text())
    doc["sources"].append(dict(doc["sources"][0]))
    doc["epoch_size"] = 6
    path.write_text(json.dumps(doc))
    with pytest.raises(OdvgError, match="name 'a' is used twice"):
        _load(path)
