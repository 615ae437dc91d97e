"""labels: rename styles, merge by name, contiguous remap and its reversal, mismatches."""

from __future__ import annotations

import json

from odvgkit.curate.labels import contiguous, merge, normalise, o365_fixes, rename


def test_normalise_styles():
    assert normalise("bat_(animal)", "lvis") == "bat (animal)"
    assert normalise("bow_(weapon)", "lvis") == "bow (weapon)"
    assert normalise("Moniter/TV", "o365") == "Monitor/TV"
    assert normalise("Bakset", "o365") == "Basket"
    assert normalise("Person", "o365") == "Person"
    assert normalise("  Traffic   Light ", "lower") == "traffic light"
    assert len(o365_fixes()) >= 5
    assert rename({"0": "Dinning Table", "1": "bat_(animal)"}, ["o365", "lvis", "lower"]) == {"0": "dining table", "1": "bat (animal)"}


def test_merge_and_contiguous():
    merged, tables = merge([{"0": "person", "1": "dog"}, {"0": "Dog", "1": "zebra", "5": "person"}], ["lower"])
    assert merged == {"0": "person", "1": "dog", "2": "zebra"}
    assert tables == [{0: 0, 1: 1}, {0: 1, 1: 2, 5: 0}]
    dense, table = contiguous({"3": "c", "0": "a", "10": "z"})
    assert dense == {"0": "a", "1": "c", "2": "z"} and table == {0: 0, 3: 1, 10: 2}


def test_remap_roundtrip_cli(cli, tmp_path, write_jsonl, write_json, read_jsonl, od):
    lm = write_json(tmp_path / "sparse_lm.json", {"0": "a", "4": "e", "9": "j"})
    recs = [od("x.jpg", [9, 0]), od("y.jpg", [4])]
    names = {0: "a", 4: "e", 9: "j"}
    for r in recs:
        for inst in r["detection"]["instances"]:
            inst["category"] = names[inst["label"]]
    src = write_jsonl(tmp_path / "sparse.jsonl", recs)
    res = cli("labels", "remap", src, "-m", lm, "-o", tmp_path / "dense" / "d.jsonl", "--json")
    assert res.returncode == 0, res.stderr
    dense = read_jsonl(tmp_path / "dense" / "d.jsonl")
    assert [[i["label"] for i in r["detection"]["instances"]] for r in dense] == [[2, 0], [1]]
    assert json.loads((tmp_path / "dense" / "d_label_map.json").read_text()) == {"0": "a", "1": "e", "2": "j"}
    res = cli("labels", "remap", tmp_path / "dense" / "d.jsonl", "-m", tmp_path / "dense" / "d_label_map.json",
              "--mapping", tmp_path / "dense" / "d_mapping.json", "--reverse", "-o", tmp_path / "back" / "b.jsonl", "-q")
    assert res.returncode == 0, res.stderr
    assert read_jsonl(tmp_path / "back" / "b.jsonl") == recs
    assert json.loads((tmp_path / "back" / "b_label_map.json").read_text()) == {"0": "a", "4": "e", "9": "j"}


def test_remap_onto_merged_map_and_mismatch(cli, tmp_path, write_jsonl, write_json, read_jsonl, od):
    lm_a = write_json(tmp_path / "a_lm.json", {"0": "person", "1": "dog"})
    lm_b = write_json(tmp_path / "b_lm.json", {"0": "dog", "1": "zebra"})
    res = cli("labels", "merge", lm_a, lm_b, "-o", tmp_path / "merged.json", "-q")
    assert res.returncode == 0, res.stderr
    merged = json.loads((tmp_path / "merged.json").read_text())
    assert merged == {"0": "person", "1": "dog", "2": "zebra"}
    mapping = json.loads((tmp_path / "merged_mapping.json").read_text())
    assert mapping["sources"][1]["old_to_new"] == {"0": 1, "1": 2}
    b = write_jsonl(tmp_path / "b.jsonl", [od("z.jpg", [1, 0])])
    res = cli("labels", "remap", b, "-m", lm_b, "--to", tmp_path / "merged.json", "-o", tmp_path / "bm.jsonl", "-q")
    assert res.returncode == 0, res.stderr
    out = read_jsonl(tmp_path / "bm.jsonl")[0]["detection"]["instances"]
    assert [(i["label"], i["category"]) for i in out] == [(2, "zebra"), (1, "dog")]
    # a target map lacking a class, and a record label missing from its own map: one-line errors, nothing written
    res = cli("labels", "remap", b, "-m", lm_b, "--to", lm_a, "-o", tmp_path / "x.jsonl")
    assert res.returncode != 0 and "mismatched label maps" in res.stderr and not (tmp_path / "x.jsonl").exists()
    bad = write_jsonl(tmp_path / "bad.jsonl", [od("z.jpg", [0]), od("w.jpg", [7])])
    res = cli("labels", "remap", bad, "-m", lm_b, "-o", tmp_path / "y.jsonl")
    assert res.returncode != 0 and "bad.jsonl:2" in res.stderr and "mismatched label map" in res.stderr
    assert not (tmp_path / "y.jsonl").exists() and not (tmp_path / "y_label_map.json").exists()


def test_rename_cli_reports_collisions(cli, tmp_path, write_json):
    lm = write_json(tmp_path / "lm.json", {"0": "Dog", "1": "dog", "2": "bat_(animal)"})
    table = tmp_path / "t.csv"
    table.write_text("old,new\nbat_(animal),flying mammal\n")
    res = cli("labels", "rename", lm, "-s", "lower", "-t", table, "-o", tmp_path / "out.json")
    assert res.returncode == 0, res.stderr
    assert json.loads((tmp_path / "out.json").read_text()) == {"0": "dog", "1": "dog", "2": "flying mammal"}
    assert "duplicate name" in res.stderr
    res = cli("labels", "rename", lm, "-s", "fancy", "-o", tmp_path / "o2.json")
    assert res.returncode != 0 and "--style" in res.stderr and not (tmp_path / "o2.json").exists()
