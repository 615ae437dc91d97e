"""--label-map EXISTING [--synonyms FILE]: aligning datasets onto one label space, and label-map names."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from odvgkit.convert.base import Conversion
from odvgkit.convert.labelspace import align_conversion, default_label_map
from odvgkit.errors import OdvgError, ProblemLog


def _coco_export(path: Path, cats: list[tuple[int, str]], boxes: list[tuple[int, int]]) -> Path:
    """A small COCO-format export: ``boxes`` = (image index, category id) pairs, one image per 3 boxes max."""
    n_images = max((i for i, _ in boxes), default=0) + 1
    data = {
        "images": [{"id": i + 1, "file_name": f"img{i}.jpg", "height": 100, "width": 120} for i in range(n_images)],
        "categories": [{"id": cid, "name": name, "supercategory": "thing"} for cid, name in cats],
        "annotations": [
            {"id": k + 1, "image_id": img + 1, "category_id": cid, "bbox": [5 + k, 6, 20, 30], "area": 600, "iscrowd": 0}
            for k, (img, cid) in enumerate(boxes)
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _conv(label_map: dict[str, str], labels: list[int], **extra: Any) -> Conversion:
    rec = {"filename": "a.jpg", "height": 10, "width": 10, **extra,
           "detection": {"instances": [{"bbox": [0, 0, 5, 5], "label": k, "category": label_map[str(k)]} for k in labels]}}
    return Conversion(records=[rec], label_map=label_map, stats=Counter(), jsonl_chunks=[(b"stale", 1)])


def _align(tmp_path: Path, new: dict[str, str], labels: list[int], existing: dict[str, str], *, synonyms: Any = None,
           strict: bool = False, syn_name: str = "syn.json", **extra: Any) -> tuple[Conversion, list[dict[str, Any]]]:
    lm = tmp_path / "existing.json"
    lm.write_text(json.dumps(existing), encoding="utf-8")
    syn = None
    if synonyms is not None:
        syn = tmp_path / syn_name
        syn.write_text(synonyms if isinstance(synonyms, str) else json.dumps(synonyms), encoding="utf-8")
    conv = align_conversion(_conv(new, labels, **extra), lm, synonyms=syn, strict=strict, problems=ProblemLog())
    return conv, list(conv.records)


def test_exact_names_take_the_existing_labels(tmp_path: Path) -> None:
    conv, [rec] = _align(tmp_path, {"0": "dog", "1": "cat"}, [0, 1, 1], {"0": "cat", "1": "bird", "2": "dog"})
    assert [(i["label"], i["category"]) for i in rec["detection"]["instances"]] == [(2, "dog"), (0, "cat"), (0, "cat")]
    assert conv.label_map == {"0": "cat", "1": "bird", "2": "dog"}
    assert conv.jsonl_chunks is None  # the stale pre-serialised bytes must never be written
    assert conv.stats["classes:exact"] == 2 and conv.alignment.appended == []


def test_case_insensitive_match_keeps_the_existing_spelling(tmp_path: Path) -> None:
    conv, [rec] = _align(tmp_path, {"0": "Traffic  Light", "1": "CAR"}, [0, 1], {"0": "car", "1": "traffic light"})
    assert [(i["label"], i["category"]) for i in rec["detection"]["instances"]] == [(1, "traffic light"), (0, "car")]
    assert conv.stats["classes:case-insensitive"] == 2 and conv.label_map == {"0": "car", "1": "traffic light"}


@pytest.mark.parametrize(("syn", "name"), [
    ({"auto": "car", "kitty": "Cat"}, "syn.json"),
    ("new,existing\nauto,car\nkitty,Cat\n", "syn.csv"),
])
def test_synonyms_json_or_csv(tmp_path: Path, syn: Any, name: str) -> None:
    conv, [rec] = _align(tmp_path, {"0": "kitty", "1": "auto", "2": "car"}, [0, 1, 2], {"0": "car", "1": "cat"},
                         synonyms=syn, syn_name=name)
    assert [i["label"] for i in rec["detection"]["instances"]] == [1, 0, 0]
    assert [i["category"] for i in rec["detection"]["instances"]] == ["cat", "car", "car"]
    assert conv.stats["classes:synonym"] == 2 and conv.stats["classes:exact"] == 1


def test_new_classes_are_appended_after_the_existing_ones(tmp_path: Path) -> None:
    conv, [rec] = _align(tmp_path, {"0": "raccoon", "1": "person", "2": "otter"}, [2, 0, 1], {"0": "person", "1": "car"},
                         neg_category_ids=[0, 2])
    assert conv.label_map == {"0": "person", "1": "car", "2": "raccoon", "3": "otter"}
    assert [(i["label"], i["category"]) for i in rec["detection"]["instances"]] == [(3, "otter"), (2, "raccoon"), (0, "person")]
    assert rec["neg_category_ids"] == [2, 3]  # LVIS-style per-image label ids follow the remapping
    assert conv.alignment.appended == ["raccoon", "otter"]
    assert conv.alignment.rows()["classes_appended"] == "raccoon, otter"


def test_strict_refuses_new_classes(tmp_path: Path) -> None:
    with pytest.raises(OdvgError, match=r"existing\.json: category: 1 class\(es\) not in the label map .*'raccoon'.*--strict"):
        _align(tmp_path, {"0": "raccoon", "1": "person"}, [0], {"0": "person"}, strict=True)


def test_synonym_onto_a_missing_class_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(OdvgError, match=r"syn\.json: 'auto': 'automobile' is not a class of"):
        _align(tmp_path, {"0": "auto"}, [0], {"0": "car"}, synonyms={"auto": "automobile"})


def test_default_label_map_is_named_after_the_output() -> None:
    assert default_label_map(Path("d/raccoon_od.jsonl.gz")) == Path("d/raccoon_od_label_map.json")
    assert default_label_map(Path("d/x.parquet")) == Path("d/x_label_map.json")


def test_two_custom_sets_share_one_label_map(tmp_path: Path, cli) -> None:
    """Two custom exports converted one after the other, the second aligned onto the first's map: the
    second map is the shared one, every box of both files keeps its class, the first map is untouched."""
    a_cats = [(1, "raccoon"), (2, "Dog"), (5, "cat")]
    a_boxes = [(0, 1), (0, 5), (1, 2), (2, 1)]
    b_cats = [(0, "squirrel"), (1, "dog"), (2, "pussycat"), (3, "raccoon"), (4, "fox")]
    b_boxes = [(0, 4), (0, 2), (1, 1), (1, 3), (2, 0), (2, 4)]
    a = _coco_export(tmp_path / "a" / "_annotations.coco.json", a_cats, a_boxes)
    b = _coco_export(tmp_path / "b" / "_annotations.coco.json", b_cats, b_boxes)
    syn = tmp_path / "syn.csv"
    syn.write_text("pussycat,cat\n", encoding="utf-8")
    out = tmp_path / "out"
    r1 = cli("convert", "coco2odvg", a, "-o", out / "a_od.jsonl", "--json")
    assert r1.returncode == 0, r1.stderr
    a_map = out / "a_od_label_map.json"
    a_map_bytes = a_map.read_bytes()
    r2 = cli("convert", "coco2odvg", b, "-o", out / "b_od.jsonl", "--label-map", a_map, "--synonyms", syn, "--json")
    assert r2.returncode == 0, r2.stderr
    summary = json.loads(r2.stdout)
    shared = out / "b_od_label_map.json"
    assert summary["aligned_onto"] == str(a_map) and summary["label_map"] == str(shared)
    assert summary["classes_appended"] == "squirrel, fox"
    assert (summary["classes:exact"], summary["classes:case-insensitive"], summary["classes:synonym"],
            summary["classes:appended"]) == (1, 1, 1, 2)
    assert a_map.read_bytes() == a_map_bytes  # the existing map is an input: never modified

    # independently: the shared space is A's names in id order, then B's names that matched nothing
    expected_names = ["raccoon", "Dog", "cat", "squirrel", "fox"]
    assert json.loads(shared.read_text()) == {str(i): n for i, n in enumerate(expected_names)}
    b_to_shared = {"squirrel": "squirrel", "dog": "Dog", "pussycat": "cat", "raccoon": "raccoon", "fox": "fox"}
    for src_cats, boxes, name, rename in ((a_cats, a_boxes, "a_od.jsonl", {}), (b_cats, b_boxes, "b_od.jsonl", b_to_shared)):
        name_of = {cid: rename.get(n, n) for cid, n in src_cats}
        got = [(i["label"], i["category"]) for r in _jsonl(out / name) for i in r["detection"]["instances"]]
        want = [(expected_names.index(name_of[cid]), name_of[cid]) for _, cid in boxes]
        assert got == want
    # both files validate against the one shared map
    for name in ("a_od.jsonl", "b_od.jsonl"):
        v = cli("validate", out / name, "-m", shared, "-q")
        assert v.returncode == 0, v.stderr


def test_strict_refusal_from_the_cli_writes_nothing(tmp_path: Path, cli) -> None:
    shared = tmp_path / "lm.json"
    shared.write_text('{"0": "person"}\n', encoding="utf-8")
    src = _coco_export(tmp_path / "r.json", [(1, "raccoon")], [(0, 1)])
    res = cli("convert", "coco2odvg", src, "-o", tmp_path / "r_od.jsonl", "--label-map", shared, "--strict")
    assert res.returncode != 0
    assert res.stderr.strip().splitlines() == [
        f"odvgkit: error: {shared}: category: 1 class(es) not in the label map (no exact, case-insensitive or synonym "
        "match): 'raccoon'; --strict refuses new classes (add --synonyms, or drop --strict to append them)"
    ]
    assert shared.read_text() == '{"0": "person"}\n' and not (tmp_path / "r_od.jsonl").exists()
    assert not (tmp_path / "r_od_label_map.json").exists()


def test_custom_export_then_coco_into_one_folder(tmp_path: Path, cli, tiny_coco: Path) -> None:
    """The issue's scenario: a raccoon export then COCO into one folder keep two label maps, and
    validating the raccoon records against COCO's map is an error."""
    out = tmp_path / "out"
    rac = _coco_export(tmp_path / "raccoon" / "_annotations.coco.json", [(0, "raccoon")], [(0, 0), (1, 0)])
    r1 = cli("convert", "coco2odvg", rac, "-o", out / "raccoon_od.jsonl", "--json")
    assert r1.returncode == 0, r1.stderr
    assert json.loads(r1.stdout)["dataset"] == "custom"
    r2 = cli("convert", "coco2odvg", tiny_coco / "instances_val2017.json", "-o", out / "coco_val_od.jsonl", "--json")
    assert r2.returncode == 0, r2.stderr
    assert json.loads(r2.stdout)["dataset"] == "coco"
    assert json.loads((out / "raccoon_od_label_map.json").read_text()) == {"0": "raccoon"}
    assert len(json.loads((out / "coco2017_label_map.json").read_text())) == 80
    v = cli("validate", out / "raccoon_od.jsonl", "-m", out / "coco2017_label_map.json")
    assert v.returncode == 1
    assert f"{out / 'raccoon_od.jsonl'}:1: detection.instances[0].category: 'raccoon' but the label map says 'person'" in v.stdout + v.stderr


