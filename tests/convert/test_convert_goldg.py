"""goldg2odvg / refcoco2odvg / extract coco-from-mixed on generated MDETR files.

Expected records are written out by hand from the upstream rules (spec §3.7), not computed.
"""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference.upstream_goldg2odvg import upstream_goldg2odvg

from odvgkit.convert import goldg
from odvgkit.convert.goldg import goldg_to_odvg
from odvgkit.errors import ProblemLog
from odvgkit.io.jsonl import JsonlWriter

CAPTION_1 = "the building near the building."
CAPTION_2 = "blue-green boat and a café"


def _mdetr(dump, tmp_path, name="final_mixed_train_no_coco.json"):
    data = {
        "info": {}, "licenses": [], "categories": [],
        "images": [
            # ids out of order: the output is sorted by id
            {"id": 20, "file_name": "b.jpg", "height": "100", "width": "200", "caption": CAPTION_1,
             "tokens_negative": [[0, 3]], "dataset_name": "gqa"},
            {"id": 3, "file_name": "a.jpg", "height": 50, "width": 60, "caption": CAPTION_2},
            {"id": 7, "file_name": "only_crowd.jpg", "height": 50, "width": 60, "caption": "x"},
            {"id": 8, "file_name": "only_tiny.jpg", "height": 50, "width": 60, "caption": "tiny"},
            {"id": 9, "file_name": "all_invalid.jpg", "height": 50, "width": 60, "caption": "far away"},
            {"id": 10, "file_name": "no_ann.jpg", "height": 50, "width": 60, "caption": "nothing"},
        ],
        "annotations": [
            {"id": 1, "image_id": 20, "bbox": [1, 2, 10, 10], "area": 100, "iscrowd": 0, "category_id": 1,
             "tokens_positive": [[4, 12]]},
            # same phrase text again: merged into one region, both spans kept; x2 clipped to 200
            {"id": 2, "image_id": 20, "bbox": [190.5, 2, 20, 10], "area": 100, "iscrowd": 0,
             "tokens_positive": [[22, 30]]},
            # spans given out of order; 'blue-green boat' → pieces ['blue', 'green boat']
            {"id": 3, "image_id": 3, "bbox": [0, 0, 5, 5], "area": 25, "iscrowd": 0,
             "tokens_positive": [[11, 15], [0, 4], [5, 10]]},
            {"id": 4, "image_id": 3, "bbox": [10, 10, 5, 5], "area": 25, "iscrowd": 1,
             "tokens_positive": [[22, 26]]},
            {"id": 5, "image_id": 3, "bbox": [10, 10, 5, 5], "area": 25, "iscrowd": 0,
             "tokens_positive": [[22, 26]]},
            {"id": 6, "image_id": 7, "bbox": [10, 10, 5, 5], "area": 25, "iscrowd": 1,
             "tokens_positive": [[0, 1]]},
            {"id": 7, "image_id": 8, "bbox": [10, 10, 1, 5], "area": 5, "iscrowd": 0,
             "tokens_positive": [[0, 4]]},
            {"id": 8, "image_id": 9, "bbox": [100, 100, 5, 5], "area": 25, "iscrowd": 0,
             "tokens_positive": [[0, 3]]},
        ],
    }
    return dump(tmp_path / name, data)


EXPECTED = [
    {"filename": "a.jpg", "height": 50, "width": 60, "grounding": {"caption": CAPTION_2, "regions": [
        {"bbox": [0, 0, 5, 5], "phrase": ["blue", "green boat"], "tokens_positive": [[0, 4], [5, 10], [11, 15]]},
        {"bbox": [10, 10, 15, 15], "phrase": "café", "tokens_positive": [[22, 26]]},
    ]}},
    {"filename": "all_invalid.jpg", "height": 50, "width": 60, "grounding": {"caption": "far away", "regions": []}},
    {"filename": "b.jpg", "height": 100, "width": 200, "grounding": {"caption": CAPTION_1, "regions": [
        {"bbox": [[1, 2, 11, 12], [190.5, 2, 200, 12]], "phrase": "building", "tokens_positive": [[4, 12], [22, 30]]},
    ]}},
]


def test_goldg_records_match_hand_derived(tmp_path, dump, read_jsonl, cli):
    src = _mdetr(dump, tmp_path)
    r = cli("convert", "goldg2odvg", src, "--json")
    assert r.returncode == 0, r.stderr
    out = tmp_path / "final_mixed_train_no_coco_vg.json"
    assert read_jsonl(out) == EXPECTED
    summary = json.loads(r.stdout)
    assert summary["dropped:crowd"] == 2
    assert summary["dropped:image-only-tiny-boxes"] == 1
    assert summary["dropped:image-without-annotation"] == 2  # only_crowd + no_ann
    assert summary["spans-kept-from-repeated-phrase"] == 1


