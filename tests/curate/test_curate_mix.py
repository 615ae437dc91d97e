"""mix: source specs, per-epoch arithmetic, the manifest the trainer loads, MMDet snippet, materialize."""

from __future__ import annotations

import ast
import json
import math
from collections import Counter

import pytest

from odvgkit.curate.mix import epoch_counts, load_manifest, parse_spec, repeat_factors
from odvgkit.errors import OdvgError


@pytest.fixture
def sources(tmp_path, write_jsonl, write_json, od):
    a = write_jsonl(tmp_path / "a_od.jsonl", [od(f"a{i}.jpg", [i % 3]) for i in range(40)])
    lm_a = write_json(tmp_path / "a_lm.json", {"0": "cat", "1": "dog", "2": "bird"})
    b = write_jsonl(tmp_path / "b_od.jsonl", [od(f"b{i}.jpg", [0] if i < 18 else [1]) for i in range(20)])
    lm_b = write_json(tmp_path / "b_lm.json", {"0": "dog", "1": "zebra"})
    (tmp_path / "imgs").mkdir()
    return a, lm_a, b, lm_b


def test_parse_spec_grammar():
    s = parse_spec("x.jsonl:0.3,lm=map.json,root=img")
    assert s.options == {"ratio": "0.3", "label_map": "map.json", "image_root": "img"}
    assert parse_spec("x.jsonl:repeat=2").options == {"repeat": "2"}
    assert parse_spec("x.jsonl").options == {}
    with pytest.raises(OdvgError, match="unknown option"):
        parse_spec("x.jsonl:weight=2")
    with pytest.raises(OdvgError, match="cannot parse"):
        parse_spec("x.jsonl:repeat=2,fast")


def test_manifest_roundtrip_and_resolution(cli, tmp_path, sources):
    a, lm_a, b, lm_b = sources
    out = tmp_path / "m" / "mix.yaml"
    res = cli("mix", f"{a}:repeat=1.5,lm={lm_a},root={tmp_path / 'imgs'}", f"{b}:0.25,lm={lm_b},cbt=0.2,name=bee",
              "-o", out, "--seed", "7", "--json")
    assert res.returncode == 0, res.stderr
    m = load_manifest(out)
    assert m.seed == 7 and [s.name for s in m.sources] == ["a_od", "bee"]
    sa, sb = m.sources
    assert sa.path == a.resolve() and sa.label_map == lm_a.resolve() and sa.image_root == (tmp_path / "imgs").resolve()
    assert (sa.kind, sa.num_records, sa.repeat, sa.ratio, sa.samples) == ("od", 40, 1.5, None, None)
    assert sa.samples_per_epoch == 60
    # the ratio source takes 25% of the epoch: E = 60 / 0.75 = 80, 0.25 * 80 = 20
    assert (sb.ratio, sb.class_balanced_threshold, sb.samples_per_epoch) == (0.25, 0.2, 20)
    assert m.epoch_size == 80
    # JSON manifest holds the same
    out_json = tmp_path / "m" / "mix.json"
    res = cli("mix", f"{a}:repeat=1.5,lm={lm_a},root={tmp_path / 'imgs'}", f"{b}:0.25,lm={lm_b},cbt=0.2,name=bee",
              "-o", out_json, "--seed", "7", "-q")
    assert res.returncode == 0, res.stderr
    mj = load_manifest(out_json)
    assert mj.sources == m.sources and mj.epoch_size == 80
    raw = json.loads(out_json.read_text())
    assert raw["odvgkit_mixture"] == 1 and set(raw["sources"][0]) == {
        "name", "path", "kind", "label_map", "image_root", "num_records", "ratio", "repeat", "samples",
        "class_balanced_threshold", "samples_per_epoch"}


def test_manifest_paths_inside_its_directory_are_relative(cli, tmp_path, sources):
    a, lm_a, _, _ = sources
    out = tmp_path / "mix.json"
    assert cli("mix", f"{a}:lm={lm_a}", "-o", out, "-q").returncode == 0
    raw = json.loads(out.read_text())
    assert raw["sources"][0]["path"] == "a_od.jsonl" and raw["sources"][0]["label_map"] == "a_lm.json"
    assert raw["sources"][0]["repeat"] == 1.0 and raw["epoch_size"] == 40


