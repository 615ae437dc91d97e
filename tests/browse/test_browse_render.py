"""browse render: scenes from records, word wrap, and pixels where boxes and spans must be."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from odvgkit.browse.draw import GAP, font, wrap
from odvgkit.browse.render import RenderOptions, choose, output_name, render_file
from odvgkit.browse.scene import PALETTE, scene_of
from odvgkit.cli import app
from odvgkit.errors import ProblemLog

from .conftest import VAL_IMAGES, coco_od_records, vg_from_od, write_jsonl

GREY = (128, 128, 128)


def _image(root: Path, name: str, size: tuple[int, int] = (200, 150)) -> None:
    Image.new("RGB", size, GREY).save(root / name)


# ------------------------------------------------------------------ scenes (no pixels)


def test_od_scene_names_colours_and_scores() -> None:
    rec = {"filename": "a.png", "width": 10, "height": 10, "detection": {"instances": [
        {"bbox": [1, 1, 5, 5], "label": 2, "category": "cat"},
        {"bbox": [1, 1, 5, 5], "label": 0, "score": 0.25},
        {"bbox": [1, 1, 5, 5], "label": 0, "score": 0.75},
        {"bbox": [1, 1, 5], "label": 0},
    ]}}
    scene = scene_of(rec, {"0": "person"}, threshold=0.5)
    assert [b.text for b in scene.boxes] == ["cat", "person 0.75"]
    assert [b.color for b in scene.boxes] == [PALETTE[2], PALETTE[0]]
    assert scene.hidden == 1
    assert scene.bad == ["detection.instances[3].bbox: not 4 finite numbers"]


def test_vg_scene_regions_share_colour_with_their_spans() -> None:
    caption = "a dog and two cats"
    rec = {"filename": "a.png", "width": 10, "height": 10, "grounding": {"caption": caption, "regions": [
        {"bbox": [0, 0, 4, 4], "phrase": "a dog", "tokens_positive": [[0, 5]]},
        {"bbox": [[5, 5, 8, 8], [1, 6, 3, 9]], "phrase": "two cats", "tokens_positive": [[10, 18]], "score": [0.9, 0.1]},
        {"bbox": [0, 0, 1, 1], "phrase": "ghost", "tokens_positive": [[15, 40]]},
    ]}}
    scene = scene_of(rec, threshold=0.5)
    assert [(b.text, b.color) for b in scene.boxes] == [
        ("a dog", PALETTE[0]), ("two cats 0.90", PALETTE[1]), ("ghost", PALETTE[2])]
    assert [(caption[s.start:s.end], s.color) for s in scene.spans] == [("a dog", PALETTE[0]), ("two cats", PALETTE[1])]
    assert scene.hidden == 1
    assert scene.bad == ["grounding.regions[2].tokens_positive: span [15, 40] is not inside the caption"]


def test_wrap_covers_the_caption_and_fits_the_width() -> None:
    f = font(14)
    text = "a man riding a horse next to anextraordinarilylongwordthatcannotfit and a dog\nsecond"
    lines = wrap(text, f, 100)
    joined = "".join(text[a:b] for a, b in lines)
    assert joined == text.replace("\n", "")
    assert all(f.getlength(text[a:b].rstrip()) <= 100 for a, b in lines)
    assert all(b1 <= a2 for (_, b1), (a2, _) in itertools.pairwise(lines))


def test_choose_first_n_or_seeded_sample_in_line_order() -> None:
    items = [(i, {"i": i}) for i in range(1, 101)]
    assert [line for line, _ in choose(iter(items), 3, None)] == [1, 2, 3]
    a = [line for line, _ in choose(iter(items), 10, 7)]
    assert a == [line for line, _ in choose(iter(items), 10, 7)]  # deterministic
    assert a == sorted(a) and len(set(a)) == 10 and a != list(range(1, 11))
    assert len(list(choose(iter(items), 0, None))) == 100


def test_output_names_trace_back_to_the_line() -> None:
    assert output_name(42, "sub/dir/img 1.jpg", "png") == "000042_sub__dir__img_1.png"


# ------------------------------------------------------------------ pixels


def _render(tmp_path: Path, records: list[dict], **kw) -> tuple[list[Path], ProblemLog]:
    src = write_jsonl(tmp_path / "in.jsonl", records)
    problems = ProblemLog()
    opts = RenderOptions(images_root=tmp_path, out_dir=tmp_path / "out", ext="png",
                         label_map=kw.pop("label_map", None), score_threshold=kw.pop("score_threshold", 0.3))
    stats = render_file(src, opts, problems=problems, **kw)
    return stats.outputs, problems


def test_box_outline_pixels_are_in_the_label_colour(tmp_path: Path) -> None:
    _image(tmp_path, "a.png")
    rec = {"filename": "a.png", "width": 200, "height": 150,
           "detection": {"instances": [{"bbox": [40, 50, 160, 130], "label": 3}]}}
    (out,), problems = _render(tmp_path, [rec])
    im = Image.open(out).convert("RGB")
    assert im.width == 200 and im.height > 150  # image on top, caption strip below
    color = PALETTE[3]
    for xy in [(40, 90), (41, 90), (159, 90), (100, 129), (100, 130)]:  # left, right, bottom edges
        assert im.getpixel(xy) == color, xy
    for xy in [(100, 100), (20, 20), (180, 140), (38, 90), (163, 90)]:  # inside and outside stay grey
        assert im.getpixel(xy) == GREY, xy
    assert problems.n_errors == problems.n_warnings == 0


def test_caption_spans_are_highlighted_in_their_region_colour(tmp_path: Path) -> None:
    _image(tmp_path, "a.png")
    rec = {"filename": "a.png", "width": 200, "height": 150, "grounding": {
        "caption": "a dog and a cat", "regions": [
            {"bbox": [10, 10, 60, 60], "phrase": "a dog", "tokens_positive": [[0, 5]]},
            {"bbox": [100, 60, 190, 140], "phrase": "a cat", "tokens_positive": [[10, 15]]}]}}
    (out,), _ = _render(tmp_path, [rec])
    im = Image.open(out).convert("RGB")
    assert im.getpixel((10, 35)) == PALETTE[0] and im.getpixel((189, 100)) == PALETTE[1]
    strip = im.crop((0, 150, im.width, im.height))
    colours = dict((c, n) for n, c in strip.getcolors(1 << 16))
    assert colours.get(PALETTE[0], 0) > 50 and colours.get(PALETTE[1], 0) > 50
    # the first span is at the left of the caption line, the second further right
    xs0 = [x for x in range(im.width) for y in range(strip.height) if strip.getpixel((x, y)) == PALETTE[0]]
    xs1 = [x for x in range(im.width) for y in range(strip.height) if strip.getpixel((x, y)) == PALETTE[1]]
    assert max(xs0) < min(xs1)


def test_predictions_side_by_side_with_score_threshold(tmp_path: Path) -> None:
    _image(tmp_path, "a.png")
    gt = {"filename": "a.png", "width": 200, "height": 150,
          "detection": {"instances": [{"bbox": [20, 20, 80, 80], "label": 0}]}}
    pred = {"filename": "a.png", "width": 200, "height": 150, "detection": {"instances": [
        {"bbox": [100, 30, 180, 120], "label": 1, "score": 0.9},
        {"bbox": [10, 90, 60, 140], "label": 2, "score": 0.1}]}}
    preds = write_jsonl(tmp_path / "pred.jsonl", [pred])
    (out,), _ = _render(tmp_path, [gt], predictions=preds, label_map={"0": "a", "1": "b", "2": "c"})
    im = Image.open(out).convert("RGB")
    assert im.width == 200 + GAP + 200
    right = 200 + GAP
    assert im.getpixel((20, 50)) == PALETTE[0]  # ground truth on the left
    assert im.getpixel((right + 20, 50)) == GREY  # not on the right
    assert im.getpixel((right + 179, 75)) == PALETTE[1]  # the confident prediction on the right
    assert im.getpixel((100, 75)) == GREY  # predictions are not on the left
    assert im.getpixel((right + 10, 115)) == GREY  # the low-score prediction is hidden


def test_missing_image_is_reported_and_the_rest_render(tmp_path: Path) -> None:
    _image(tmp_path, "a.png")
    recs = [{"filename": "gone.png", "width": 100, "height": 80, "detection": {"instances": [{"bbox": [10, 10, 50, 50], "label": 0}]}},
            {"filename": "a.png", "width": 200, "height": 150, "detection": {"instances": []}}]
    outs, problems = _render(tmp_path, recs)
    assert [p.name for p in outs] == ["000001_gone.png", "000002_a.png"]
    assert problems.counts[("warning", "image-missing")] == 1
    placeholder = Image.open(outs[0]).convert("RGB")
    assert placeholder.width == 100 and placeholder.getpixel((10, 30)) == PALETTE[0]


# ------------------------------------------------------------------ CLI on real COCO images


def test_cli_render_tiny_coco_od_and_vg(tmp_path: Path) -> None:
    records, label_map = coco_od_records()
    od = write_jsonl(tmp_path / "od.jsonl", records)
    vg = write_jsonl(tmp_path / "vg.jsonl", [vg_from_od(r) for r in records])
    lm = tmp_path / "lm.json"
    lm.write_text(json.dumps(label_map))
    runner = CliRunner()
    res = runner.invoke(app, ["browse", "render", str(od), "-i", str(VAL_IMAGES), "-o", str(tmp_path / "od"),
                              "-m", str(lm), "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["images written"] == 6 and summary["boxes drawn"] == sum(len(r["detection"]["instances"]) for r in records)
    res = runner.invoke(app, ["browse", "render", str(vg), "-i", str(VAL_IMAGES), "-o", str(tmp_path / "vg"),
                              "-n", "2", "--seed", "1", "--json"])
    assert res.exit_code == 0, res.output
    outs = sorted((tmp_path / "vg").iterdir())
    assert len(outs) == 2
    for path, line in zip(outs, [int(p.name[:6]) for p in outs], strict=True):
        rec = records[line - 1]
        with Image.open(path) as im:
            assert im.format == "JPEG" and im.width == rec["width"] and im.height > rec["height"]


def test_cli_render_bad_input_is_one_line(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["browse", "render", str(tmp_path / "nope.jsonl"), "-i", str(tmp_path), "-o", str(tmp_path / "o")])
    assert res.exit_code != 0
    assert "nope.jsonl: no such file" in str(res.exception)


@pytest.mark.parametrize("fmt", ["gif"])
def test_cli_render_rejects_unknown_format(tmp_path: Path, fmt: str) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", [])
    res = CliRunner().invoke(app, ["browse", "render", str(src), "-i", str(tmp_path), "-o", str(tmp_path / "o"), "--format", fmt])
    assert res.exit_code != 0 and "--format 'gif'" in str(res.exception)
