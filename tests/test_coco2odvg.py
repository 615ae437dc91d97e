"""coco2odvg against an independent port of upstream, on real COCO data and on generated quirks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from reference import upstream_coco2odvg as upstream

from odvgkit.convert import coco as coco_mod
from odvgkit.convert.coco import coco_to_odvg
from odvgkit.errors import OdvgError, ProblemLog
from odvgkit.io import iter_records


def _write(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def quirky_coco(categories: list[tuple[int, str]] | None = None) -> dict[str, Any]:
    """Every box rule of spec §3.1 on purpose: one annotation per rule, images interleaved."""
    cats = categories or [(1, "person"), (3, "car"), (7, "train"), (90, "toothbrush")]
    images = [
        {"id": 10, "file_name": "a.jpg", "height": 100, "width": 200},
        {"id": 5, "file_name": "sub/b.jpg", "height": 640, "width": 640},
        {"id": 7, "file_name": "empty.jpg", "height": 50, "width": 50},  # no annotation at all
        {"id": 8, "file_name": "all_dropped.jpg", "height": 50, "width": 50},
    ]
    c = [cid for cid, _ in cats]
    anns = [
        {"id": 1, "image_id": 10, "category_id": c[1], "bbox": [10.5, 20.25, 30.0, 40.0], "area": 1200.0, "iscrowd": 0},
        {"id": 2, "image_id": 5, "category_id": c[0], "bbox": [630.0, 630.0, 50.0, 50.0], "area": 2500.0, "iscrowd": 0},  # overflow: kept
        {"id": 3, "image_id": 10, "category_id": c[2], "bbox": [-5.5, -3.25, 20.0, 20.0], "area": 400.0, "iscrowd": 0},  # negative x1: kept
        {"id": 4, "image_id": 10, "category_id": c[0], "bbox": [1, 1, 10, 10], "area": 100, "iscrowd": 1},  # crowd
        {"id": 5, "image_id": 10, "category_id": c[0], "bbox": [1, 1, 10, 10], "area": 100, "ignore": 1},  # ignore
        {"id": 6, "image_id": 10, "category_id": c[0], "bbox": [200.0, 1, 10, 10], "area": 100},  # x1 == W: outside
        {"id": 7, "image_id": 10, "category_id": c[0], "bbox": [-20.0, 1, 20, 10], "area": 200},  # x1+w == 0: outside
        {"id": 8, "image_id": 10, "category_id": c[0], "bbox": [1, 1, 0.5, 10], "area": 5},  # w < 1
        {"id": 9, "image_id": 10, "category_id": c[0], "bbox": [1, 1, 10, 10], "area": 0},  # area 0, w,h >= 1
        {"id": 10, "image_id": 8, "category_id": c[3], "bbox": [1, 1, 10, 0], "area": 0},  # h == 0
        {"id": 11, "image_id": 5, "category_id": c[3], "bbox": [473.07, 395.93, 38.65, 28.67], "area": 700.5},
        {"id": 12, "image_id": 10, "category_id": c[3], "bbox": [1e-05, 2.5e-06, 33.30001, 1.0], "area": 33.3},
    ]
    return {"info": {}, "licenses": [], "images": images, "annotations": anns,
            "categories": [{"id": cid, "name": name, "supercategory": "x"} for cid, name in cats]}


def _convert(path: Path, dataset: str = "coco") -> tuple[list[dict[str, Any]], dict[str, str], ProblemLog]:
    problems = ProblemLog()
    conv = coco_to_odvg(path, dataset=dataset, problems=problems)
    return list(conv.records), conv.label_map or {}, problems


@pytest.mark.parametrize("split", ["train2017", "val2017"])
def test_tiny_coco_matches_upstream(tiny_coco: Path, split: str) -> None:
    src = tiny_coco / f"instances_{split}.json"
    records, label_map, problems = _convert(src)
    expected, expected_map = upstream.upstream_coco2odvg(str(src), "coco")
    assert records == expected
    assert label_map == expected_map
    assert problems.n_errors == 0
    assert len(records) == {"train2017": 32, "val2017": 6}[split]
    assert sum(len(r["detection"]["instances"]) for r in records) == {"train2017": 284, "val2017": 135}[split]


def test_quirks_match_upstream_and_hand_expectations(tmp_path: Path) -> None:
    cats = [(1, "person"), (2, "bicycle"), (3, "car"), (4, "motorcycle")]
    src = _write(tmp_path / "q.json", quirky_coco(cats))
    records, label_map, problems = _convert(src, "o365v1")
    expected, expected_map = upstream.upstream_coco2odvg(str(src), "o365v1")
    assert records == expected and label_map == expected_map
    # and by hand, so the oracle itself is checked
    assert [r["filename"] for r in records] == ["a.jpg", "sub/b.jpg", "empty.jpg", "all_dropped.jpg"]
    a, b, empty, dropped = (r["detection"]["instances"] for r in records)
    assert a == [
        {"bbox": [10.5, 20.25, 40.5, 60.25], "label": 1, "category": "bicycle"},
        {"bbox": [-5.5, -3.25, 14.5, 16.75], "label": 2, "category": "car"},
        {"bbox": [1e-05, 2.5e-06, 1e-05 + 33.30001, 2.5e-06 + 1.0], "label": 3, "category": "motorcycle"},
    ]
    assert b == [
        {"bbox": [630.0, 630.0, 680.0, 680.0], "label": 0, "category": "person"},
        {"bbox": [473.07, 395.93, 473.07 + 38.65, 395.93 + 28.67], "label": 3, "category": "motorcycle"},
    ]
    assert empty == [] and dropped == []
    assert problems.n_errors == 0


def test_non_contiguous_ids_are_numbered_in_id_order(tmp_path: Path) -> None:
    # categories listed out of id order, ids with gaps: labels follow sorted ids, names are the input's
    cats = [(90, "toothbrush"), (1, "person"), (7, "train"), (3, "car")]
    src = _write(tmp_path / "q.json", quirky_coco(cats))
    records, label_map, _ = _convert(src, "coco")
    assert label_map == {"0": "person", "1": "car", "2": "train", "3": "toothbrush"}
    labels = {i["category"]: i["label"] for r in records for i in r["detection"]["instances"]}
    assert all(label_map[str(lab)] == name for name, lab in labels.items())


def test_coco_flag_uses_input_names_not_hardcoded(tmp_path: Path) -> None:
    data = quirky_coco([(1, "human"), (3, "auto"), (7, "rail"), (90, "brush")])
    src = _write(tmp_path / "q.json", data)
    records, label_map, _ = _convert(src, "coco")
    assert label_map == {"0": "human", "1": "auto", "2": "rail", "3": "brush"}
    assert records[0]["detection"]["instances"][0]["category"] == "auto"


def test_o365v2_quirks(tmp_path: Path) -> None:
    data = quirky_coco([(1, "Person"), (2, "Sneakers"), (3, "Chair"), (4, "Other Shoes")])
    data["images"][0]["file_name"] = "images/v2/patch16/objects365_v2_00908727.jpg"
    data["images"][1]["file_name"] = "images/v1/patch8/objects365_v1_00000001.jpg"
    data["images"].append({"id": 908726, "file_name": "images/v2/patch16/bad.jpg", "height": 10, "width": 10})
    data["annotations"].append({"id": 99, "image_id": 908726, "category_id": 1, "bbox": [1, 1, 5, 5], "area": 25})
    src = _write(tmp_path / "zhiyuan_objv2_train.json", data)
    records, label_map, problems = _convert(src, "o365v2")
    expected, expected_map = upstream.upstream_coco2odvg(str(src), "o365v2")
    assert records == expected and label_map == expected_map
    assert records[0]["filename"] == "patch16/objects365_v2_00908727.jpg"
    assert records[1]["filename"] == "patch8/objects365_v1_00000001.jpg"
    assert "bad.jpg" not in {r["filename"] for r in records}
    assert problems.n_errors == 0  # the known-corrupt image's boxes are counted, not errors


def test_v3det_scale_labels(tmp_path: Path) -> None:
    n_cats = 13204
    cats = [{"id": i, "name": f"class_{i}"} for i in range(1, n_cats + 1)]
    images = [{"id": i, "file_name": f"Images/a/{i}.jpg", "height": 100, "width": 100} for i in range(50)]
    anns = [{"id": k, "image_id": k % 50, "category_id": (k * 7919) % n_cats + 1, "bbox": [1, 2, 30, 40], "area": 1200}
            for k in range(2000)]
    src = _write(tmp_path / "v3det_2023_v1_train.json", {"images": images, "annotations": anns, "categories": cats})
    records, label_map, _ = _convert(src, "v3det")
    expected, expected_map = upstream.upstream_coco2odvg(str(src), "v3det")
    assert records == expected and label_map == expected_map and len(label_map) == n_cats


def test_streaming_block_boundaries_do_not_change_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = quirky_coco()
    for k in range(300):  # many annotations with polygons so the stream is cut in many places
        data["annotations"].append({"id": 1000 + k, "image_id": [10, 5][k % 2], "category_id": 3,
                                    "bbox": [k % 90, 1.5, 10.25, 20], "area": 205.0,
                                    "segmentation": [[1.0, 2.0] * 20, [{"}": "],"}]] if k % 3 else {"counts": "a},{b", "size": [1, 2]}})
    src = tmp_path / "big.json"
    src.write_text(json.dumps(data, indent=1))
    whole, lm, _ = _convert(src)
    monkeypatch.setattr(coco_mod, "BLOCK_SIZE", 257)
    chunked, lm2, _ = _convert(src)
    assert chunked == whole and lm2 == lm
    assert sum(len(r["detection"]["instances"]) for r in whole) == 3 + 2 + 300


def test_cli_default_names_and_summary(tmp_path: Path, cli) -> None:
    src = _write(tmp_path / "ann" / "zhiyuan_objv2_val.json", quirky_coco([(1, "a"), (2, "b"), (3, "c"), (4, "d")]))
    res = cli("convert", "coco2odvg", src, "-d", "o365v2", "--json")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["boxes"] == 5 and summary["images"] == 4
    assert summary["boxes_dropped:crowd"] == 1 and summary["boxes_dropped:ignore"] == 1
    assert summary["boxes_dropped:outside-image"] == 3 and summary["boxes_dropped:too-small"] == 2  # h == 0 has no overlap
    out = tmp_path / "ann" / "zhiyuan_objv2_val_od.json"
    assert out.is_file() and (tmp_path / "ann" / "o365v2_label_map.json").is_file()
    assert _read_jsonl(out) == upstream.upstream_coco2odvg(str(src), "o365v2")[0]


def test_cli_output_dir_is_created_and_parquet_matches_jsonl(tmp_path: Path, cli, tiny_coco: Path) -> None:
    src = tiny_coco / "instances_val2017.json"
    out = tmp_path / "new" / "deeper" / "val_od.parquet"
    res = cli("convert", "coco2odvg", src, "-o", out, "-q")
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "new" / "deeper" / "coco2017_label_map.json").is_file()
    expected, _ = upstream.upstream_coco2odvg(str(src), "coco")
    assert list(iter_records(out)) == expected


def test_missing_area_is_reported_and_skipped(tmp_path: Path, cli) -> None:
    data = quirky_coco()
    del data["annotations"][0]["area"]
    data["annotations"][1]["category_id"] = 999
    data["annotations"][2]["bbox"] = [1, 2, -3, 4]
    src = _write(tmp_path / "bad.json", data)
    res = cli("convert", "coco2odvg", src, "-o", tmp_path / "out.jsonl")
    assert res.returncode == 1
    assert f"{src}: annotations[0]: area: missing required field" in res.stderr
    assert f"{src}: annotations[1]: category_id: category id 999 is not in categories" in res.stderr
    assert f"{src}: annotations[2]: bbox: negative width or height" in res.stderr
    assert "Traceback" not in res.stderr
    records = _read_jsonl(tmp_path / "out.jsonl")  # the rest was converted
    assert sum(len(r["detection"]["instances"]) for r in records) == 2

    res = cli("convert", "coco2odvg", src, "-o", tmp_path / "strict.jsonl", "--strict")
    assert res.returncode == 1
    assert res.stderr.strip().splitlines()[-1] == f"odvgkit: error: {src}: annotations[0]: area: missing required field"
    assert not (tmp_path / "strict.jsonl").exists()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda s: s[: len(s) // 2], "malformed JSON: annotations[{}]: unexpected end of file (truncated?)"),
        (lambda s: s.replace('"area": 400.0', '"area": NaN', 1), "malformed JSON: NaN is not a valid JSON number"),
        (lambda s: s.replace('"ignore": 1', '"ignore": 1,,', 1), "malformed JSON: object keys must be strings"),
    ],
)
def test_malformed_json_names_line_and_column(tmp_path: Path, cli, mutate, message: str) -> None:
    text = json.dumps(quirky_coco(), indent=2)
    src = tmp_path / "broken.json"
    broken = mutate(text)
    assert broken != text
    src.write_text(broken)
    res = cli("convert", "coco2odvg", src, "-o", tmp_path / "out.jsonl")
    assert res.returncode == 1
    line = res.stderr.strip().splitlines()[-1]
    assert line.startswith(f"odvgkit: error: {src}:"), line
    head = line.split(": malformed JSON")[0]
    lineno, col = head.rsplit(":", 2)[-2:]
    assert int(lineno) > 1 and int(col) >= 1
    if "{}" not in message:
        assert message in line
    else:
        assert "unexpected end of file (truncated?)" in line
    if "{}" not in message:  # the reported line holds the culprit
        culprit = "NaN" if "NaN" in message else ",,"
        assert culprit in src.read_text().splitlines()[int(lineno) - 1]
    assert not list(tmp_path.glob("out*")) and not list(tmp_path.glob(".out*"))


def test_user_mistakes_get_one_line(tmp_path: Path, cli) -> None:
    src = _write(tmp_path / "in.json", quirky_coco())
    cases = [
        (["convert", "coco2odvg", tmp_path / "nope.json"], f"{tmp_path / 'nope.json'}: no such file"),
        (["convert", "coco2odvg", src, "-o", src], "output path is the same file as input"),
        (["convert", "coco2odvg", src, "-o", src / "x.json"], "cannot create output directory"),
        (["convert", "coco2odvg", src, "-d", "coco9"], "--dataset 'coco9': choose one of coco, o365v1, o365v2, v3det"),
        (["convert", "coco2odvg", src, "-o", tmp_path / "out.txt"], "unknown record format"),
    ]
    for args, expected in cases:
        res = cli(*args)
        assert res.returncode != 0, args
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], res.stderr
    assert json.loads(src.read_text()) == quirky_coco()  # input untouched


def test_not_a_coco_file(tmp_path: Path, cli) -> None:
    src = _write(tmp_path / "x.json", {"images": [], "annotations": []})
    res = cli("convert", "coco2odvg", src)
    assert res.returncode == 1 and "missing top-level key 'categories'" in res.stderr


def test_ctrl_c_leaves_no_partial_output(tmp_path: Path) -> None:
    """SIGINT while the output is being written: no output, no temporary file, input intact."""
    n_images, per_image = 60_000, 6
    src = tmp_path / "big.json"
    with open(src, "wb") as fh:
        fh.write(b'{"categories": [{"id": 1, "name": "a"}], "images": [')
        fh.write(b",".join(orjson.dumps({"id": i, "file_name": f"{i}.jpg", "height": 100, "width": 100}) for i in range(n_images)))
        fh.write(b'], "annotations": [')
        fh.write(b",".join(orjson.dumps({"id": k, "image_id": k % n_images, "category_id": 1, "bbox": [1, 1, 5, 5], "area": 25})
                           for k in range(n_images * per_image)))
        fh.write(b"]}")
    out = tmp_path / "out" / "big_od.jsonl.gz"  # gzip: slow enough to interrupt mid-write
    proc = subprocess.Popen([sys.executable, "-m", "odvgkit", "convert", "coco2odvg", str(src), "-o", str(out), "-q"],
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not any(p.name.startswith(".big_od") for p in out.parent.glob(".*")) and proc.poll() is None:
        time.sleep(0.01)
    assert proc.poll() is None, "conversion finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert "Traceback" not in err
    assert list(out.parent.iterdir()) == []
    assert os.path.getsize(src) > 0


def test_bad_image_id_and_library_error(tmp_path: Path) -> None:
    data = quirky_coco()
    data["annotations"][0]["image_id"] = 12345
    src = _write(tmp_path / "x.json", data)
    problems = ProblemLog()
    records = list(coco_to_odvg(src, problems=problems).records)
    assert problems.counts[("error", "image-not-found")] == 1
    assert len(records) == 4
    with pytest.raises(OdvgError, match="image id 12345 is not in images"):
        list(coco_to_odvg(src, problems=ProblemLog(strict=True)).records)


@pytest.mark.parametrize("dataset", ["coco", "o365v2"])
def test_fast_jsonl_path_is_byte_identical_to_records(tmp_path: Path, tiny_coco: Path, dataset: str) -> None:
    data = quirky_coco([(1, "café \"quoted\""), (2, "b/c"), (3, "ünï"), (4, "d")])
    data["images"][0]["file_name"] = "images/v2/x/ü \"q\".jpg"
    for src in (tiny_coco / "instances_train2017.json", _write(tmp_path / "q.json", data)):
        slow = b"".join(orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE) for r in coco_to_odvg(src, dataset).records)
        chunks = list(coco_to_odvg(src, dataset).jsonl_chunks or [])
        assert b"".join(c for c, _ in chunks) == slow
        assert sum(n for _, n in chunks) == slow.count(b"\n")