WORDS = ["man", "red", "shirt", "dog", "café", "the", "a", "blue-green", "Ünïcode", "\"quoted\"", "back\\slash",
         "emoji😀", "tab\there", "new\nline", "ctl\x01\x1f", "del\x7f", "\u2028sep"]


@st.composite
def mdetr_documents(draw: st.DrawFn) -> dict:
    """Captions with repeated words and separators other than one space; boxes whose spans are
    unsorted, adjacent, overlapping, repeated; crowd, tiny and outside boxes; string sizes."""
    images, anns = [], []
    n_images = draw(st.integers(1, 6))
    for img_id in draw(st.permutations(range(100, 100 + n_images))):
        words = draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=8))
        seps = draw(st.lists(st.sampled_from([" ", "  ", "-", ", "]), min_size=len(words), max_size=len(words)))
        caption, spans = "", []
        for word, sep in zip(words, seps, strict=True):
            spans.append([len(caption), len(caption) + len(word)])
            caption += word + sep
        w, h = draw(st.integers(2, 60)), draw(st.integers(2, 60))
        suffix = draw(st.sampled_from(["", "é", '\\"q']))
        images.append({"id": img_id, "file_name": f"{img_id}{suffix}.jpg", "caption": caption,
                       "width": str(w) if draw(st.booleans()) else w, "height": h})
        for _ in range(draw(st.integers(0, 6))):
            chosen = draw(st.lists(st.sampled_from(spans), min_size=1, max_size=3))
            x, y = draw(st.integers(-5, w)), draw(st.integers(-5, h))
            bw, bh = draw(st.sampled_from([0.5, 1, 1.5, 3, 10, 40.25])), draw(st.sampled_from([0.5, 1, 2, 7, 40]))
            anns.append({"id": len(anns) + 1, "image_id": img_id, "category_id": 1, "bbox": [x, y, bw, bh], "area": bw * bh,
                         "iscrowd": draw(st.sampled_from([0, 0, 0, 1])), "tokens_positive": chosen})
    return {"info": {}, "images": images, "annotations": draw(st.permutations(anns)), "categories": []}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=mdetr_documents())
def test_goldg_matches_upstream_port_with_spans_kept(tmp_path, doc):
    src = tmp_path / "doc.json"
    src.write_text(json.dumps(doc, ensure_ascii=False), "utf-8")
    ours = list(goldg_to_odvg(src).records)
    assert ours == upstream_goldg2odvg(str(src), keep_spans=True)
    plain = upstream_goldg2odvg(str(src))
    for a, b in zip(ours, plain, strict=True):  # only the spans of repeated phrases differ
        for ra, rb in zip(a["grounding"]["regions"], b["grounding"]["regions"], strict=True):
            assert ra["tokens_positive"][:0] == [] and all(x in ra["tokens_positive"] for x in rb["tokens_positive"])
            assert (ra["bbox"], ra["phrase"]) == (rb["bbox"], rb["phrase"])


def _jsonl_bytes(src, native: object) -> tuple[bytes, dict]:
    """goldg2odvg's JSON Lines through the C formatter (``native`` = the module) or Python (None)."""
    saved = goldg._native
    goldg._native = native
    try:
        conv = goldg_to_odvg(src)
        return b"".join(chunk for chunk, _ in conv.jsonl_chunks), dict(conv.stats)
    finally:
        goldg._native = saved


def test_goldg_c_extension_is_built():
    """The C formatter is part of the product wherever a C compiler is (it is optional only at
    install, for machines without one): a silent build failure must not pass unnoticed here."""
    assert goldg._native is not None, "odvgkit.convert._goldg_format was not built: reinstall with a C compiler"


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=mdetr_documents())
def test_goldg_c_formatter_writes_the_python_paths_bytes(tmp_path, doc):
    """Same bytes and counts from the C and the Python formatter (control characters, quotes,
    4-byte UTF-8, repeated phrases, merged spans), and the records parse back to the dict path."""
    src = tmp_path / "doc.json"
    src.write_text(json.dumps(doc, ensure_ascii=False), "utf-8")
    c_bytes, c_stats = _jsonl_bytes(src, goldg._native)
    py_bytes, py_stats = _jsonl_bytes(src, None)
    assert c_bytes == py_bytes
    assert c_stats == py_stats
    assert [orjson.loads(line) for line in c_bytes.splitlines()] == list(goldg_to_odvg(src).records)