def test_help_names_the_label_map_it_writes(cli) -> None:
    res = cli("convert", "coco2odvg", "--help")
    text = " ".join(res.stdout.split())
    assert "<output stem>_label_map.json" in text and "coco2017_label_map.json" in text


# --- every importer: the same --label-map / --synonyms options, really aligned -------------------------

def _tiny_jpeg(path: Path, size: tuple[int, int] = (40, 30)) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (90, 90, 90)).save(path, format="JPEG")


def _yolo(root: Path) -> tuple[list[str], Path]:
    _tiny_jpeg(root / "images" / "train" / "a.jpg")
    (root / "labels" / "train").mkdir(parents=True)
    (root / "labels" / "train" / "a.txt").write_text("0 0.5 0.5 0.5 0.5\n1 0.25 0.25 0.1 0.1\n", encoding="utf-8")
    (root / "data.yaml").write_text("path: .\ntrain: images/train\nnames: [cat, Dog]\n", encoding="utf-8")
    return ["yolo2odvg", str(root), "--split", "train"], root


def _labelme(root: Path) -> tuple[list[str], Path]:
    _tiny_jpeg(root / "a.jpg")
    shapes = [{"label": name, "points": pts, "group_id": None, "description": "", "shape_type": "rectangle", "flags": {}}
              for name, pts in (("cat", [[1, 1], [10, 10]]), ("Dog", [[2, 3], [20, 25]]))]
    (root / "a.json").write_text(json.dumps({"version": "5.4.1", "flags": {}, "shapes": shapes, "imagePath": "a.jpg",
                                             "imageHeight": 30, "imageWidth": 40, "imageData": None}), encoding="utf-8")
    return ["labelme2odvg", str(root)], root


