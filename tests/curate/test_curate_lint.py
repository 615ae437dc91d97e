"""lint: token limits, spans that map to no token, phrases, class prompts."""

from __future__ import annotations

import json

from odvgkit.curate.lint import class_token_lengths, clean_name, lint_file
from odvgkit.errors import ProblemLog
from odvgkit.tokenizer import load_tokenizer


def _vg(caption, regions):
    return {"filename": "x.jpg", "height": 10, "width": 10, "grounding": {"caption": caption, "regions": regions}}


def _reg(phrase, spans):
    return {"bbox": [0, 0, 5, 5], "phrase": phrase, "tokens_positive": spans}


def test_vg_checks(tmp_path, write_jsonl):
    long_caption = " ".join(["word"] * 300) + " end"
    recs = [
        _vg("A dog on a red sofa.", [_reg("A dog", [[0, 5]]), _reg("red sofa", [[11, 19]])]),  # clean
        _vg("two   cats", [_reg("cat", [[3, 6]]), _reg("horse", [[4, 9]])]),  # whitespace span, phrase absent
        _vg(long_caption, [_reg("end", [[len(long_caption) - 3, len(long_caption)]]), _reg("word", [[0, 4]])]),
        _vg(" lead", [_reg("lead", [[1, 5]])]),
        _vg("short", [_reg("short", [[2, 40]])]),
    ]
    problems = ProblemLog(keep=50)
    res = lint_file(write_jsonl(tmp_path / "vg.jsonl", recs), None, problems)
    codes = {(p.code, p.where) for ps in problems.examples.values() for p in ps}
    assert codes == {
        ("span-no-tokens", 2), ("phrase-not-in-caption", 2),
        ("caption-too-long", 3), ("span-truncated", 3),
        ("caption-leading-space", 4),
        ("span-out-of-range", 5),
    }
    expected_tokens = len(load_tokenizer().encode(long_caption.lower() + ". ").ids)
    assert res.max_caption_tokens == expected_tokens and expected_tokens > 256
    assert res.flagged_records == 4 and res.vg_records == 5


def test_od_prompt_checks(tmp_path, write_jsonl, od):
    names = {str(i): f"category number {i} with a long descriptive name" for i in range(40)}
    names["40"] = "bat_(animal)"
    names["41"] = "bat_(sports_equipment)"
    names["42"] = "(unknown)"
    lengths = class_token_lengths(names)
    tok = load_tokenizer()
    assert lengths["40"] == len(tok.encode(clean_name("bat_(animal)") + ". ", add_special_tokens=False).ids)
    recs = [od("a.jpg", list(range(40))), od("b.jpg", [40, 41]), od("c.jpg", [99])]
    problems = ProblemLog(keep=50)
    res = lint_file(write_jsonl(tmp_path / "od.jsonl", recs), names, problems, label_map_path=tmp_path / "lm.json")
    codes = {(p.code, p.where) for ps in problems.examples.values() for p in ps}
    assert ("od-prompt-too-long", 1) in codes
    assert ("label-not-in-map", 3) in codes
    assert ("class-names-collide", "label 41") in codes
    assert ("class-name-no-tokens", "label 42") in codes
    assert ("label-map-prompt-too-long", None) in codes
    need = sum(lengths[str(i)] for i in range(40))
    assert res.max_prompt_tokens == need and need > 256
    assert res.classes_fitting < 40


def test_lint_cli_exit_status_and_json(cli, tmp_path, write_jsonl, write_json, od):
    ok = write_jsonl(tmp_path / "ok.jsonl", [_vg("a cat", [_reg("a cat", [[0, 5]])])])
    res = cli("lint", ok, "--json")
    assert res.returncode == 0 and json.loads(res.stdout)["errors"] == 0
    bad = write_jsonl(tmp_path / "bad.jsonl", [_vg("a     cat", [_reg("a", [[2, 4]])])])
    res = cli("lint", bad, "--json")
    assert res.returncode == 1 and json.loads(res.stdout)["errors"] == 1
    res = cli("lint", bad, "--strict")
    assert res.returncode == 1 and "span-no-tokens" not in res.stderr and "maps to no BERT token" in res.stderr
    lm = write_json(tmp_path / "lm.json", {"0": "cat"})
    res = cli("lint", write_jsonl(tmp_path / "od.jsonl", [od("a.jpg", [0])]), "-m", lm, "--json")
    assert res.returncode == 0 and json.loads(res.stdout)["label_map_prompt_tokens"] == 4  # [CLS] cat . [SEP]


def test_lint_local_tokenizer_dir(cli, tmp_path, write_jsonl):
    from odvgkit.tokenizer import bundled_vocab

    d = tmp_path / "tok"
    d.mkdir()
    (d / "vocab.txt").write_bytes(bundled_vocab().read_bytes())
    ok = write_jsonl(tmp_path / "ok.jsonl", [_vg("a cat", [_reg("a cat", [[0, 5]])])])
    res = cli("lint", ok, "--tokenizer", d, "--json")
    assert res.returncode == 0 and json.loads(res.stdout)["max_caption_tokens"] == len(["[CLS]", "a", "cat", ".", "[SEP]"])