def test_goldg_c_annotation_columns_match_python():
    anns = [goldg.MdetrAnn(image_id=i * 7 - 3, bbox=(i + 0.5, -2.0, 1e-5 * i, 3.0), area=float(i % 3 - 1),
                           iscrowd=i % 4 - 1, tokens_positive=[(i, i + 2)] * (i % 3))
            for i in range(50)]
    saved = goldg._native
    try:
        c = goldg._ann_columns(anns)
        goldg._native = None
        py = goldg._ann_columns(anns)
    finally:
        goldg._native = saved
    assert len(c) == len(py) == 6
    for a, b in zip(c, py, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape and (a == b).all()
    assert c[4].tolist() == [i % 3 for i in range(50)]  # independent: spans per annotation
    assert c[3].tolist() == [i % 4 != 1 for i in range(50)]  # iscrowd != 0


def test_goldg_c_functions_reject_bad_arguments_with_errors_not_crashes():
    import numpy as np

    native = goldg._native
    cols = (np.empty(1, np.int64), np.empty((1, 4)), np.empty(1, bool), np.empty(1, bool), np.empty(1, np.int64))
    with pytest.raises(TypeError, match="type cls"):
        native.ann_columns([object()], goldg.MdetrAnn, *cols)
    with pytest.raises(TypeError, match="image_id"):
        native.ann_columns([], goldg.MdetrAnn, np.empty(1, np.int32), *cols[1:])
    i64 = np.zeros(2, np.int64)
    with pytest.raises(ValueError, match="outside a caption"):  # a span past the caption's end
        native.format_block(["ab"], ["a.jpg"], [1], [1], 0, np.ones(1, bool), np.array([0, 1]), b"[[0.0,0.0,1.0,1.0]]",
                            np.array([0]), np.array([0, 1]), np.array([0, 5]))
    with pytest.raises(ValueError, match="one row per box"):
        native.format_block(["ab"], ["a.jpg"], [1], [1], 0, np.ones(1, bool), np.array([0, 1]), b"[]",
                            np.array([0]), np.array([0, 1]), np.array([0, 1]))
    with pytest.raises(IndexError, match="outside the image lists"):
        native.format_block([], [], [], [], 0, np.ones(1, bool), i64, b"[]", i64, i64, i64)


@pytest.mark.parametrize("formatter", ["c", "python"])
def test_goldg_parallel_jsonl_is_byte_identical_to_records(tmp_path, dump, monkeypatch, formatter):
    """The CLI's path (blocks formatted on 2 threads in C, or in 2 forked workers in Python
    where the extension is not built) writes exactly what the records give."""
    if formatter == "python":
        monkeypatch.setattr(goldg, "_native", None)
    doc = json.loads(_mdetr(dump, tmp_path / "hand").read_text("utf-8"))
    for k in range(40):  # enough images for several blocks
        doc["images"].append({"id": 1000 + k, "file_name": f"x{k}.jpg", "caption": "red shirt man, red dog",
                              "width": 50, "height": 40})
        doc["annotations"] += [
            {"image_id": 1000 + k, "bbox": [k, 1.5, 9.25, 3], "area": 27.75, "iscrowd": 0, "tokens_positive": [[0, 3], [4, 9]]},
            {"image_id": 1000 + k, "bbox": [2, 3, 4, 5], "area": 20, "iscrowd": 0, "tokens_positive": [[15, 18]]},
        ]
    src = tmp_path / "doc.json"
    src.write_text(json.dumps(doc, ensure_ascii=False), "utf-8")
    monkeypatch.setattr(goldg, "_BLOCK", 7)
    monkeypatch.setattr(goldg, "_PARALLEL_MIN_BOXES", 0)
    monkeypatch.setattr(goldg, "WORKERS", 2)
    fast = goldg_to_odvg(src)
    chunks = list(fast.jsonl_chunks)
    assert len(chunks) > 5
    slow = goldg_to_odvg(src)
    writer = JsonlWriter(tmp_path / "records.jsonl")
    for rec in slow.records:
        writer.write(rec)
    writer.close()
    assert b"".join(c for c, _ in chunks) == (tmp_path / "records.jsonl").read_bytes()
    assert sum(n for _, n in chunks) == writer.count
    assert fast.stats == slow.stats and fast.stats["images"] == writer.count
    assert orjson.loads(chunks[-1][0].splitlines()[-1])["grounding"]["regions"][0]["phrase"] == "red shirt"


def test_goldg_bad_spans_and_unknown_images_are_one_line_errors(tmp_path, dump, cli):
    src = dump(tmp_path / "bad.json", {
        "images": [{"id": 1, "file_name": "a.jpg", "height": 10, "width": 10, "caption": "short"}],
        "annotations": [
            {"image_id": 1, "bbox": [0, 0, 5, 5], "area": 25, "iscrowd": 0, "tokens_positive": [[2, 40]]},
            {"image_id": 99, "bbox": [0, 0, 5, 5], "area": 25, "iscrowd": 0, "tokens_positive": [[0, 2]]},
        ],
    })
    r = cli("convert", "goldg2odvg", src, "-o", tmp_path / "out.jsonl")
    assert r.returncode == 1
    assert "tokens_positive: span [2, 40] is outside the caption (length 5)" in r.stderr
    assert "image_id: image id 99 is not in images[]" in r.stderr
    assert "Traceback" not in r.stderr
    strict = cli("convert", "goldg2odvg", src, "-o", tmp_path / "strict.jsonl", "--strict")
    assert strict.returncode == 1 and not (tmp_path / "strict.jsonl").exists()
    assert len(strict.stderr.strip().splitlines()) == 1


def test_goldg_missing_field_is_reported(tmp_path, dump):
    src = dump(tmp_path / "nocrowd.json", {
        "images": [{"id": 1, "file_name": "a.jpg", "height": 10, "width": 10, "caption": "ab"}],
        "annotations": [{"image_id": 1, "bbox": [0, 0, 5, 5], "area": 25, "tokens_positive": [[0, 2]]}],
    })
    problems = ProblemLog()
    records = list(goldg_to_odvg(src, problems).records)
    assert records == []
    assert problems.n_errors == 1
    assert "iscrowd" in problems.as_dict()["examples"][0]


def test_refcoco_one_output_per_input(tmp_path, dump, read_jsonl, cli):
    d = tmp_path / "mdetr"
    for name in ("finetune_refcoco_train.json", "finetune_refcocog_train.json"):
        dump(d / name, {
            "images": [
                {"id": 2, "file_name": "COCO_train2014_000000000009.jpg", "height": 10, "width": 10,
                 "caption": f"left dog {name[9:17]}"},
                {"id": 1, "file_name": "COCO_train2014_000000000009.jpg", "height": 10, "width": 10,
                 "caption": "the cat"},
            ],
            "annotations": [
                {"image_id": 1, "bbox": [1, 1, 3, 3], "area": 9, "iscrowd": 0, "tokens_positive": [[4, 7]]},
                {"image_id": 2, "bbox": [2, 2, 3, 3], "area": 9, "iscrowd": 0, "tokens_positive": [[5, 8]]},
            ],
        })
    r = cli("convert", "refcoco2odvg", d, "--out-dir", tmp_path / "vg")
    assert r.returncode == 0, r.stderr
    a = read_jsonl(tmp_path / "vg" / "finetune_refcoco_train_vg.json")
    g = read_jsonl(tmp_path / "vg" / "finetune_refcocog_train_vg.json")
    assert [x["grounding"]["caption"] for x in a] == ["the cat", "left dog refcoco_"]
    assert [x["grounding"]["caption"] for x in g] == ["the cat", "left dog refcocog"]
    assert a[0]["grounding"]["regions"] == [{"bbox": [1, 1, 4, 4], "phrase": "cat", "tokens_positive": [[4, 7]]}]
    # a missing input fails before anything is written
    r = cli("convert", "refcoco2odvg", d / "finetune_refcoco_train.json", d / "missing.json", "--out-dir", tmp_path / "x")
    assert r.returncode == 1 and "missing.json: no such file" in r.stderr
    assert not (tmp_path / "x").exists()
    # two inputs with the same output name are refused
    dump(tmp_path / "other" / "finetune_refcoco_train.json", {"images": [], "annotations": []})
    r = cli("convert", "refcoco2odvg", d / "finetune_refcoco_train.json", tmp_path / "other" / "finetune_refcoco_train.json",
            "--out-dir", tmp_path / "y")
    assert r.returncode == 1 and "would be written here" in r.stderr


def test_extract_coco_from_mixed(tmp_path, dump, cli):
    src = dump(tmp_path / "final_mixed_train.json", {
        "info": [], "licenses": [], "categories": [],
        "images": [
            {"id": 1, "data_source": "vg", "file_name": "1.jpg"},
            {"id": 3, "data_source": "coco", "file_name": "COCO_train2014_3.jpg"},
            {"id": 2, "data_source": "coco", "file_name": "COCO_train2014_2.jpg"},
        ],
        "annotations": [
            {"id": 10, "image_id": 2, "iscrowd": 1, "bbox": [1, 2, 3, 4]},
            {"id": 11, "image_id": 3, "iscrowd": 0, "bbox": [1, 2, 3, 4]},
            {"id": 12, "image_id": 1, "iscrowd": 0, "bbox": [1, 2, 3, 4]},
            {"id": 13, "image_id": 2, "iscrowd": 0, "bbox": [1, 2, 3, 4]},
        ],
    })
    r = cli("extract", "coco-from-mixed", src, "-q")
    assert r.returncode == 0, r.stderr
    out = json.loads((tmp_path / "final_mixed_train_only_coco.json").read_text())
    assert [im["id"] for im in out["images"]] == [3, 2]
    assert [a["id"] for a in out["annotations"]] == [11, 10, 13]  # per image in image order, crowd kept
    assert list(out) == ["info", "licenses", "categories", "images", "annotations"]