def _cvat(root: Path) -> tuple[list[str], Path]:
    root.mkdir(parents=True)
    xml = root / "annotations.xml"
    xml.write_text('<?xml version="1.0" encoding="utf-8"?>\n<annotations><version>1.1</version>\n'
                   '<image id="0" name="a.jpg" width="40" height="30">\n'
                   '<box label="cat" occluded="0" xtl="1" ytl="1" xbr="10" ybr="10" z_order="0"/>\n'
                   '<box label="Dog" occluded="0" xtl="2" ytl="3" xbr="20" ybr="25" z_order="0"/>\n'
                   '</image></annotations>\n', encoding="utf-8")
    return ["cvat2odvg", str(xml)], root


def _voc(root: Path) -> tuple[list[str], Path]:
    (root / "Annotations").mkdir(parents=True)
    _tiny_jpeg(root / "JPEGImages" / "a.jpg")
    objs = "".join(f"<object><name>{n}</name><difficult>0</difficult><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin>"
                   f"<xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>" for n, b in (("cat", (2, 2, 11, 11)),
                                                                                           ("Dog", (3, 4, 21, 26))))
    (root / "Annotations" / "a.xml").write_text(f"<annotation><filename>a.jpg</filename><size><width>40</width>"
                                                f"<height>30</height><depth>3</depth></size>{objs}</annotation>",
                                                encoding="utf-8")
    return ["voc2odvg", str(root)], root


