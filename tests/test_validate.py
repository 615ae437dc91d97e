"""validate: every check, with records built by hand to hit exactly one problem each."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from odvgkit.errors import ProblemLog
from odvgkit.validate import check_label_map, validate_file


def _od(boxes: list[list[float]], labels: list[int] | None = None, **extra: Any) -> dict[str, Any]:
    labels = labels or [0] * len(boxes)
    return {"filename": extra.pop("filename", "a.jpg"), "height": 100, "width": 200,
            "detection": {"instances": [{"bbox": b, "label": lab, "category": "cat"} for b, lab in zip(boxes, labels, strict=True)]}, **extra}


def _vg(caption: str, regions: list[dict[str, Any]], filename: str = "v.jpg") -> dict[str, Any]:
    return {"filename": filename, "height": 100, "width": 200, "grounding": {"caption": caption, "regions": regions}}


def _run(tmp_path: Path, records: list[dict[str, Any]], label_map: dict[str, str] | None = None, raw: str | None = None) -> ProblemLog:
    path = tmp_path / "x.jsonl"
    path.write_text(raw if raw is not None else "".join(json.dumps(r) + "\n" for r in records))
    problems = ProblemLog(keep=50)
    validate_file(path, problems, label_map)
    return problems


def _codes(problems: ProblemLog) -> dict[str, int]:
    return {code: n for (_, code), n in problems.counts.items()}


CASES = [
    ([_od([[10, 10, 50, 50]])], {}),
    ([_od([[10, 10, 10, 50]])], {"box-degenerate": 1}),
    ([_od([[10, 10, 5, 50]])], {"box-degenerate": 1}),
    ([_od([[10, 10, 10.5, 50]])], {"box-under-1px": 1}),
    ([_od([[200, 10, 250, 50]])], {"box-outside-image": 1}),
    ([_od([[-50, 10, 0, 50]])], {"box-outside-image": 1}),
    ([_od([[190, 90, 250, 150]])], {"box-exceeds-image": 1}),
    ([_od([[10, 10, 50, 50]], [5])], {"label-not-in-map": 1}),
    ([_od([[10, 10, 50, 50]], [1])], {"category-mismatch": 1}),
    ([_od([[1, 1, 5, 5]], filename="d.jpg"), _od([[1, 1, 5, 5]], filename="d.jpg")], {"duplicate-filename": 1}),
    ([{"filename": "a.jpg", "height": "100", "width": 200}], {"schema": 1}),
    ([{"filename": "a.jpg", "height": 100, "width": 200, "detection": {"instances": [{"bbox": [1, 2, 3], "label": 0}]}}], {"schema": 1}),
    ([{"filename": "a.jpg", "height": 100, "width": 200, "detection": {"instances": [{"bbox": [1, 2, 3, 4], "label": -1}]}}], {"schema": 1}),
    ([{"filename": "a.jpg", "height": 100, "width": 200}], {"no-annotations-block": 1}),
    ([_vg("a cat", [{"bbox": [1, 1, 9, 9], "phrase": "cat", "tokens_positive": [[2, 5]]}])], {}),
    ([_vg("a cat", [{"bbox": [[1, 1, 9, 9], [20, 20, 30, 30]], "phrase": ["a", "cat"], "tokens_positive": [[0, 1], [2, 5]]}])], {}),
    ([_vg("a cat", [{"bbox": [1, 1, 9, 9], "phrase": "cat", "tokens_positive": [[2, 9]]}])], {"tokens-positive-range": 1}),
    ([_vg("a cat", [{"bbox": [1, 1, 9, 9], "phrase": "cat", "tokens_positive": []}])], {"tokens-positive-empty": 1}),
    ([_vg("a cat", [{"bbox": [1, 1, 9, 9], "phrase": "dog", "tokens_positive": [[2, 5]]}])], {"phrase-span-mismatch": 1}),
    ([_vg(" a cat", [{"bbox": [1, 1, 9, 9], "phrase": "cat", "tokens_positive": [[3, 6]]}])], {"caption-leading-space": 1}),
    ([_vg("İ cat", [{"bbox": [1, 1, 9, 9], "phrase": "cat", "tokens_positive": [[2, 5]]}])], {"caption-lower-length": 1}),
    ([_vg("a cat", [{"bbox": [1, 1, 9, 9], "phrase": "cat"}])], {"schema": 1}),
    ([_vg("a cat", [{"bbox": [1, 1, 9], "phrase": "cat", "tokens_positive": [[2, 5]]}])], {"schema": 1}),
    ([_od([[1, 1, 5, 5]]), _vg("a cat", [{"bbox": [1, 1, 9, 9], "phrase": "cat", "tokens_positive": [[2, 5]]}])], {"mixed-kinds": 1}),
]


@pytest.mark.parametrize(("records", "expected"), CASES)
def test_each_check(tmp_path: Path, records: list[dict[str, Any]], expected: dict[str, int]) -> None:
    assert _codes(_run(tmp_path, records, {"0": "cat", "1": "dog"})) == expected


def test_schema_messages_name_the_field(tmp_path: Path) -> None:
    problems = _run(tmp_path, [_vg("a cat", [{"bbox": [1, 1, 9], "phrase": "cat", "tokens_positive": [[2, 5]]}])])
    [p] = problems.examples["schema"]
    assert p.format() == f"{tmp_path / 'x.jsonl'}:1: grounding.regions[0].bbox: must be one box [x1, y1, x2, y2] or a list of such boxes"


def test_label_map_checks() -> None:
    problems = ProblemLog()
    check_label_map({"0": "a", "2": "b", "x": "c", "3": " "}, "lm.json", problems)
    assert {code for (_, code) in problems.counts} == {"label-map-key", "label-map-not-contiguous", "label-map-empty-name"}
    assert "missing 1" in problems.examples["label-map-not-contiguous"][0].message


def test_unreadable_lines(tmp_path: Path) -> None:
    problems = _run(tmp_path, [], raw=json.dumps(_od([[1, 1, 5, 5]])) + "\n\n{broken\n")
    assert _codes(problems) == {"blank-line": 1, "malformed-json": 1}


def test_images_root_sizes_with_exif(tmp_path: Path, cli) -> None:
    root = tmp_path / "img"
    root.mkdir()
    Image.new("RGB", (200, 100), "red").save(root / "plain.jpg")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90: decoders return a 100 x 200 (w x h) image
    Image.new("RGB", (200, 100), "blue").save(root / "rotated.jpg", exif=exif.tobytes())
    records = [
        {"filename": "plain.jpg", "height": 100, "width": 200, "detection": {"instances": []}},
        {"filename": "rotated.jpg", "height": 200, "width": 100, "detection": {"instances": []}},
        {"filename": "rotated.jpg", "height": 100, "width": 200, "detection": {"instances": []}},
        {"filename": "missing.jpg", "height": 100, "width": 200, "detection": {"instances": []}},
    ]
    path = tmp_path / "x.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    res = cli("validate", path, "--images-root", root, "--json")
    assert res.returncode == 1
    summary = json.loads(res.stdout)
    by_code = {c["code"]: c["count"] for c in summary["problems"]["by_code"]}
    assert by_code == {"image-size-mismatch": 1, "image-missing": 1, "duplicate-filename": 1}
    assert f"{path}:3: height/width: record says 200x100 (w x h), image header says 100x200" in summary["problems"]["examples"]
    assert summary["images_checked"] == 4


def test_cli_clean_file_exits_zero_and_strict_stops(tmp_path: Path, cli, tiny_coco_dir: Path) -> None:
    out = tmp_path / "od.jsonl"
    assert cli("convert", "coco2odvg", tiny_coco_dir / "annotations" / "instances_val2017.json", "-o", out, "-q").returncode == 0
    res = cli("validate", out, "-m", tmp_path / "coco2017_label_map.json", "--images-root", tiny_coco_dir / "images" / "val2017")
    assert res.returncode == 0, res.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(_od([[10, 10, 5, 50]])) + "\n" + json.dumps(_od([[10, 10, 10, 50]])) + "\n")
    res = cli("validate", bad, "--strict")
    assert res.returncode == 1
    assert res.stderr.strip() == f"odvgkit: error: {bad}:1: detection.instances[0].bbox: x2 > x1 and y2 > y1 required, got [10, 10, 5, 50]"


def test_category_disagreeing_with_the_label_map_is_an_error(tmp_path: Path) -> None:
    """Records written against another label space (e.g. a label map replaced by a later conversion)."""
    problems = _run(tmp_path, [_od([[10, 10, 50, 50]], [0]), _od([[10, 10, 50, 50]], [1], filename="b.jpg")],
                    {"0": "cat", "1": "dog"})
    assert problems.counts == {("error", "category-mismatch"): 1} and problems.n_errors == 1
    [p] = problems.examples["category-mismatch"]
    assert p.format() == f"{tmp_path / 'x.jsonl'}:2: detection.instances[0].category: 'cat' but the label map says 'dog' (records and label map disagree)"
