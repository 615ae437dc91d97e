"""Annotation-tool importers: throughput and peak memory on generated inputs.

    python benchmarks/bench_importers.py [--scale 1.0] [--workdir DIR]

* ``cvat2odvg``: a "CVAT for images 1.1" XML of 100,000 images × (5 boxes with an attribute + 1
  polygon) ≈ 104 MB. Memory must not grow with the file (expat, one ``<image>`` at a time).
* ``labelme2odvg``: 5,000 LabelMe files × 8 shapes (rectangles and polygons) with a 640×480 JPEG
  each (headers read), without and with ``--classes`` (one parsing pass less).
* ``cityscapes2odvg``: 100 gtFine files of 2048×1024 × 60 twenty-point polygons, ``--no-images``
  (the cost is painting the polygons as cityscapesScripts does).

Each command runs in its own subprocess (the real CLI); the peak RSS is that child's
(``ru_maxrss``). There is no upstream converter for these formats to compare with.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LABELS = ["car", "person", "bike", "bus"]


def make_cvat(path: Path, n: int) -> None:
    rnd = random.Random(0)
    with open(path, "w", encoding="utf-8") as f:
        f.write('<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n<version>1.1</version>\n<meta><task><labels>')
        f.write("".join(f"<label><name>{c}</name></label>" for c in LABELS))
        f.write("</labels></task></meta>\n")
        for i in range(n):
            f.write(f'  <image id="{i}" name="f/{i:07d}.jpg" width="1920" height="1080">\n')
            for k in range(5):
                x, y = rnd.uniform(0, 1800), rnd.uniform(0, 1000)
                f.write(f'    <box label="{rnd.choice(LABELS)}" source="manual" occluded="{k % 2}" xtl="{x:.2f}" '
                        f'ytl="{y:.2f}" xbr="{x + 50:.2f}" ybr="{y + 40:.2f}" z_order="0">\n'
                        '      <attribute name="a">v</attribute>\n    </box>\n')
            f.write('    <polygon label="car" source="manual" occluded="0" points="10.00,20.00;30.50,22.00;25.00,40.00" '
                    'z_order="0"></polygon>\n  </image>\n')
        f.write("</annotations>\n")


def make_labelme(root: Path, n: int) -> None:
    from PIL import Image

    rnd = random.Random(1)
    (root / "ann").mkdir(parents=True)
    (root / "img").mkdir()
    buf = io.BytesIO()
    Image.new("RGB", (640, 480), (10, 20, 30)).save(buf, "JPEG")
    for i in range(n):
        (root / "img" / f"{i:05d}.jpg").write_bytes(buf.getvalue())
        shapes = []
        for k in range(8):
            x, y = rnd.uniform(0, 500), rnd.uniform(0, 400)
            pts = [[x, y], [x + 60, y + 40]] if k % 2 else [[x, y], [x + 30, y + 5], [x + 20, y + 50], [x + 3, y + 33]]
            shapes.append({"label": rnd.choice("abcde"), "points": pts, "group_id": None, "description": "",
                           "shape_type": "rectangle" if k % 2 else "polygon", "flags": {}})
        doc = {"version": "5.4.1", "flags": {}, "shapes": shapes, "imagePath": f"../img/{i:05d}.jpg",
               "imageData": None, "imageHeight": 480, "imageWidth": 640}
        (root / "ann" / f"{i:05d}.json").write_text(json.dumps(doc, indent=2))


def make_cityscapes(root: Path, n: int) -> None:
    rnd = random.Random(2)
    names = ["road", "sidewalk", "building", "car", "person", "rider", "bicycle", "cargroup", "sky", "vegetation",
             "bus", "truck", "license plate"]
    for i in range(n):
        d = root / "gtFine" / "train" / f"city{i % 3}"
        d.mkdir(parents=True, exist_ok=True)
        objects = []
        for _ in range(60):
            x, y, w, h = rnd.randint(0, 1900), rnd.randint(0, 900), rnd.randint(10, 300), rnd.randint(10, 200)
            pts = ([[x + rnd.randint(0, w), y] for _ in range(5)] + [[x + w, y + rnd.randint(0, h)] for _ in range(5)]
                   + [[x + rnd.randint(0, w), y + h] for _ in range(5)] + [[x, y + rnd.randint(0, h)] for _ in range(5)])
            objects.append({"label": rnd.choice(names), "polygon": [[min(a, 2047), min(b, 1023)] for a, b in pts]})
        (d / f"c{i}_000000_000019_gtFine_polygons.json").write_text(
            json.dumps({"imgHeight": 1024, "imgWidth": 2048, "objects": objects}))


def run(args: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one CLI run in a fresh child (its own ``ru_maxrss``)."""
    t = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "odvgkit", *args, "-q"], env={**os.environ, "OMP_NUM_THREADS": "1"})
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - t
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"{args[1]} failed with exit status {child.returncode}")
    return wall, usage.ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--workdir", type=Path)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=a.workdir) as tmp:
        work = Path(tmp)
        n_cvat, n_lm, n_cs = int(100_000 * a.scale), int(5_000 * a.scale), max(1, int(100 * a.scale))
        make_cvat(work / "cvat.xml", n_cvat)
        make_labelme(work / "lm", n_lm)
        make_cityscapes(work / "cs", n_cs)
        rows = [
            (f"cvat2odvg, {n_cvat:,} images, {(work / 'cvat.xml').stat().st_size / 1e6:.0f} MB",
             run(["convert", "cvat2odvg", str(work / "cvat.xml"), "-o", str(work / "cvat_od.jsonl")])),
            (f"labelme2odvg, {n_lm:,} files (two passes: classes sorted)",
             run(["convert", "labelme2odvg", str(work / "lm" / "ann"), "--images-root", str(work / "lm"),
                  "-o", str(work / "lm_od.jsonl")])),
            (f"labelme2odvg, {n_lm:,} files, --classes",
             run(["convert", "labelme2odvg", str(work / "lm" / "ann"), "--images-root", str(work / "lm"),
                  "--classes", "a,b,c,d,e", "-o", str(work / "lm_od2.jsonl")])),
            (f"cityscapes2odvg, {n_cs:,} images 2048x1024",
             run(["convert", "cityscapes2odvg", str(work / "cs"), "--no-images", "-o", str(work / "cs_od.jsonl")])),
        ]
    print("| command | wall | peak RSS |\n|---|---|---|")
    for name, (wall, rss) in rows:
        print(f"| {name} | {wall:.1f} s | {rss:.0f} MiB |")


if __name__ == "__main__":
    main()
