"""``convert yolo2odvg``: Ultralytics and darknet layouts, segments, EXIF, bad lines.

Label files are written here from chosen pixel boxes, so the expected absolute boxes are known
without the importer's arithmetic.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import read_jsonl, run_cli
from PIL import Image

from odvgkit.convert.base import write_conversion
from odvgkit.convert.yolo import yolo_to_odvg
from odvgkit.errors import OdvgError, ProblemLog


def _img(path: Path, size: tuple[int, int], fmt: str = "JPEG", orientation: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.new("RGB", size, (1, 2, 3))
    if orientation is None:
        im.save(path, fmt)
    else:
        exif = Image.Exif()
        exif[0x0112] = orientation
        im.save(path, fmt, exif=exif)


def _norm_line(cls: int, box: tuple[float, float, float, float], w: int, h: int) -> str:
    x1, y1, x2, y2 = box
    return f"{cls} {(x1 + x2) / 2 / w!r} {(y1 + y2) / 2 / h!r} {(x2 - x1) / w!r} {(y2 - y1) / h!r}"


def _write(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(ln + "\n" for ln in lines))


def _ultralytics(root: Path) -> dict[str, list[tuple[int, list[float]]]]:
    """A small Ultralytics dataset; returns the expected (label, box) per image, by filename."""
    root.mkdir(parents=True)
    (root / "data.yaml").write_text("path: .\ntrain: images/train\nval: images/val\nnames:\n  0: cat\n  1: dog\n  2: traffic light\n")
    exp: dict[str, list[tuple[int, list[float]]]] = {}
    # a plain jpeg with two boxes
    _img(root / "images/train/b.jpg", (100, 50))
    _write(root / "labels/train/b.txt", [_norm_line(0, (10, 5, 40, 45), 100, 50), _norm_line(2, (50, 0, 100, 50), 100, 50)])
    exp["images/train/b.jpg"] = [(0, [10, 5, 40, 45]), (2, [50, 0, 100, 50])]
    # a png, a segment (enclosing box) and blank lines
    _img(root / "images/train/a.png", (64, 32), "PNG")
    _write(root / "labels/train/a.txt", ["", "1 0.25 0.5 0.75 0.25 0.5 1.0 0.25 0.75", "  "])
    exp["images/train/a.png"] = [(1, [16, 8, 48, 32])]
    # EXIF orientation 6: the stored 40x80 image is 80x40 once rotated, as Ultralytics' exif_size says
    _img(root / "images/train/c.jpg", (40, 80), orientation=6)
    _write(root / "labels/train/c.txt", [_norm_line(1, (8, 4, 72, 36), 80, 40)])
    exp["images/train/c.jpg"] = [(1, [8, 4, 72, 36])]
    # empty label file and a missing label file: images without boxes
    _img(root / "images/train/d.jpg", (30, 30))
    _write(root / "labels/train/d.txt", [])
    exp["images/train/d.jpg"] = []
    _img(root / "images/train/sub/e.jpg", (30, 30))
    exp["images/train/sub/e.jpg"] = []
    _img(root / "images/val/v.jpg", (20, 10))
    _write(root / "labels/val/v.txt", ["0 0.5 0.5 1 1"])
    exp["images/val/v.jpg"] = [(0, [0, 0, 20, 10])]
    return exp


def test_ultralytics_layout_boxes_segments_exif_and_empty_labels(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    exp = _ultralytics(root)
    out = tmp_path / "train_od.json"
    r = run_cli("convert", "yolo2odvg", root, "--split", "train", "-o", out, "--json")
    assert r.returncode == 0, r.stderr
    recs = read_jsonl(out)
    train = sorted(k for k in exp if "/train/" in k)
    assert [x["filename"] for x in recs] == train
    names = ["cat", "dog", "traffic light"]
    for rec in recs:
        w, h = Image.open(root / rec["filename"]).size
        if rec["filename"].endswith("c.jpg"):
            w, h = h, w
        assert (rec["width"], rec["height"]) == (w, h)
        got = rec["detection"]["instances"]
        assert [(i["label"], i["category"]) for i in got] == [(lab, names[lab]) for lab, _ in exp[rec["filename"]]]
        for inst, (_, box) in zip(got, exp[rec["filename"]], strict=True):
            assert inst["bbox"] == pytest.approx(box, abs=1e-9)
    assert json.loads((tmp_path / "train_od_label_map.json").read_text()) == {"0": "cat", "1": "dog", "2": "traffic light"}
    s = json.loads(r.stdout)
    assert (s["images"], s["boxes"], s["images_without_boxes"], s["images_without_label_file"]) == (5, 4, 2, 1)
    assert s["boxes_from_segments"] == 1
    assert s["problems"]["errors"] == 0

    r = run_cli("convert", "yolo2odvg", root, "-o", tmp_path / "all.jsonl", "--json")  # no --split: every image
    assert r.returncode == 0, r.stderr
    assert [x["filename"] for x in read_jsonl(tmp_path / "all.jsonl")] == sorted(exp)


def test_darknet_flat_folder_with_classes_txt_and_names_list(tmp_path: Path) -> None:
    root = tmp_path / "dn"
    _img(root / "x.jpg", (200, 100))
    _write(root / "x.txt", [_norm_line(1, (20, 10, 120, 90), 200, 100), "0 0.995 0.5 0.012 0.2"])
    _write(root / "classes.txt", ["person", "bike"])
    out = tmp_path / "o.json"
    r = run_cli("convert", "yolo2odvg", root, "-o", out, "--json")
    assert r.returncode == 0, r.stderr
    (rec,) = read_jsonl(out)
    assert rec["filename"] == "x.jpg"
    a, b = rec["detection"]["instances"]
    assert a["bbox"] == pytest.approx([20, 10, 120, 90]) and a["category"] == "bike"
    # the second box overshoots the right edge by 0.2 px: clipped, counted
    assert b["bbox"] == pytest.approx([197.8, 40, 200, 60]) and b["category"] == "person"
    s = json.loads(r.stdout)
    assert s["boxes_clipped"] == 1 and s["class_names_from"].endswith("classes.txt")

    yaml_file = tmp_path / "d.yaml"
    yaml_file.write_text("names: [person, bike]\ntrain: dn\n")
    out2 = tmp_path / "o2.json"
    r = run_cli("convert", "yolo2odvg", root, "--data", yaml_file, "-o", out2)
    assert r.returncode == 0, r.stderr
    assert read_jsonl(out2) == read_jsonl(out)


BAD_LINES = {
    "4-columns": ("0 0.5 0.5 0.2", "bad.txt:2: expected 5 values (class cx cy w h) or a class and >= 3 x y points, got 4"),
    "6-columns": ("0 0.5 0.5 0.2 0.2 0.9", "bad.txt:2: expected 5 values (class cx cy w h) or a class and >= 3 x y points, got 6"),
    "outside": ("1 0.5 1.2 0.2 0.2", "bad.txt:2: cy: 1.2 is outside [0, 1] (normalised coordinates)"),
    "negative": ("1 0.5 0.5 -0.2 0.2", "bad.txt:2: w: -0.2 is outside [0, 1] (normalised coordinates)"),
    "nan": ("1 nan 0.5 0.2 0.2", "bad.txt:2: cx: nan is outside [0, 1] (normalised coordinates)"),
    "class-range": ("7 0.5 0.5 0.2 0.2", "bad.txt:2: class: class id 7 is outside names (0..1)"),
    "class-text": ("cat 0.5 0.5 0.2 0.2", "bad.txt:2: class: not a class id: 'cat'"),
    "segment": ("0 0.5 0.5", "bad.txt:2: points: a segment needs at least 3 points, got 1"),
}


def _bad_dataset(root: Path, case: str | None) -> Path:
    root.mkdir(parents=True)
    (root / "data.yaml").write_text("names: [a, b]\n")
    for stem in ("a", "bad", "c"):
        _img(root / f"images/{stem}.jpg", (50, 40))
        _write(root / f"labels/{stem}.txt", ["0 0.5 0.5 0.2 0.2"])
    cases = [case] if case else sorted(BAD_LINES)
    for k, c in enumerate(cases):
        stem = "bad" if case else f"bad_{k}"
        _img(root / f"images/{stem}.jpg", (50, 40))
        _write(root / f"labels/{stem}.txt", ["1 0.5 0.5 0.4 0.4", BAD_LINES[c][0]])
    return root


def test_bad_lines_are_named_and_skipped(tmp_path: Path) -> None:
    root = _bad_dataset(tmp_path / "ds", None)
    (root / "images" / "z.jpg").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    out = tmp_path / "o.json"
    r = run_cli("convert", "yolo2odvg", root, "-o", out, "--json")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    s = json.loads(r.stdout)
    ex = s["problems"]["examples"]
    for k, c in enumerate(sorted(BAD_LINES)):
        want = BAD_LINES[c][1].replace("bad.txt", f"bad_{k}.txt")
        assert sum(e.endswith(want) for e in ex) == 1, (c, ex)
    assert any("z.jpg: unreadable image header" in e for e in ex)
    assert s["problems"]["errors"] == len(BAD_LINES) + 1
    recs = {x["filename"]: x for x in read_jsonl(out)}
    assert "images/z.jpg" not in recs  # unreadable header: image skipped
    for k in range(len(BAD_LINES)):  # the bad line is skipped, the good line of the image stays
        assert [i["bbox"] for i in recs[f"images/bad_{k}.jpg"]["detection"]["instances"]] == [pytest.approx([15, 12, 35, 28])]


@pytest.mark.parametrize("case", sorted(BAD_LINES))
def test_strict_stops_at_the_bad_line(tmp_path: Path, case: str) -> None:
    root = _bad_dataset(tmp_path / "ds", case)
    out = tmp_path / "out" / "o.json"
    with pytest.raises(OdvgError) as exc:
        conv = yolo_to_odvg(root, problems=ProblemLog(strict=True))
        write_conversion(conv, out, inputs=[root], label_map_path=tmp_path / "out" / "lm.json")
    assert str(exc.value).endswith(BAD_LINES[case][1]), str(exc.value)
    assert not (out.parent.exists() and any(out.parent.iterdir()))


def test_strict_cli_and_formats_it_cannot_read(tmp_path: Path) -> None:
    root = _bad_dataset(tmp_path / "ds", "6-columns")
    r = run_cli("convert", "yolo2odvg", root, "-o", tmp_path / "o.json", "--strict")
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [f"odvgkit: error: {root / 'labels' / 'bad.txt'}:2: " + BAD_LINES["6-columns"][1].split(":2: ")[1]]
    assert not (tmp_path / "o.json").exists()

    r = run_cli("convert", "coco2odvg", root / "labels" / "a.txt", "-o", tmp_path / "x.json")
    assert r.returncode == 1 and "looks like a YOLO label file" in r.stderr and "yolo2odvg" in r.stderr

    voc = tmp_path / "voc"
    (voc / "Annotations").mkdir(parents=True)
    r = run_cli("convert", "yolo2odvg", voc, "-o", tmp_path / "y.json")
    assert r.returncode == 1
    assert r.stderr.strip() == f"odvgkit: error: {voc}: a Pascal VOC dataset (Annotations/); use 'odvgkit convert voc2odvg'"


def test_workers_give_the_same_bytes(tmp_path: Path) -> None:
    root = tmp_path / "many"
    _write(root / "classes.txt", ["a", "b", "c"])
    for k in range(600):
        w, h = 20 + k % 9, 10 + k % 4
        _img(root / "images" / f"{k:04d}.png", (w, h), "PNG")
        _write(root / "labels" / f"{k:04d}.txt", [f"{k % 3} 0.5 0.5 0.5 0.5"] * (k % 3))
    outs = []
    for workers in (1, 2):
        out = tmp_path / f"o{workers}.jsonl"
        conv = yolo_to_odvg(root, workers=workers)
        write_conversion(conv, out, inputs=[root], label_map_path=tmp_path / f"lm{workers}.json")
        outs.append(out.read_bytes())
        assert conv.stats["images"] == 600 and conv.stats["boxes"] == 600
    assert outs[0] == outs[1]


def test_roboflow_export_relative_entries(tmp_path: Path) -> None:
    """Roboflow's data.yaml says 'train: ../train/images' for a train/ folder beside it."""
    root = tmp_path / "rf"
    _img(root / "train/images/a.jpg", (40, 20))
    _write(root / "train/labels/a.txt", ["0 0.5 0.5 0.5 0.5"])
    (root / "data.yaml").write_text("train: ../train/images\nval: ../valid/images\nnc: 1\nnames: ['raccoon']\n")
    conv = yolo_to_odvg(root, split="train")
    out = tmp_path / "o.jsonl"
    write_conversion(conv, out, inputs=[root], label_map_path=tmp_path / "lm.json")
    assert read_jsonl(out) == [{"filename": "train/images/a.jpg", "height": 20, "width": 40, "detection": {
        "instances": [{"bbox": [10.0, 5.0, 30.0, 15.0], "label": 0, "category": "raccoon"}]}}]
    with pytest.raises(OdvgError, match=r"data.yaml: val: .*no such folder or file"):
        yolo_to_odvg(root, split="val")