def test_only_ratios_must_sum_to_one_and_use_epoch_size(cli, tmp_path, sources):
    a, lm_a, b, lm_b = sources
    out = tmp_path / "r.json"
    res = cli("mix", f"{a}:0.7,lm={lm_a}", f"{b}:0.3,lm={lm_b}", "--epoch-size", "1000", "-o", out, "-q")
    assert res.returncode == 0, res.stderr
    m = load_manifest(out)
    assert [s.samples_per_epoch for s in m.sources] == [700, 300]
    res = cli("mix", f"{a}:0.7,lm={lm_a}", f"{b}:0.2,lm={lm_b}", "-o", tmp_path / "bad.json")
    assert res.returncode != 0 and "sum to 0.9" in res.stderr and not (tmp_path / "bad.json").exists()


@pytest.mark.parametrize("spec_suffix, message", [
    (":ratio=abc", "not a number"),
    (":repeat=-2", "must be positive"),
    (":samples=1.5", "not an integer"),
    (":ratio=0.5,repeat=2", "only one of"),
    (":1.5", "at most 1"),
])
def test_ratios_that_do_not_parse(cli, tmp_path, sources, spec_suffix, message):
    a, lm_a, _, _ = sources
    out = tmp_path / "x.yaml"
    res = cli("mix", f"{a}{spec_suffix},lm={lm_a}", "-o", out)
    assert res.returncode != 0 and message in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and not out.exists()


def test_mismatched_label_map_and_missing_label_map(cli, tmp_path, sources, write_json):
    a, _, _, _ = sources
    small = write_json(tmp_path / "small.json", {"0": "cat", "1": "dog"})  # label 2 missing
    res = cli("mix", f"{a}:lm={small}", "-o", tmp_path / "x.yaml")
    assert res.returncode != 0 and "mismatched label map" in res.stderr and "a_od.jsonl:3" in res.stderr
    res = cli("mix", str(a), "-o", tmp_path / "x.yaml")
    assert res.returncode != 0 and "needs its label map" in res.stderr
    assert not (tmp_path / "x.yaml").exists()


def test_emit_mmdet_snippet_is_valid_python_with_the_manifest_values(cli, tmp_path, sources):
    a, lm_a, b, lm_b = sources
    snip = tmp_path / "datasets.py"
    res = cli("mix", f"{a}:repeat=2,lm={lm_a},root={tmp_path / 'imgs'}", f"{b}:samples=5,lm={lm_b},cbt=0.1",
              "-o", tmp_path / "m.yaml", "--emit-mmdet", snip, "--plain-mmdet", "-q")
    assert res.returncode == 0, res.stderr
    tree = ast.parse(snip.read_text())
    env = {"train_pipeline": ["PIPE"]}
    exec(compile(tree, str(snip), "exec"), env)
    ds = env["train_dataloader"]["dataset"]
    assert ds["type"] == "ConcatDataset" and ds["_delete_"] is True
    first, second = ds["datasets"]
    assert first["type"] == "RepeatDataset" and first["times"] == 2
    inner = first["dataset"]
    assert inner["type"] == "ODVGDataset" and inner["ann_file"] == str(a.resolve())
    assert inner["label_map_file"] == str(lm_a.resolve()) and inner["data_prefix"]["img"] == str((tmp_path / "imgs").resolve()) + "/"
    assert inner["pipeline"] == ["PIPE"]
    assert second["type"] == "ClassBalancedDataset" and second["oversample_thr"] == 0.1
    assert second["dataset"]["indices"] == 5


def test_materialize_one_epoch_merged_label_map(cli, tmp_path, sources, read_jsonl):
    a, lm_a, b, lm_b = sources
    out = tmp_path / "epoch.jsonl"
    args = ("mix", f"{a}:repeat=0.5,lm={lm_a},root={tmp_path / 'imgs'}", f"{b}:samples=30,lm={lm_b}",
            "-o", tmp_path / "m.yaml", "--materialize", out, "--seed", "3", "--json")
    res = cli(*args)
    assert res.returncode == 0, res.stderr
    recs = read_jsonl(out)
    assert len(recs) == 20 + 30
    lm = json.loads((tmp_path / "epoch_label_map.json").read_text())
    assert lm == {"0": "cat", "1": "dog", "2": "bird", "3": "zebra"}
    from_a = [r for r in recs if r["filename"].startswith(str((tmp_path / "imgs").resolve()))]
    assert len(from_a) == 20 and len({r["filename"] for r in from_a}) == 20  # half, without replacement
    from_b = [r for r in recs if r["filename"].startswith("b")]
    counts = Counter(r["filename"] for r in from_b)
    assert set(counts.values()) <= {1, 2} and sum(counts.values()) == 30  # 30 of 20: floor/ceil of 1.5
    # b's labels were remapped by name: dog 0→1, zebra 1→3
    b_labels = {r["detection"]["instances"][0]["label"] for r in from_b}
    assert b_labels <= {1, 3}
    first = out.read_bytes()
    assert cli(*args).returncode == 0 and out.read_bytes() == first  # same seed, same bytes


