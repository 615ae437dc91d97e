"""stats: exact counts on generated data, the figure, --json."""

from __future__ import annotations

import json

from odvgkit.curate.stats import compute, describe, summary
from odvgkit.tokenizer import count_tokens


def _data(tmp_path, write_jsonl):
    recs = [
        {"filename": "a.jpg", "height": 100, "width": 100, "detection": {"instances": [
            {"bbox": [0, 0, 10, 10], "label": 0}, {"bbox": [0, 0, 50, 50], "label": 1}, {"bbox": [0, 0, 100, 100], "label": 0}]}},
        {"filename": "b.jpg", "height": 100, "width": 100, "detection": {"instances": []}},
        {"filename": "c.jpg", "height": 200, "width": 50, "detection": {"instances": [{"bbox": [0, 0, 40, 40], "label": 2}]}},
    ]
    return write_jsonl(tmp_path / "od.jsonl", recs)


def test_od_stats_exact(tmp_path, write_jsonl):
    st = compute(_data(tmp_path, write_jsonl), {"0": "cat", "1": "dog", "2": "bird"}, count_tokens=False)
    s = summary(st)
    assert (s["records"], s["boxes"], s["images_without_boxes"]) == (3, 4, 1)
    assert st.categories == {"cat": 2, "dog": 1, "bird": 1}
    assert st.boxes_per_image == {3: 1, 0: 1, 1: 1}
    # areas 100 (small), 2500 (medium), 10000 (large), 1600 (medium)
    assert s["box_area_classes"] == {"small": 1, "medium": 2, "large": 1}
    assert st.rel_hist.sum() == 4 and st.abs_hist.sum() == 4
    assert s["top_categories"][0] == {"name": "cat", "boxes": 2}
    assert describe(st.boxes_per_image) == {"mean": round(4 / 3, 3), "median": 1, "p95": 3, "max": 3}


def test_vg_stats_tokens_and_phrases(tmp_path, write_jsonl):
    caps = ["A dog on a sofa.", "two cats and one very small mouse"]
    recs = [
        {"filename": "a.jpg", "height": 10, "width": 10, "grounding": {"caption": caps[0], "regions": [
            {"bbox": [0, 0, 5, 5], "phrase": "A dog", "tokens_positive": [[0, 5]]},
            {"bbox": [[0, 0, 5, 5], [1, 1, 6, 6]], "phrase": "a sofa", "tokens_positive": [[9, 15]]}]}},
        {"filename": "b.jpg", "height": 10, "width": 10, "grounding": {"caption": caps[1], "regions": [
            {"bbox": [0, 0, 5, 5], "phrase": "a dog", "tokens_positive": [[0, 3]]}]}},
    ]
    st = compute(write_jsonl(tmp_path / "vg.jsonl", recs))
    assert st.boxes == 4 and st.phrases == {"a dog": 2, "a sofa": 1}
    assert st.phrases_per_caption == {2: 1, 1: 1}
    assert sorted(st.caption_tokens.elements()) == sorted(count_tokens(caps))
    assert st.caption_words == {5: 1, 7: 1}


def test_stats_cli_plot_and_json(cli, tmp_path, write_jsonl):
    src = _data(tmp_path, write_jsonl)
    png = tmp_path / "out" / "stats.png"
    res = cli("stats", src, "--plot", png, "--json")
    assert res.returncode == 0, res.stderr
    s = json.loads(res.stdout)
    assert s["records"] == 3 and s["boxes"] == 4 and s["plot"] == str(png)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    from PIL import Image

    with Image.open(png) as im:
        assert im.width > 1000 and im.height > 600
    assert cli("stats", src, "--plot", png, "-q").returncode == 0
    assert png.read_bytes() == data  # deterministic figure


def test_stats_bad_plot_name(cli, tmp_path, write_jsonl):
    src = _data(tmp_path, write_jsonl)
    res = cli("stats", src, "--plot", tmp_path / "x.gif")
    assert res.returncode != 0 and "--plot" in res.stderr and not (tmp_path / "x.gif").exists()


def test_vg_plot_and_token_limit_count(cli, tmp_path, write_jsonl):
    long_cap = " ".join(["word"] * 300)
    recs = [{"filename": f"{i}.jpg", "height": 100, "width": 100, "grounding": {
        "caption": long_cap if i == 0 else "a cat on a mat", "regions": [
            {"bbox": [0, 0, 10 + i, 10], "phrase": "a cat", "tokens_positive": [[0, 5]]}]}} for i in range(30)]
    src = write_jsonl(tmp_path / "vg.jsonl", recs)
    svg = tmp_path / "vg.svg"
    res = cli("stats", src, "--plot", svg, "--json")
    assert res.returncode == 0, res.stderr
    s = json.loads(res.stdout)
    assert s["captions_over_token_limit"] == 1 and s["caption_tokens"]["max"] == 302
    assert s["phrases_per_caption"]["mean"] == 1.0 and s["top_phrases"][0] == {"phrase": "a cat", "regions": 30}
    text = svg.read_text()
    assert text.startswith("<?xml") and "Caption length (tokens)" in text and "Phrases per caption" in text
