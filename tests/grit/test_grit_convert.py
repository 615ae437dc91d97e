"""grit2odvg's rules, sample by sample, against hand-derived expectations (docs/deviations.md)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from odvgkit.convert.grit import GritOptions, ShardResult, convert_samples, write_grit
from odvgkit.errors import OdvgError, ProblemLog
from odvgkit.grit.download import DownloadOptions, check_output_folder, img2dataset_kwargs, metadata_columns
from odvgkit.grit.engine import run_local


def sample(caption: str, refs: list[list[float]], w: int = 100, h: int = 50, key: str = "000010001", **extra: Any) -> dict[str, Any]:
    return {"key": key, "caption": caption, "width": w, "height": h, "ref_exps": refs,
            "filename": f"images/00001/{key}.jpg", **extra}


def convert(samples: list[Any], **opts: Any) -> tuple[list[dict[str, Any]], ShardResult]:
    res = ShardResult(shard="00001")
    return convert_samples(samples, GritOptions(**opts), res, "samples"), res


def test_phrase_filters_look_at_the_phrase_not_the_caption() -> None:
    # upstream tests the whole caption: "A dog on a sofa." has spaces → every ref dropped
    recs, res = convert([sample("A dog on a sofa.", [[2, 5, 0.1, 0.2, 0.5, 0.6, 0.9], [0, 5, 0, 0, 1, 1, 0.9]])])
    assert recs == [{"filename": "images/00001/000010001.jpg", "height": 50, "width": 100, "grounding": {
        "caption": "A dog on a sofa.",
        "regions": [{"bbox": [10.0, 10.0, 50.0, 30.0], "phrase": "dog", "tokens_positive": [[2, 5]]}]}}]
    assert res.stats["refs_dropped:multi-word"] == 1


def test_multi_word_option_keeps_phrases_with_spaces() -> None:
    recs, _res = convert([sample("A dog on a sofa.", [[0, 5, 0, 0, 1, 1, 0.9]])], multi_word=True)
    assert recs[0]["grounding"]["regions"] == [{"bbox": [0.0, 0.0, 100.0, 50.0], "phrase": "A dog", "tokens_positive": [[0, 5]]}]


@pytest.mark.parametrize(("phrase_span", "caption", "reason"), [
    ((0, 5), "dog's bone", "phrase-punctuation"),
    ((0, 6), 'a"b"cd', "phrase-punctuation"),
    ((0, 3), "a.b", "phrase-punctuation"),
    ((0, 4), "café", "non-ascii"),
])
def test_phrase_rejections(phrase_span: tuple[int, int], caption: str, reason: str) -> None:
    recs, res = convert([sample(caption, [[*phrase_span, 0, 0, 1, 1, 0.9]])])
    assert recs == [] and res.stats[f"refs_dropped:{reason}"] == 1 and res.stats["dropped:no-regions"] == 1


def test_trailing_delimiter_is_ignored_like_upstream() -> None:
    recs, _ = convert([sample("Sunflowers.", [[0, 11, 0, 0, 1, 1, 0.9]])])
    assert recs[0]["grounding"]["regions"][0]["phrase"] == "Sunflowers."


def test_emoji_and_ascii_options() -> None:
    s = sample("dog😀 run", [[0, 4, 0, 0, 1, 1, 0.9]])
    assert convert([s])[1].stats["refs_dropped:non-ascii"] == 1
    assert convert([s], ascii_only=False)[1].stats["refs_dropped:emoji"] == 1
    recs, _ = convert([s], ascii_only=False, drop_emoji=False)
    assert recs[0]["grounding"]["regions"][0]["phrase"] == "dog😀"


def test_box_filters_test_the_box() -> None:
    refs = [
        [0, 1, 1.0, 0.0, 1.2, 1.0, 0.9],  # starts at the right edge: no overlap
        [2, 3, 0.5, 0.5, 0.505, 0.9, 0.9],  # 0.5 px wide
        [4, 5, 0.5, -0.1, 1.2, 0.5, 0.9],  # partly outside: clipped
        [4, 5, 0.5, -0.1, 1.2, 0.5, 0.9],  # exact repeat
    ]
    recs, res = convert([sample("a b c", refs)])
    assert recs[0]["grounding"]["regions"] == [{"bbox": [50.0, 0.0, 100.0, 25.0], "phrase": "c", "tokens_positive": [[4, 5]]}]
    assert (res.stats["refs_dropped:outside-image"], res.stats["refs_dropped:tiny-box"],
            res.stats["boxes_clipped"], res.stats["refs_dropped:duplicate"]) == (1, 1, 2, 1)


def test_invalid_spans_are_counted_not_fatal() -> None:
    refs = [[5, 99, 0, 0, 1, 1, 0.9], [2.5, 4, 0, 0, 1, 1, 0.9], [3, 3, 0, 0, 1, 1, 0.9], ["x", 2, 0, 0, 1, 1], [1, 2],
            [0, 3, 0, 0, 1, 1, 0.9]]
    recs, res = convert([sample("cat", refs)])
    assert recs[0]["grounding"]["regions"][0]["phrase"] == "cat"
    assert res.stats["refs_dropped:invalid-span"] == 4 and res.stats["refs_dropped:malformed"] == 1
    assert {p[1] for p in res.problems} == {"invalid-span", "malformed-ref"}
    assert all(p[0] == "warning" for p in res.problems)


def test_leading_whitespace_shifts_spans_like_the_loader_strips() -> None:
    recs, _ = convert([sample("  A dog.", [[4, 7, 0, 0, 1, 1, 0.9]])])
    g = recs[0]["grounding"]
    assert g["caption"] == "A dog." and g["regions"][0]["tokens_positive"] == [[2, 5]]
    s, e = g["regions"][0]["tokens_positive"][0]
    assert g["caption"].lower().strip()[s:e] == "dog"


def test_token_limit_and_caption_markers() -> None:
    # [CLS] a dog on a sofa . [SEP] = 8 tokens
    s = sample("A dog on a sofa.", [[2, 5, 0, 0, 1, 1, 0.9]])
    assert convert([s], token_limit=8)[1].stats["dropped:too-many-tokens"] == 1
    assert len(convert([s], token_limit=9)[0]) == 1
    marked = sample("A dog [SEP] sofa.", [[2, 5, 0, 0, 1, 1, 0.9]])
    assert convert([marked])[1].stats["dropped:caption-markers"] == 1


def test_missing_columns_are_errors_counted_per_sample() -> None:
    bad = [{"key": "1", "caption": "x", "width": 10, "height": 10},
           {"key": "2", "caption": 3, "width": 10, "height": 10, "ref_exps": []},
           {"key": "3", "caption": "x", "width": 0, "height": 10, "ref_exps": []},
           "not a dict",
           sample("cat", [[0, 3, 0, 0, 1, 1, 0.9]])]
    recs, res = convert(bad)
    assert len(recs) == 1
    assert res.stats["dropped:missing-column"] == 1 and res.stats["dropped:bad-field"] == 2
    assert res.stats["dropped:bad-sample"] == 1 and res.stats["samples"] == 5
    assert [(p[0], p[1], p[2], p[3]) for p in res.problems] == [
        ("error", "missing-column", "samples[0]", "ref_exps"), ("error", "bad-field", "samples[1]", "caption"),
        ("error", "bad-field", "samples[2]", "width"), ("error", "bad-sample", "samples[3]", None)]


def test_noun_chunks_and_upstream_layout_filename() -> None:
    s = {"key": "000020003", "caption": "cat", "width": 10, "height": 10, "ref_exps": [],
         "noun_chunks": [[0.0, 3.0, 0.0, 0.0, 1.0, 1.0, 0.5]]}
    recs, _ = convert([s], phrases="noun_chunks")
    assert recs[0]["filename"] == "images/00002/000020003.jpg"  # upstream grit_processing layout
    assert recs[0]["grounding"]["regions"][0]["tokens_positive"] == [[0, 3]]


def _write_shards(root: Path, n: int) -> None:
    ann = root / "annotations"
    ann.mkdir(parents=True)
    for i in range(n):
        samples = [sample(f"cat number {j}", [[0, 3, 0.1 * j % 1, 0, 1, 1, 0.9]], key=f"{i:05d}{j:04d}") for j in range(7, -1, -1)]
        (ann / f"{i:05d}.json").write_text(json.dumps(samples))
    (ann / "00099.json").write_text("[{not json")
    (ann / "grit20m_vg.json").write_text("ignored, like upstream")


def test_pool_output_is_deterministic_and_bad_files_are_counted(tmp_path: Path) -> None:
    _write_shards(tmp_path, 5)
    outs = []
    for workers in (1, 2):
        problems = ProblemLog()
        out = tmp_path / f"vg{workers}.jsonl"
        totals, _rows = write_grit(tmp_path, out, GritOptions(), lambda fn, items, w=workers: run_local(fn, items, w), problems)
        outs.append(out.read_bytes())
        assert totals["records"] == 40 and totals["unreadable_files"] == 1 and totals["shards"] == 6
        assert problems.counts[("error", "corrupt-annotations")] == 1
    assert outs[0] == outs[1]
    keys = [json.loads(line)["filename"] for line in outs[0].decode().splitlines()]
    assert keys == sorted(keys)  # shard order, then key order whatever the input order


def test_strict_leaves_no_output(tmp_path: Path) -> None:
    _write_shards(tmp_path, 2)
    out = tmp_path / "vg.jsonl"
    with pytest.raises(OdvgError, match=r"00099\.json"):
        write_grit(tmp_path, out, GritOptions(), lambda fn, items: run_local(fn, items, 1), ProblemLog(strict=True))
    assert not out.exists() and not list(tmp_path.glob(".vg.jsonl*"))


def test_parquet_output_holds_the_same_records(tmp_path: Path) -> None:
    from odvgkit.io import iter_records

    _write_shards(tmp_path, 2)
    run = lambda fn, items: run_local(fn, items, 1)  # noqa: E731
    write_grit(tmp_path, tmp_path / "a.jsonl", GritOptions(), run, ProblemLog())
    write_grit(tmp_path, tmp_path / "a.parquet", GritOptions(), run, ProblemLog())
    assert list(iter_records(tmp_path / "a.parquet")) == list(iter_records(tmp_path / "a.jsonl"))


def test_download_call_keeps_boxes_valid(tmp_path: Path) -> None:
    meta = tmp_path / "m.parquet"
    pq.write_table(pa.table({"key": ["a"], "url": ["u"], "caption": ["c"], "width": [1], "height": [1],
                             "id": [1], "ref_exps": [[[0.0, 1.0, 0, 0, 1, 1, 1]]], "noun_chunks": [[[0.0, 1.0, 0, 0, 1, 1, 1]]]}), meta)
    cols = metadata_columns([meta])
    assert cols == ["id", "ref_exps", "noun_chunks"]
    kw = img2dataset_kwargs(tmp_path, tmp_path / "raw", cols, DownloadOptions())
    assert kw["resize_mode"] == "keep_ratio" and kw["enable_wandb"] is False
    assert kw["output_format"] == "webdataset" and kw["incremental_mode"] == "incremental"
    with pytest.raises(OdvgError, match="border"):
        img2dataset_kwargs(tmp_path, tmp_path, cols, DownloadOptions(resize_mode="border"))
    plain = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"url": ["u"], "caption": ["c"]}), plain)
    with pytest.raises(OdvgError, match="not GRIT metadata"):
        metadata_columns([plain])
    with pytest.raises(OdvgError, match="no such metadata file"):
        metadata_columns([tmp_path / "nope.parquet"])
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "00003_stats.json").write_text("{}")
    check_output_folder(raw)  # a resumed download: fine
    (raw / "notes.json").write_text("{}")
    with pytest.raises(OdvgError, match="empty folder"):
        check_output_folder(raw)


def test_stats_counter_types() -> None:
    _, res = convert([sample("cat", [[0, 3, 0, 0, 1, 1, 0.9]])])
    assert isinstance(res.stats, Counter) and res.stats["regions"] == 1
