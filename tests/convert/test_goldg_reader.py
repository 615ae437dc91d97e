"""goldg2odvg's C reader (``_goldg_parse``) against the msgspec reader, the fallback, and the oracle.

The C reader takes only well-formed files of the plain MDETR shape and hands everything else to
the msgspec reader; these tests pin both halves of that promise: on files it takes it gives the
msgspec reader's columns (hence the same output bytes), on files it does not take it gives up
(``None``) and the output and messages are exactly the msgspec reader's.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference.upstream_goldg2odvg import upstream_goldg2odvg

from odvgkit.convert import goldg
from odvgkit.convert.coco import lookup
from odvgkit.convert.fields import INT64_MAX, INT64_MIN
from odvgkit.convert.goldg import goldg_to_odvg, read_mdetr
from odvgkit.errors import ProblemLog

REPO = Path(__file__).resolve().parents[2]


def _columns_equal(a: goldg.MdetrColumns, b: goldg.MdetrColumns) -> None:
    for f in dataclasses.fields(a):
        if f.name == "ann_where":  # batch bookkeeping (one batch vs several): compared via messages
            continue
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y), f.name
        else:
            assert x == y, f.name


def _msgspec_columns(path: Path) -> tuple[goldg.MdetrColumns, ProblemLog]:
    problems = ProblemLog()
    return goldg._read_mdetr_msgspec(path, problems), problems


def _native(path: Path) -> object:
    return goldg._native_parse(bytes(path), None)


def test_goldg_c_reader_is_built():
    assert goldg._native_parse is not None, "odvgkit.convert._goldg_parse was not built: reinstall with a C compiler"


WORDS = ["man", "red", "shirt", "café", "naïve", "Zoë", "🙂", "tab\there", "line\nbreak", 'q"uote', "back\\slash",
         "\u0001ctl", "a/b"]
NUMBERS = st.one_of(
    st.integers(-5, 600),
    st.floats(-5, 600, allow_nan=False, allow_infinity=False),
    st.sampled_from([0.5, 1e-7, 1.5e2, 12345.678901234567, -0.0, 0.1 + 0.2, 2.5e-06, 1e22, 123456789012345678]),
)


@st.composite
def mdetr_files(draw: st.DrawFn) -> tuple[dict, dict]:
    """MDETR documents with every real key (in varying order), escaped and raw unicode, control
    characters, numbers in every JSON form, string sizes, unknown nested values; and how to dump them."""
    images, anns = [], []
    ids = draw(st.lists(st.integers(-3, 10**6), min_size=1, max_size=6, unique=True))
    for img_id in ids:
        words = draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=6))
        caption, spans = "", []
        for w in words:
            spans.append([len(caption), len(caption) + len(w)])
            caption += w + draw(st.sampled_from([" ", ", ", "-"]))
        w, h = draw(st.integers(1, 900)), draw(st.integers(1, 900))
        fields = {
            "caption": caption, "dataset_name": draw(st.sampled_from(["gqa", "flickr", "VG"])),
            "tokens_negative": draw(st.lists(st.sampled_from(spans), max_size=3)), "sentence_id": draw(st.integers(0, 4)),
            "original_img_id": draw(st.integers(0, 10**9)), "tokens_positive_eval": [[s] for s in spans[:2]],
            "file_name": str(img_id) + draw(st.sampled_from(["", "é", "🙂", "\\"])) + ".jpg",
            "height": str(h) if draw(st.booleans()) else h, "width": str(w) if draw(st.booleans()) else w, "id": img_id,
            "extra": draw(st.sampled_from([None, True, False, {"a": [1, {"b": "c"}]}, [], {}, "x", -1.5e300])),
        }
        order = draw(st.permutations(list(fields)))
        images.append({k: fields[k] for k in order})
        for _ in range(draw(st.integers(0, 5))):
            chosen = draw(st.lists(st.sampled_from(spans), max_size=3))
            ann = {"area": draw(NUMBERS), "iscrowd": draw(st.sampled_from([0, 0, 1, -1])), "image_id": img_id,
                   "category_id": 1, "id": len(anns) + 7, "bbox": [draw(NUMBERS) for _ in range(4)],
                   "tokens_positive": chosen}
            if draw(st.booleans()):
                ann["phrase_ids"] = draw(st.integers(0, 3))
            order = draw(st.permutations(list(ann)))
            anns.append({k: ann[k] for k in order})
    doc = {"info": {"v": [1, 2.5, "x"]}, "licenses": [], "images": images, "annotations": draw(st.permutations(anns)),
           "categories": [{"id": 1, "name": "object"}]}
    order = draw(st.permutations(list(doc)))
    dump = {"ensure_ascii": draw(st.booleans()), "indent": draw(st.sampled_from([None, 1, "\t"]))}
    return {k: doc[k] for k in order}, dump


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=mdetr_files())
def test_goldg_c_reader_gives_the_msgspec_readers_columns(tmp_path, case):
    doc, dump = case
    src = tmp_path / "doc.json"
    src.write_text(json.dumps(doc, **dump), "utf-8")
    assert _native(src) is not None  # every document here is of the plain shape
    ours = read_mdetr(src, problems := ProblemLog())
    ref, ref_problems = _msgspec_columns(src)
    _columns_equal(ours, ref)
    assert problems.as_dict() == ref_problems.as_dict()  # duplicate ids are warned about by both


IMG = '{"id": 1, "file_name": "a.jpg", "height": 10, "width": 20, "caption": "red shirt"}'
ANN = '{"image_id": 1, "bbox": [1, 2, 3, 4], "area": 12, "iscrowd": 0, "tokens_positive": [[0, 3]]}'


def _doc(images: str = IMG, anns: str = ANN) -> str:
    return '{"images": [' + images + '], "annotations": [' + anns + ']}'


NOT_TAKEN = {
    "lone surrogate in a caption": _doc(images=IMG.replace("red shirt", "red \\ud800 shirt")),
    "invalid UTF-8 in a caption": _doc(images=IMG.replace("red shirt", "red \udcff shirt")),
    "invalid UTF-8 in a field nobody reads": _doc(images=IMG.replace('"id": 1,', '"id": 1, "x": "\udcff",')),
    "UTF-8 of a surrogate in a field nobody reads": _doc(images=IMG.replace('"id": 1,', '"id": 1, "x": "\udced\udca0\udc80",')),
    "overlong UTF-8 in a key nobody reads": _doc(images=IMG.replace('"id": 1,', '"id": 1, "\udcc1\udcbf": 1,')),
    "lone surrogate in a field nobody reads": _doc(anns=ANN.replace('"area"', '"x": "\\udc00", "area"')),
    "high surrogate without its low one": _doc(anns=ANN.replace('"area"', '"x": "\\ud800\\u0041", "area"')),
    "repeated key": _doc(images=IMG.replace('"id": 1,', '"id": 2, "id": 1,')),
    "escaped key": _doc(images=IMG.replace('"caption"', '"capt\\u0069on"')),
    "float id": _doc(images=IMG.replace('"id": 1', '"id": 1.0')),
    "size not a number": _doc(images=IMG.replace('"height": 10', '"height": "ten"')),
    "size zero": _doc(images=IMG.replace('"height": 10', '"height": 0')),
    "size as a float": _doc(images=IMG.replace('"height": 10', '"height": 10.5')),
    "size as a signed string": _doc(images=IMG.replace('"height": 10', '"height": "+10"')),
    "missing caption": _doc(images=IMG.replace(', "caption": "red shirt"', "")),
    "bbox of three": _doc(anns=ANN.replace("[1, 2, 3, 4]", "[1, 2, 3]")),
    "bbox of strings": _doc(anns=ANN.replace("[1, 2, 3, 4]", '["1", 2, 3, 4]')),
    "span of three": _doc(anns=ANN.replace("[[0, 3]]", "[[0, 3, 4]]")),
    "iscrowd false": _doc(anns=ANN.replace('"iscrowd": 0', '"iscrowd": false')),
    "image id beyond 64 bits": _doc(anns=ANN.replace('"image_id": 1', f'"image_id": {INT64_MAX + 1}')),
    "bbox beyond float": _doc(anns=ANN.replace("[1, 2, 3, 4]", "[1e400, 2, 3, 4]")),
    "null element": _doc(anns=ANN + ", null"),
    "images not an array": '{"images": {}, "annotations": [' + ANN + "]}",
    "no annotations": '{"images": [' + IMG + "]}",
    "repeated top-level key": _doc()[:-1] + ', "images": []}',
    "trailing garbage": _doc() + " x",
    "truncated": _doc()[:-3],
    "leading zero": _doc(anns=ANN.replace('"area": 12', '"area": 012')),
    "raw control character": _doc(images=IMG.replace("red shirt", "red\x01shirt")),
    "byte-order mark": "\ufeff" + _doc(),
    "top level array": "[" + _doc() + "]",
    "empty file": "",
}


@pytest.mark.parametrize("case", sorted(NOT_TAKEN))
def test_goldg_c_reader_gives_up_and_the_msgspec_reader_decides(tmp_path, case):
    """Output, problems and errors are exactly the msgspec reader's."""
    src = tmp_path / "doc.json"
    src.write_bytes(NOT_TAKEN[case].encode("utf-8", "surrogateescape"))
    assert _native(src) is None
    problems, ref_problems = ProblemLog(), ProblemLog()
    try:
        ours = read_mdetr(src, problems)
    except Exception as exc:  # the msgspec reader raises the same, with the same message
        with pytest.raises(type(exc)) as ref_exc:
            goldg._read_mdetr_msgspec(src, ref_problems)
        assert str(ref_exc.value) == str(exc)
        return
    ref = goldg._read_mdetr_msgspec(src, ref_problems)
    _columns_equal(ours, ref)
    assert [ours.ann_locator(i) for i in range(len(ours.ann_img))] == [ref.ann_locator(i) for i in range(len(ref.ann_img))]
    assert problems.as_dict() == ref_problems.as_dict()