def test_png_sizes_never_decode_pixels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PNG's size (and an eXIf orientation before the pixel data) come from its header chunks."""
    from PIL import PngImagePlugin

    from odvgkit.images import image_size

    _img(tmp_path / "plain.png", (30, 20), "PNG")
    _img(tmp_path / "rotated.png", (30, 20), "PNG", orientation=6)

    def no_decode(self, *a, **k):
        raise AssertionError("pixels decoded")

    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", no_decode)
    assert image_size(tmp_path / "plain.png") == (30, 20)
    assert image_size(tmp_path / "rotated.png") == (20, 30)


def test_inline_line_path_gives_what_line_gives(tmp_path: Path) -> None:
    """The importer reads the common line (class cx cy w h in range) inline; every line, odd or
    not, must give the instance, counters and problems that ``_Parser._line`` gives for it."""
    import random

    import orjson

    from odvgkit.convert._perfile import Chunk
    from odvgkit.convert.yolo import _Parser

    rng = random.Random(0)
    values = ["0", "1", "0.5", "0.25", "-0", "-0.0", "1.0", "0.9999", "1e-3", "0.0000001", "nan", "1.5", "-0.1", "x", "٠.٥"]
    classes = ["0", "1", "2", "3", "1.0", "-0", "+1", "1_0", "٣", "-1", "1e0", "99999999999999999999", "a"]
    _img(tmp_path / "im.jpg", (64, 48))
    parser = _Parser(tmp_path, ["a", "b", "c", "d"], True)
    for k in range(300):
        lines = []
        for _ in range(rng.randint(0, 6)):
            n = rng.choice([5, 5, 5, 5, 4, 6, 7, 3])
            lines.append(" ".join([rng.choice(classes), *(rng.choice(values) if rng.random() < 0.3 else f"{rng.random():.4f}"
                                                         for _ in range(n - 1))]))
        text = "\n".join(lines) + rng.choice(["", "\n", "\r\n"])
        labels = tmp_path / f"l{k}.txt"
        labels.write_text(text)
        inline, by_line = Chunk(), Chunk()
        rec = parser.one(inline, str(tmp_path / "im.jpg"), str(labels))
        expected = [parser._line(by_line, str(labels), n, ln.split(), 64, 48) for n, ln in enumerate(text.splitlines(), 1)
                    if ln.split()]
        expected = [e for e in expected if e is not None]
        assert orjson.dumps(rec["detection"]["instances"]) == orjson.dumps(expected), text
        assert inline.problems == by_line.problems
        for key in ("boxes_clipped", "dropped:degenerate", "boxes_from_segments"):
            assert inline.stats[key] == by_line.stats[key], (key, text)


def test_path_helpers_agree_with_os_path() -> None:
    """The listing's string shortcuts give what ``os.path.splitext`` gives (leading dots included)."""
    import os
    import random

    from odvgkit.convert._perfile import IMAGE_EXTS, is_image_name, without_ext

    rng = random.Random(0)
    pieces = ["a", ".", "/", "j", "p", "g", "PNG", ".jpg", "..", ".JPEG", "x"]
    for _ in range(20000):
        s = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 8)))
        assert without_ext(s) == os.path.splitext(s)[0], s
        name = s.replace("/", "")
        assert is_image_name(name) == (os.path.splitext(name)[1].lower() in IMAGE_EXTS), name
