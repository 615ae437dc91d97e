"""Summaries count what they say they count."""

from __future__ import annotations

import json
from pathlib import Path


def test_o365_fix_wh_counts_every_image_written(tmp_path: Path, cli):
    """The report: 'images: 46' where 48 were written (the 2 resized ones were not counted)."""
    images = [{"id": i, "file_name": f"patch0/{i}.jpg", "height": 100, "width": 200} for i in range(1, 49)]
    anns = [{"id": i, "image_id": i, "category_id": 1, "bbox": [1, 1, 5, 5], "area": 25} for i in range(1, 49)]
    src = tmp_path / "zhiyuan_objv2_val.json"
    src.write_text(json.dumps({"images": images, "annotations": anns, "categories": [{"id": 1, "name": "Person"}]}))
    resized = {7, 30}
    info = tmp_path / "info.tsv"
    info.write_text("id\tfile_name\theight\twidth\n" + "".join(
        f"{im['id']}\t{im['file_name']}\t{50 if im['id'] in resized else 100}\t200\n" for im in images))
    r = cli("o365", "fix-wh", src, "--info", info, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads((tmp_path / "zhiyuan_objv2_val_fixwh.json").read_text())
    summary = json.loads(r.stdout)
    assert len(out["images"]) == 48
    assert (summary["images"], summary["resized"], summary["annotations"]) == (48, 2, 48)
    assert sorted(im["id"] for im in out["images"] if im["height"] == 50) == sorted(resized)

    r = cli("o365", "fix-wh", src, "--info", info, "--mode", "drop", "-o", tmp_path / "dropped.json", "--json")
    summary = json.loads(r.stdout)
    out = json.loads((tmp_path / "dropped.json").read_text())
    assert (summary["images"], summary["dropped:size-differs"]) == (len(out["images"]), 2) == (46, 2)


def test_o365_fix_wh_names_a_malformed_image_once(tmp_path: Path, cli):
    images = [{"id": 1, "file_name": "a.jpg", "height": 10, "width": 10}, {"id": "x", "file_name": 5},
              {"id": 2, "file_name": "b.jpg", "height": 10, "width": 10}]
    src = tmp_path / "o.json"
    src.write_text(json.dumps({"images": images, "annotations": [], "categories": [{"id": 1, "name": "a"}]}))
    info = tmp_path / "info.tsv"
    info.write_text("id\tfile_name\theight\twidth\n1\ta.jpg\t10\t10\n2\tb.jpg\t12\t10\n")
    r = cli("o365", "fix-wh", src, "--info", info)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    named = [line for line in r.stderr.splitlines() if "images[1]" in line]
    assert named == [f"{src}: images[1]: id: expected int, got str"], r.stderr
    r = cli("o365", "fix-wh", src, "--info", info, "--json")
    problems = json.loads(r.stdout)["problems"]
    assert (problems["errors"], problems["by_code"]) == (1, [{"severity": "error", "code": "bad-element", "count": 1}])
