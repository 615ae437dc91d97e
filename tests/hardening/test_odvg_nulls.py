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


def test_wrong_typed_blocks_never_crash_a_command(work):
    """instances/regions/phrases of the wrong JSON type (found by a CLI sweep): every command that
    reads records either reports them or skips them — exit status aside, never a traceback."""
    from conftest import run_cli

    recs = [
        od_record("a.jpg"),
        od_record("b.jpg", detection={"instances": True}),
        od_record("c.jpg", detection={"instances": [None, 5, {"bbox": None, "label": None}]}),
    ]
    vg = [{"filename": "v.jpg", "height": 30, "width": 40, "grounding": {"caption": "a cat", "regions": [
        None, {"bbox": 5, "phrase": ["a", 5], "tokens_positive": True}]}}]
    jsonl(work / "od.jsonl", recs)
    jsonl(work / "vg.jsonl", vg)
    (work / "lm.json").write_text('{"0": "cat"}')
    for args in (("stats", "od.jsonl"), ("stats", "vg.jsonl"), ("mix", "od.jsonl:lm=lm.json", "-o", "m.yaml"),
                 ("pseudolabel", "diff", "od.jsonl", "od.jsonl"), ("pseudolabel", "diff", "vg.jsonl", "vg.jsonl"),
                 ("lint", "vg.jsonl"), ("browse", "render", "vg.jsonl", "--images-root", ".", "-o", "r")):
        r = run_cli(*args, "-q", cwd=work)
        assert "Traceback" not in r.stderr + r.stdout, (args, r.stderr)
        assert all(line.startswith("odvgkit: error: ") for line in r.stderr.splitlines() if line.strip()), (args, r.stderr)