def test_epoch_counts_and_class_balance():
    counts = epoch_counts(10, 25, seed=1, name="x")
    assert sum(counts) == 25 and set(counts) <= {2, 3}
    assert epoch_counts(10, 25, seed=1, name="x") == counts
    assert epoch_counts(100, 150, seed=1, name="x", epoch=1) != epoch_counts(100, 150, seed=1, name="x", epoch=0)
    sets = [{0}] * 18 + [{1}] * 2
    rf = repeat_factors(sets, 0.5)
    # f(1) = 0.1 → r = sqrt(0.5/0.1); f(0) = 0.9 → 1
    assert rf[:18] == [1.0] * 18 and rf[18] == pytest.approx(math.sqrt(5))
    c = epoch_counts(20, 1000, seed=0, name="b", weights=rf)
    expected_rare = 1000 * math.sqrt(5) / (18 + 2 * math.sqrt(5))
    assert abs(c[18] - expected_rare) <= 1 and sum(c) == 1000


def test_materialize_refuses_mixed_kinds(cli, tmp_path, sources, write_jsonl):
    a, lm_a, _, _ = sources
    vg = write_jsonl(tmp_path / "vg.jsonl", [{"filename": "v.jpg", "height": 5, "width": 5,
                                              "grounding": {"caption": "a cat", "regions": []}}])
    res = cli("mix", f"{a}:lm={lm_a}", f"{vg}:samples=3", "-o", tmp_path / "m.yaml", "--materialize", tmp_path / "e.jsonl")
    assert res.returncode != 0 and "one kind per" in res.stderr
    assert not (tmp_path / "m.yaml").exists() and not (tmp_path / "e.jsonl").exists()
    res = cli("mix", f"{a}:lm={lm_a}", f"{vg}:samples=3", "-o", tmp_path / "m.yaml")
    assert res.returncode == 0
    assert [s.kind for s in load_manifest(tmp_path / "m.yaml").sources] == ["od", "vg"]


def test_load_manifest_errors(tmp_path):
    p = tmp_path / "m.yaml"
    p.write_text("odvgkit_mixture: 2\nsources: []\n")
    with pytest.raises(OdvgError, match="schema 2"):
        load_manifest(p)
    p.write_text("odvgkit_mixture: 1\nsources:\n- {name: a, path: a.jsonl, kind: od, num_records: 3, samples_per_epoch: 3, repeat: 1}\n")
    with pytest.raises(OdvgError, match="label_map: required"):
        load_manifest(p)
    with pytest.raises(OdvgError, match="no such manifest"):
        load_manifest(tmp_path / "nope.yaml")


def test_emit_mmdet_nests_class_balance_inside_repeat(tmp_path):
    from odvgkit.curate.mix import Manifest, MixSource, emit_mmdet

    src = MixSource("a", tmp_path / "a.jsonl", "od", tmp_path / "lm.json", None, 10, repeat=3.0,
                    class_balanced_threshold=0.01, samples_per_epoch=30)
    vg = MixSource("g", tmp_path / "g.jsonl", "vg", None, tmp_path / "img", 10, samples=10, samples_per_epoch=10)
    env: dict = {"train_pipeline": []}
    exec(emit_mmdet(Manifest((src, vg), 0, 40), plain=True), env)
    a = env["a_dataset"]
    # mmengine's ClassBalancedDataset calls dataset.get_cat_ids, which RepeatDataset lacks: it goes inside
    assert (a["type"], a["times"], a["dataset"]["type"], a["dataset"]["oversample_thr"]) == ("RepeatDataset", 3, "ClassBalancedDataset", 0.01)
    assert a["dataset"]["dataset"]["type"] == "ODVGDataset"
    g = env["g_dataset"]
    assert g["type"] == "ODVGDataset" and "label_map_file" not in g and "indices" not in g
