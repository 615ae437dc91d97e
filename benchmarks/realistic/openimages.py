"""openimages2odvg row: OpenImages-v6-shaped CSVs and real JPEGs (issue #17).

Shaped like the real download where it matters to the converter:

* ``oidv6-train-annotations-bbox.csv`` with the real 13-column header; ImageIDs are 16 hex digits,
  rows sorted by ImageID (the real file is) except for a few images whose rows are partly moved
  elsewhere in the file ("scattered"); MIDs like ``/m/0k4j``/``/m/01g317``; coordinates printed
  as the real file prints them (``0.012500``: six decimals, a few shorter like ``0.5``/``1``);
  ``Source`` ``xclick``/``activemil``; flags 0/1 with ``-1`` (unknown) on ``activemil`` rows;
  ~6 % group-of rows, a few zero-area boxes, some images whose only rows are group-of; boxes per
  image heavy-tailed (mean ≈ 8, up to ~220);
* ``class-descriptions-boxable.csv``: 601 classes, no header, some names with commas and quotes
  (written by the ``csv`` module, so quoted as the real file is);
* ``train/<ImageID>.jpg``: real JPEGs of realistic sizes (long side 1024 px mostly, some smaller),
  natural-looking content (41–279 KB, mean 137 KB), a quarter with an EXIF block (orientations 1, 3, 6,
  8), a fifth progressive, some with an ICC profile. Encoding 100k distinct 1024-px JPEGs would take
  hours on 2 cores, so a pool of ``POOL`` distinct encoded JPEGs is written out 100k times as
  **separate files** (real copies, not links: every file has its own pages in the page cache). Files
  sharing bytes does not matter to a size reader (neither side caches by content).

Page cache: 100k × ~137 KB ≈ 13 GB of images. Upstream reads every file whole, odvgkit only the
headers, so whichever side ran last would leave the other a warm cache. ``upstream()`` and
``ours()`` therefore evict the image files from the page cache right before each run
(``posix_fadvise(DONTNEED)`` per file, after one ``sync`` — no root needed, no other process's
cache touched): both sides start **cold** for image data (directory entries and inodes stay
cached for both). ``OI_BENCH_CACHE=warm`` skips the eviction (then warm for odvgkit after upstream).

The upstream script runs as written: ``--input-dir ROOT/annotations --img-prefix train/ -o OUT``
(it reads ``dirname(input_dir)/img_prefix/<id>.jpg``); it imports ``mmcv.image.imfrombytes`` and
``mmengine.fileio.get``, which work in the ``train`` extra's environment (mmcv-lite + opencv) with
no change. odvgkit runs in its default mode (all boxes kept, with their five flags);
:func:`compare` removes what upstream does not write (group-of boxes, the flags) and merges
upstream's split records, then requires the rest to be equal (docs/deviations.md, openimages2odvg).
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np

SCALES = {"full": {"images": 100_000, "rows": 804_000}, "medium": {"images": 20_000, "rows": 160_800},
          "small": {"images": 2_000, "rows": 16_080}}
POOL = 48
HEADER = ["ImageID", "Source", "LabelName", "Confidence", "XMin", "XMax", "YMin", "YMax",
          "IsOccluded", "IsTruncated", "IsGroupOf", "IsDepiction", "IsInside"]
_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_DONE = ".complete"


def _mids(rng: np.random.Generator, n: int) -> list[str]:
    """Freebase-style MIDs, distinct: ``/m/`` + 2–7 of [0-9a-z] (``/m/0k4j``, ``/m/01g317``)."""
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        k = int(rng.integers(2, 8))
        mid = "/m/0" + "".join(_B36[int(c)] for c in rng.integers(0, 36, k - 1))
        if mid not in seen:
            seen.add(mid)
            out.append(mid)
    return out


def _class_names(rng: np.random.Generator, n: int) -> list[str]:
    words = ["Tortoise", "Container", "Magpie", "Sea turtle", "Football", "Ambulance", "Ladder", "Toothbrush",
             "Syringe", "Sink", "Toy", "Organ", "Cassette deck", "Apple", "Human eye", "Cosmetics", "Paddle",
             "Snowman", "Beer", "Chopsticks", "Human beard", "Bird", "Parking meter", "Traffic light", "Croissant"]
    names = []
    for k in range(n):
        base = f"{words[k % len(words)]} {k // len(words)}" if k >= len(words) else words[k]
        if k % 53 == 7:
            base = f"{base}, hand-held"  # a comma: the field gets quoted
        elif k % 71 == 11:
            base = f'{base} "type {k}"'  # quotes: doubled inside a quoted field
        names.append(base)
    return names


def _jpeg_pool(rng: np.random.Generator, n: int) -> list[bytes]:
    """``n`` distinct JPEGs: smooth structure + texture + sensor noise, so sizes and decode work are real."""
    from PIL import Image, ImageCms

    shapes = [(1024, 768), (1024, 683), (768, 1024), (1024, 576), (1024, 1024), (683, 1024), (1024, 680),
              (1024, 819), (800, 600), (640, 480), (1024, 732), (1024, 765)]
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    pool = []
    for k in range(n):
        w, h = shapes[k % len(shapes)]
        low = Image.fromarray((rng.random((h // 64 + 2, w // 64 + 2, 3)) * 255).astype(np.uint8)).resize((w, h), Image.BICUBIC)
        mid = Image.fromarray((rng.random((h // 8, w // 8, 3)) * 255).astype(np.uint8)).resize((w, h), Image.BILINEAR)
        arr = np.asarray(low, dtype=np.float32) * 0.75 + np.asarray(mid, dtype=np.float32) * 0.25
        arr += rng.normal(0, 4.0, arr.shape).astype(np.float32)
        im = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
        kw: dict[str, object] = {"quality": int(rng.integers(80, 95))}
        if k % 5 == 1:
            kw["progressive"] = True
        if k % 4 == 2:
            exif = Image.Exif()
            exif[0x010F] = "Canon"
            exif[0x0112] = (1, 3, 6, 8)[(k // 4) % 4]
            kw["exif"] = exif.tobytes()
        if k % 6 == 3:
            kw["icc_profile"] = srgb
        buf = io.BytesIO()
        im.save(buf, "JPEG", **kw)
        pool.append(buf.getvalue())
    return pool


def _coord(v: float, rng_u: float) -> str:
    """The real file prints six decimals; a few values are short (``0.5``, ``1``)."""
    if rng_u < 0.01:
        return f"{round(v, 1):g}"
    return f"{v:.6f}"


def generate(root: Path, scale: str) -> dict[str, Path]:
    root = Path(root)
    ann, train = root / "annotations", root / "train"
    inputs = {"root": root, "annotations": ann, "train": train}
    if (root / _DONE).exists():
        return inputs
    n_images, n_rows = SCALES[scale]["images"], SCALES[scale]["rows"]
    rng = np.random.default_rng(17)
    ann.mkdir(parents=True, exist_ok=True)
    train.mkdir(parents=True, exist_ok=True)

    mids = _mids(rng, 601)
    with open(ann / "class-descriptions-boxable.csv", "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, lineterminator="\n").writerows(zip(mids, _class_names(rng, 601), strict=True))

    ids = sorted({f"{int(x):016x}" for x in rng.integers(0, 2**63, n_images + n_images // 100)})[:n_images]
    # boxes per image: heavy-tailed (lognormal), mean n_rows / n_images, at least 1
    raw = rng.lognormal(0.0, 1.0, n_images)
    counts = 1 + np.floor(raw * (n_rows - n_images) / raw.sum()).astype(int)
    counts[rng.choice(n_images, n_rows - int(counts.sum()), replace=False)] += 1  # exact total
    class_p = rng.dirichlet(np.full(601, 0.3))  # a few classes dominate, as in the real file
    rows: list[list[str]] = []
    for i, (image_id, n) in enumerate(zip(ids, counts, strict=True)):
        only_group = i > 0 and rng.random() < 0.01
        for j in range(int(n)):
            activemil = rng.random() < 0.15
            x1, y1 = rng.uniform(0, 0.9, 2)
            bw, bh = rng.uniform(0.005, 1.0 - x1), rng.uniform(0.005, 1.0 - y1)
            x2, y2 = x1 + bw, y1 + bh
            if rng.random() < 0.002 and (i or j):  # (upstream crashes when the file's first box has no area)
                x2 = x1  # zero-area box (upstream and odvgkit drop it)
            u = rng.random(4)
            group = 1 if only_group or (rng.random() < 0.06 and not (i == 0 and j == 0)) else 0
            flags = ["-1", "-1", str(group), "-1", "-1"] if activemil else \
                [str(int(rng.random() < 0.6)), str(int(rng.random() < 0.3)), str(group),
                 str(int(rng.random() < 0.05)), str(int(rng.random() < 0.02))]
            rows.append([image_id, "activemil" if activemil else "xclick",
                         mids[int(rng.choice(601, p=class_p)) if j % 4 else int(rng.integers(0, 601))], "1",
                         _coord(x1, u[0]), _coord(x2, u[1]), _coord(y1, u[2]), _coord(y2, u[3]), *flags])
    # scatter: 0.5 % of images get their last rows moved to a random later place in the file
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    moved: list[tuple[int, list[str]]] = []
    take: set[int] = set()
    for i in sorted(rng.choice(np.arange(1, n_images - 1), n_images // 200, replace=False)):
        n = int(counts[i])
        if n < 2:
            continue
        k = int(rng.integers(1, n))
        for r in range(int(starts[i]) + k, int(starts[i]) + n):
            take.add(r)
            moved.append((int(rng.integers(int(starts[i]) + n + 1, len(rows) + 1)), rows[r]))
    kept = [(r, row) for r, row in enumerate(rows) if r not in take]
    merged = sorted([(float(r), row) for r, row in kept] + [(p - 0.5, row) for p, row in moved], key=lambda t: t[0])
    with open(ann / "oidv6-train-annotations-bbox.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(HEADER)
        w.writerows(row for _, row in merged)

    pool = _jpeg_pool(rng, POOL)
    pick = rng.integers(0, POOL, n_images)
    for image_id, p in zip(ids, pick, strict=True):
        (train / f"{image_id}.jpg").write_bytes(pool[int(p)])
    os.sync()  # dirty pages cannot be evicted: write them out once
    (root / _DONE).write_text(json.dumps({"images": n_images, "rows": len(merged), "pool": POOL}))
    return inputs


def evict(folder: Path) -> int:
    """Drop ``folder``'s files from the page cache (``posix_fadvise(DONTNEED)``); bytes evicted."""
    total = 0
    with os.scandir(folder) as it:
        for entry in it:
            fd = os.open(entry.path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                total += os.fstat(fd).st_size
            finally:
                os.close(fd)
    return total


def _prepare(inputs: dict[str, Path], out: Path) -> None:
    if out.exists():
        shutil.rmtree(out)  # a fresh output each run (odvgkit would byte-compare an existing one)
    out.mkdir(parents=True)
    if os.environ.get("OI_BENCH_CACHE", "cold") != "warm":
        evict(inputs["train"])


def upstream(inputs: dict[str, Path], out: Path, scripts: Path) -> list[str]:
    _prepare(inputs, out)
    return [str(Path(scripts) / "openimages2odvg.py"), "--input-dir", str(inputs["annotations"]),
            "--img-prefix", "train/", "-o", str(out / "oidv6-train-annotations_od.json")]


def ours(inputs: dict[str, Path], out: Path) -> list[str]:
    _prepare(inputs, out)
    return ["-m", "odvgkit", "convert", "openimages2odvg", str(inputs["annotations"]),
            "--images-root", str(inputs["train"]), "-o", str(out / "oidv6-train-annotations_od.json"), "--quiet"]


def _read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def compare(inputs: dict[str, Path], out_upstream: Path, out_ours: Path) -> str:
    """Same records modulo the documented deviations, checked exactly.

    From odvgkit's output: group-of boxes removed (upstream drops them), the five flags removed,
    images left without boxes removed. From upstream's: records of the same image (its rows were
    scattered) merged in file order. Then: same images, in the same order, with equal sizes and
    equal instance lists (bbox floats compared exactly), and equal label maps.
    """
    up = _read_jsonl(out_upstream / "oidv6-train-annotations_od.json")
    me = _read_jsonl(out_ours / "oidv6-train-annotations_od.json")
    split = len(up)
    merged: dict[str, dict] = {}
    for rec in up:
        have = merged.get(rec["filename"])
        if have is None:
            merged[rec["filename"]] = rec
        else:
            if (have["height"], have["width"]) != (rec["height"], rec["width"]):
                return f"DIFFERENT: {rec['filename']}: upstream gave two sizes"
            have["detection"]["instances"].extend(rec["detection"]["instances"])
    split -= len(merged)
    flags = ("is_group_of", "is_occluded", "is_truncated", "is_depiction", "is_inside")
    mine: dict[str, dict] = {}
    kept_group = 0
    for rec in me:
        insts = []
        for inst in rec["detection"]["instances"]:
            if inst.get("is_group_of"):
                kept_group += 1
                continue
            insts.append({k: v for k, v in inst.items() if k not in flags})
        if insts:
            mine[rec["filename"]] = {**rec, "detection": {"instances": insts}}
    only_up, only_me = set(merged) - set(mine), set(mine) - set(merged)
    if only_up or only_me:
        return f"DIFFERENT: images only upstream {len(only_up)}, only odvgkit {len(only_me)}"
    # order: odvgkit by the image's first row; upstream by its first row that makes a box
    first: dict[str, int] = {}
    first_kept: dict[str, int] = {}
    with open(inputs["annotations"] / "oidv6-train-annotations-bbox.csv", newline="", encoding="utf-8") as fh:
        for n, row in enumerate(csv.DictReader(fh)):
            f = row["ImageID"] + ".jpg"
            first.setdefault(f, n)
            if row["IsGroupOf"] != "1" and row["XMin"] != row["XMax"] and row["YMin"] != row["YMax"]:
                first_kept.setdefault(f, n)
    if list(mine) != sorted(mine, key=first.__getitem__):
        return "DIFFERENT: odvgkit's records are not in order of each image's first row"
    if list(merged) != sorted(merged, key=first_kept.__getitem__):
        return "DIFFERENT: upstream's records are not in order of each image's first kept row"
    moved = sum(first[f] != first_kept[f] for f in mine)  # the only images the two orders may disagree on
    bad = [f for f in merged if merged[f] != mine[f]]
    if bad:
        f = bad[0]
        return f"DIFFERENT: {len(bad)} records differ, e.g. {f}: {json.dumps(merged[f])[:300]} vs {json.dumps(mine[f])[:300]}"
    lm_up = json.loads((out_upstream / "openimages_label_map.json").read_text("utf-8"))
    lm_me = json.loads((out_ours / "openimages_label_map.json").read_text("utf-8"))
    if lm_up != lm_me:
        return "DIFFERENT: label maps differ"
    return (f"same records ({len(merged)} images) modulo documented deviations: {split} upstream records of "
            f"scattered images merged, {kept_group} group-of boxes kept and flagged by odvgkit, {moved} images "
            "ordered by their first row, not their first kept row")


if __name__ == "__main__":  # python benchmarks/realistic/openimages.py ROOT [small|full]: generate only
    print(generate(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "small"))