def test_goldg_c_reader_progress_counts_the_file_once(tmp_path):
    """The progress callback adds up to the file's size, also when the C reader gave up midway
    and the msgspec reader read the file again."""
    good = tmp_path / "good.json"
    good.write_text(_doc(anns=", ".join([ANN] * 120_000)), "utf-8")
    bad = tmp_path / "bad.json"  # taken until its last annotation
    bad.write_text(_doc(anns=", ".join([ANN] * 120_000 + [ANN.replace('"iscrowd": 0', '"iscrowd": 0.5')])), "utf-8")
    for src in (good, bad):
        seen: list[int] = []
        cols = read_mdetr(src, problems := ProblemLog(), seen.append)
        assert sum(seen) == src.stat().st_size
        assert len(cols.ann_img) == 120_000 and len(seen) > 1
    assert problems.n_errors == 1  # the float iscrowd, reported by the msgspec reader


def test_goldg_group_order_is_numpys_stable_argsort():
    rng = np.random.default_rng(3)
    for n_groups, n in ((1, 0), (1, 5), (7, 1000), (50_000, 20_000)):
        keys = rng.integers(0, n_groups, n)
        assert np.array_equal(goldg._group_order(keys, n_groups), np.argsort(keys, kind="stable"))
    with pytest.raises(ValueError, match="outside"):
        goldg._native_group(np.array([0, 3]), 3)
    with pytest.raises(ValueError, match="int64"):
        goldg._native_group(b"abc", 3)


