"""openimages2odvg's fast path against a plain reference, on a small file shaped like the real one.

The reference below is written independently of ``odvgkit/convert/openimages.py``: every row read
with ``csv.DictReader``, rows grouped per image in order of first appearance, sizes from Pillow
(EXIF orientation applied), upstream's box arithmetic with ``max``/``min``. The converter must give
the same records, value for value and type for type (``0`` vs ``0.0``), whatever its batch and
chunk sizes, and must give a scattered image out when its first run of rows ends — not hold
everything after it until its last row.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path
from typing import Any

from PIL import Image

import odvgkit.convert.openimages as oi
import odvgkit.images as images
from odvgkit.errors import ProblemLog

HEADER = ["ImageID", "Source", "LabelName", "Confidence", "XMin", "XMax", "YMin", "YMax",
          "IsOccluded", "IsTruncated", "IsGroupOf", "IsDepiction", "IsInside"]
FLAGS = [("IsGroupOf", "is_group_of"), ("IsOccluded", "is_occluded"), ("IsTruncated", "is_truncated"),
         ("IsDepiction", "is_depiction"), ("IsInside", "is_inside")]


def _dataset(root: Path, n_images: int = 40, seed: int = 5) -> tuple[Path, Path]:
    """Sorted ImageIDs, a few rows moved far away, 6-decimal coordinates (some out of [0, 1], some
    zero-area), flags 0/1/-1, names with commas and quotes, JPEGs with EXIF orientations and
    progressive ones."""
    rnd = random.Random(seed)
    ann, imgs = root / "annotations", root / "train"
    ann.mkdir(parents=True)
    imgs.mkdir()
    mids = [f"/m/0{k:x}{rnd.choice('abcxyz')}" for k in range(30)]
    names = [f"Thing {k}" if k % 7 else f'Thing "{k}", big' for k in range(30)]
    with open(ann / "class-descriptions-boxable.csv", "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, lineterminator="\n").writerows(zip(mids, names, strict=True))
    ids = sorted(f"{rnd.getrandbits(64):016x}" for _ in range(n_images))
    rows: list[list[str]] = []
    for i, image_id in enumerate(ids):
        w, h = rnd.choice([(64, 48), (48, 64), (100, 37), (31, 80)])
        kw: dict[str, Any] = {"progressive": i % 5 == 1}
        if i % 4 == 2:
            exif = Image.Exif()
            exif[0x0112] = (3, 6, 8, 1)[(i // 4) % 4]
            kw["exif"] = exif
        Image.new("RGB", (w, h), (i * 5 % 256, 90, 200)).save(imgs / f"{image_id}.jpg", "JPEG", **kw)
        for _ in range(rnd.randint(1, 12)):
            x1, y1 = rnd.uniform(-0.05, 0.9), rnd.uniform(-0.05, 0.9)
            x2, y2 = x1 + rnd.uniform(0.0, 0.3), y1 + rnd.uniform(0.001, 0.3)
            coords = [f"{v:.6f}" for v in (x1, x2, y1, y2)]
            if rnd.random() < 0.05:
                coords[1] = coords[0]  # zero width
            if rnd.random() < 0.05:
                coords[3] = "1"
            flags = [rnd.choice(["0", "1", "-1"]) for _ in range(5)]
            flags[2] = "1" if rnd.random() < 0.1 else "0"
            rows.append([image_id, rnd.choice(["xclick", "activemil"]), rnd.choice(mids), "1", *coords, *flags])
    for _ in range(12):  # scatter: move a row far later (some to the very end)
        k = rnd.randrange(len(rows) - 1)
        moved = rows.pop(k)
        rows.insert(rnd.randint(min(k + 20, len(rows)), len(rows)), moved)
    with open(ann / "oidv6-train-annotations-bbox.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(HEADER)
        w.writerows(rows)
    return ann, imgs


def _reference(ann: Path, imgs: Path) -> list[dict[str, Any]]:
    with open(ann / "class-descriptions-boxable.csv", newline="", encoding="utf-8") as fh:
        classes = list(csv.reader(fh))
    label = {mid: k for k, (mid, _) in enumerate(classes)}
    per_image: dict[str, list[dict[str, str]]] = {}
    with open(ann / "oidv6-train-annotations-bbox.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            per_image.setdefault(row["ImageID"], []).append(row)
    out = []
    for image_id, rows in per_image.items():
        with Image.open(imgs / f"{image_id}.jpg") as im:
            w, h = im.size
            if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):
                w, h = h, w
        instances = []
        for r in rows:
            x1, x2, y1, y2 = (float(r[c]) for c in ("XMin", "XMax", "YMin", "YMax"))
            box = [max(x1 * w, 0), max(y1 * h, 0), min(x2 * w, w), min(y2 * h, h)]
            if box[2] - box[0] <= 0 or box[3] - box[1] <= 0:
                continue
            inst: dict[str, Any] = {"bbox": box, "label": label[r["LabelName"]], "category": classes[label[r["LabelName"]]][1]}
            inst.update({key: r[col] == "1" for col, key in FLAGS if r[col] in ("0", "1")})
            instances.append(inst)
        if instances:
            out.append({"filename": f"{image_id}.jpg", "height": h, "width": w, "detection": {"instances": instances}})
    return out


def _typed(x: Any) -> Any:
    """Values with their JSON types, so that 0 and 0.0 differ."""
    if isinstance(x, dict):
        return {k: _typed(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_typed(v) for v in x]
    return (type(x).__name__, x)


def test_cli_matches_reference(tmp_path, read_jsonl, cli):
    ann, imgs = _dataset(tmp_path)
    expected = _reference(ann, imgs)
    assert len(expected) >= 35 and any(len({i["label"] for i in r["detection"]["instances"]}) > 1 for r in expected)
    r = cli("convert", "openimages2odvg", ann, "--images-root", imgs, "-o", tmp_path / "o.jsonl", "--json")
    assert r.returncode == 0, r.stderr
    got = read_jsonl(tmp_path / "o.jsonl")
    assert [_typed(x) for x in got] == [_typed(x) for x in expected]
    assert json.loads(r.stdout)["images"] == len(expected)


def test_tiny_batches_and_chunks_match_reference(tmp_path, monkeypatch):
    ann, imgs = _dataset(tmp_path, n_images=30, seed=11)
    monkeypatch.setattr(oi, "_BATCH_ROWS", 3)
    monkeypatch.setattr(images, "_CHUNK", 2)
    for workers in (1, 3):
        conv = oi.openimages_to_odvg(ann, imgs, workers=workers, problems=ProblemLog())
        got = json.loads(json.dumps(list(conv.records)))
        assert [_typed(x) for x in got] == [_typed(x) for x in _reference(ann, imgs)]


def _rows(tmp_path: Path, jpeg, lines: list[str]) -> tuple[Path, Path]:
    ann = tmp_path / "annotations"
    ann.mkdir()
    (ann / "class-descriptions-boxable.csv").write_text("/m/01,Cat\n/m/02,Dog\n", "utf-8")
    (ann / "oidv6-train-annotations-bbox.csv").write_text(",".join(HEADER) + "\n" + "".join(lines), "utf-8")
    imgs = tmp_path / "train"
    for name, size in (("aaa", (100, 50)), ("bbb", (40, 40)), ("ccc", (20, 10))):
        jpeg(imgs / f"{name}.jpg", size)
    return ann, imgs


def test_scattered_image_is_given_out_after_its_first_run(tmp_path, jpeg, monkeypatch):
    """aaa's last row is the file's last: aaa still comes out before the rows in between are read."""
    filler = ["bbb,x,/m/02,1,0.1,0.5,0.2,0.6,0,0,0,0,0\n"] * 2000
    ann, imgs = _rows(tmp_path, jpeg, ["aaa,x,/m/01,1,0.1,0.5,0.2,0.6,0,0,0,0,0\n", *filler,
                                      "aaa,x,/m/02,1,0.5,1.0,0.0,0.5,1,0,0,0,0\n"])
    seen = [0]

    def on_rows(n: int) -> None:
        seen[0] += n

    monkeypatch.setattr(oi, "_BATCH_ROWS", 50)
    bbox = ann / "oidv6-train-annotations-bbox.csv"
    mid_to_label, _ = oi.read_classes(ann / "class-descriptions-boxable.csv")
    it = oi._complete_images(bbox, oi.csv_columns(bbox), mid_to_label, ProblemLog(), on_rows)
    image_id, rows = next(it)
    assert (image_id, [r[:5] for r in rows]) == ("aaa", [(0, 0.1, 0.5, 0.2, 0.6), (1, 0.5, 1.0, 0.0, 0.5)])
    assert seen[0] == 0  # given out inside the first batch of 50 rows, not after row 2002
    assert [(i, len(r)) for i, r in it] == [("bbb", 2000)]
    conv = oi.openimages_to_odvg(ann, imgs, problems=ProblemLog())
    first, second = conv.records
    assert [i["bbox"] for i in first["detection"]["instances"]] == [[10.0, 10.0, 50.0, 30.0], [50.0, 0.0, 100.0, 25.0]]
    assert (first["filename"], second["filename"]) == ("aaa.jpg", "bbb.jpg")


def test_scattered_bad_rows_reported_once_in_file_order(tmp_path, jpeg, read_jsonl, cli):
    lines = [
        "aaa,x,/m/01,1,0.1,0.5,0.2,0.6,0,0,0,0,0\n",  # line 2
        "bbb,x,/m/02,1,0.0,0.5,0.0,0.5,0,0,0,0,0\n",  # 3
        "aaa,x,/m/09,1,0.1,0.5,0.2,0.6,0,0,0,0,0\n",  # 4: aaa's later run, unknown MID
        "ccc,x,/m/01,1,0.1,zz,0.2,0.6,0,0,0,0,0\n",  # 5: not a number
        "ccc,x,/m/01,1,0.0,1.0,0.0,1.0,0,0,0,0,0\n",  # 6
        "aaa,x,/m/02,1,0.5,1.0,0.0,0.5,0,1,0,0,0\n",  # 7: aaa's later run, valid
    ]
    ann, imgs = _rows(tmp_path, jpeg, lines)
    r = cli("convert", "openimages2odvg", ann, "--images-root", imgs, "-o", tmp_path / "o.jsonl")
    assert r.returncode == 1
    problems = [x for x in r.stderr.splitlines() if "oidv6-train-annotations-bbox.csv:" in x]
    assert [p.split("oidv6-train-annotations-bbox.csv:")[1] for p in problems] == [
        "4: LabelName: MID '/m/09' is not in the class descriptions", "5: XMax: not a number: 'zz'"]
    recs = read_jsonl(tmp_path / "o.jsonl")
    assert [(x["filename"], len(x["detection"]["instances"])) for x in recs] == [("aaa.jpg", 2), ("bbb.jpg", 1), ("ccc.jpg", 1)]
    assert recs[0]["detection"]["instances"][1]["is_truncated"] is True
    r = cli("convert", "openimages2odvg", ann, "--images-root", imgs, "-o", tmp_path / "s.jsonl", "--strict")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].endswith(
        "oidv6-train-annotations-bbox.csv:4: LabelName: MID '/m/09' is not in the class descriptions")
    assert not (tmp_path / "s.jsonl").exists()


def test_image_sizes_reads_ahead_a_bounded_distance(tmp_path, jpeg):
    paths = [jpeg(tmp_path / f"{k}.jpg", (10 + k, 20)) for k in range(6)]
    pulled = [0]

    def source():
        for k in range(5000):
            pulled[0] += 1
            yield paths[k % 6] if k != 7 else tmp_path / "missing.jpg"

    it = images.image_sizes(source(), workers=2)
    got = [next(it) for _ in range(10)]
    assert pulled[0] <= 10 + 2 * 2 * images._CHUNK + images._CHUNK
    assert [g[1] for g in got[:7]] == [(10 + k % 6, 20) for k in range(7)]
    assert got[7][1] is None and "image not found" in got[7][2]
    rest = list(it)
    assert len(rest) == 4990 and pulled[0] == 5000