@pytest.mark.parametrize("make", [_voc, _yolo, _labelme, _cvat], ids=["voc", "yolo", "labelme", "cvat"])
def test_every_importer_aligns_onto_an_existing_label_map(tmp_path: Path, cli, make: Any) -> None:
    """cat and Dog onto {dog, bird} + synonym kitty→... : Dog matches case-insensitively, cat through a synonym."""
    existing = tmp_path / "space_label_map.json"
    existing.write_text(json.dumps({"0": "dog", "1": "bird", "2": "kitty"}), encoding="utf-8")
    before = existing.read_bytes()
    syn = tmp_path / "syn.json"
    syn.write_text(json.dumps({"cat": "kitty"}), encoding="utf-8")
    args, _ = make(tmp_path / "data")
    out = tmp_path / "out" / "mine_od.jsonl"
    r = cli("convert", *args, "-o", out, "--label-map", existing, "--synonyms", syn, "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    written = out.parent / "mine_od_label_map.json"
    assert json.loads(written.read_text()) == {"0": "dog", "1": "bird", "2": "kitty"}  # nothing appended
    assert existing.read_bytes() == before  # the existing map is an input
    [rec] = _jsonl(out)
    got = sorted((i["label"], i["category"]) for i in rec["detection"]["instances"])
    assert got == [(0, "dog"), (2, "kitty")], rec
    flat = json.dumps(summary)
    assert "case-insensitive" in flat and "synonym" in flat and str(existing) in flat


def test_every_converter_writing_a_label_map_takes_the_label_space_options() -> None:
    """Wiring check: a convert command with --label-map also has --synonyms (one shared option pair)."""
    import typer

    from odvgkit.cli import app

    group = typer.main.get_command(app).commands["convert"]
    with_map = {name: {p.name for p in cmd.params} for name, cmd in group.commands.items()
                if "label_map" in {p.name for p in cmd.params} and name != "lvis2ovd"}  # its --label-map is an input
    assert {"voc2odvg", "yolo2odvg", "labelme2odvg", "cvat2odvg", "cityscapes2odvg", "fiftyone2odvg", "coco2odvg",
            "lvis2odvg", "openimages2odvg"} <= set(with_map)
    assert [n for n, params in with_map.items() if "synonyms" not in params] == []