def test_goldg_image_lookup_table_and_search_agree():
    """The table lookup (compact ids) and the binary search (sparse ids) give the same rows;
    annotations of unknown images, also at the int64 limits, are not matched."""
    rng = np.random.default_rng(5)
    probes = np.array([INT64_MIN, INT64_MIN + 1, -7, 0, 1, 2, 99, 5_000, INT64_MAX - 1, INT64_MAX])
    for ids in (np.array([0]), np.unique(rng.integers(-50, 5_000, 800)), np.array([INT64_MIN + 1, 0, INT64_MAX - 1]),
                np.array([INT64_MIN, 5, INT64_MAX]), np.unique(rng.integers(0, 10**12, 300))):
        ann = np.concatenate([probes, rng.choice(ids, 500)])
        row, known = lookup(ids, ann)  # what goldg2odvg matches annotations to images with
        where = np.searchsorted(ids, ann)
        expect_known = (where < len(ids)) & (ids[np.minimum(where, len(ids) - 1)] == ann)
        assert np.array_equal(known, expect_known)
        assert np.array_equal(ids[row[known]], ann[known])


def _realistic(tmp_path: Path) -> Path:
    """A small file from the benchmark's MDETR-shaped generator (benchmarks/realistic/goldg.py)."""
    spec = importlib.util.spec_from_file_location("realistic_goldg", REPO / "benchmarks" / "realistic" / "goldg.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    src = tmp_path / "final_goldg_train.json"
    mod._write(src, 400, 1_550, seed=11)
    return src


def _jsonl(src: Path, monkeypatch, reader: bool, formatter: bool) -> tuple[bytes, dict]:
    with monkeypatch.context() as m:
        if not reader:
            m.setattr(goldg, "_native_parse", None)
            m.setattr(goldg, "_native_group", None)
        if not formatter:
            m.setattr(goldg, "_native", None)
        conv = goldg_to_odvg(src)
        return b"".join(chunk for chunk, _ in conv.jsonl_chunks), dict(conv.stats)


def test_goldg_realistic_file_same_bytes_on_every_path_and_the_oracles_records(tmp_path, monkeypatch):
    """C reader + C formatter (the default), msgspec reader + Python formatter (no C compiler)
    and the mixes write the same bytes; the records are the upstream port's (spans kept)."""
    src = _realistic(tmp_path)
    assert _native(src) is not None
    outputs = {(r, f): _jsonl(src, monkeypatch, r, f) for r in (True, False) for f in (True, False)}
    (data, stats), *others = outputs.values()
    assert all(o == (data, stats) for o in others)
    records = [orjson.loads(line) for line in data.splitlines()]
    assert stats["images"] == len(records) > 350
    assert stats["spans-kept-from-repeated-phrase"] > 0  # the generator repeats phrases
    assert records == upstream_goldg2odvg(str(src), keep_spans=True)
