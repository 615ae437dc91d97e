"""Benchmark: ``voc2odvg`` and ``yolo2odvg`` on 100k-image datasets, side by side with references.

* **Pascal VOC**: 100k XML files (≈ 10 boxes each, indented like real VOC files, VOC class names)
  under ``VOC2007/`` with tiny real JPEG/PNG images of varying sizes. Reference: MMDetection's real
  ``tools/dataset_converters/pascal_voc.py`` (``cvt_annotations(..., 'trainval', X.json)``) then
  the real ``coco2odvg.py X.json -d v3det`` — two fresh processes, times added, peak = the larger.
  ``-d v3det`` maps ``category_id - 1`` and reads the names from the file; every ``-d`` choice of
  ``coco2odvg.py`` fails on category id 0, which ``pascal_voc.py`` gives to ``aeroplane``, so the
  generated data leaves ``aeroplane`` out (an upstream bug odvgkit does not have).
* **YOLO**: 100k label files + images (``images/``, ``labels/``, ``data.yaml``). MMDetection has no
  YOLO converter; the reference is the straightforward single-process script a user writes:
  Pillow ``Image.open`` + ``exif_transpose``-aware size per image, parse the txt, ``json.dumps``.

The upstream scripts are **not** part of odvgkit and never committed. By default the harness copies
the ones installed with mmdet 3.3.0 (``mmdet/.mim/tools/dataset_converters/``, identical to
open-mmlab/mmdetection v3.3.0) into ``WORKDIR/upstream/`` (under the git-ignored ``bench-data/``);
``--upstream DIR`` points at another copy, e.g. ``tools/dataset_converters/pascal_voc.py`` and
``coco2odvg.py`` downloaded from https://github.com/open-mmlab/mmdetection/tree/v3.3.0.

``pascal_voc.py`` imports ``mmdet.evaluation`` (the ``train`` extra; with mmcv-lite the harness
imports ``odvgkit_train`` first for its ``mmcv._ext`` stand-in); ``coco2odvg.py`` needs
``pycocotools``, ``jsonlines`` and ``tqdm``.

Every run is a fresh child process; wall time and peak RSS (``ru_maxrss`` of the child and its
workers) are measured the same way for both sides::

    python benchmarks/bench_own_data.py                  # 100k + 100k (the issue's size)
    python benchmarks/bench_own_data.py --images 5000    # quick

odvgkit's runs are repeated (``--repeat``, default 3) and the fastest is reported with its CPU
seconds; the references run once (minutes). The load average before and after is printed: on a
machine shared with other work, wall times are only comparable at the same load, CPU seconds
(user + system of the process and its workers) much more so.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from bench_upstream import fetch  # the real converters, copied from the installed mmdet

HERE = Path(__file__).resolve()
REPO = HERE.parents[1]
VOC_CLASSES = ["aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable",
               "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor"]
SIZES = [(64, 48), (48, 64), (80, 60), (96, 72), (100, 75), (120, 90), (160, 120), (72, 96)]


def _image_bytes() -> dict[tuple[int, int, str], bytes]:
    from PIL import Image

    out = {}
    for w, h in SIZES:
        for fmt in ("JPEG", "PNG"):
            buf = io.BytesIO()
            Image.new("RGB", (w, h), (w % 255, h % 255, 90)).save(buf, fmt)
            out[(w, h, fmt)] = buf.getvalue()
    return out


def gen(root: Path, n: int, seed: int = 0) -> None:
    """Both datasets, deterministic; images are shared between them through hard links."""
    rng = np.random.default_rng(seed)
    blobs = _image_bytes()
    voc = root / "voc" / "VOC2007"
    yolo = root / "yolo"
    for d in (voc / "Annotations", voc / "JPEGImages", voc / "ImageSets" / "Main", yolo / "images", yolo / "labels"):
        d.mkdir(parents=True, exist_ok=True)
    ids = []
    for i in range(n):
        w, h = SIZES[i % len(SIZES)]
        fmt = "PNG" if i % 5 == 0 else "JPEG"
        stem = f"{i:07d}"
        ext = ".png" if fmt == "PNG" else ".jpg"
        img = voc / "JPEGImages" / f"{stem}.jpg"  # VOC: upstream opens <id>.jpg (content may be PNG)
        img.write_bytes(blobs[(w, h, fmt)])
        os.link(img, yolo / "images" / f"{stem}{ext}")
        k = int(rng.integers(5, 16))  # ≈ 10 boxes per image
        x1 = rng.integers(1, w // 2, k)
        y1 = rng.integers(1, h // 2, k)
        x2 = np.minimum(x1 + rng.integers(2, w // 2, k), w)
        y2 = np.minimum(y1 + rng.integers(2, h // 2, k), h)
        cls = rng.integers(1, 20, k)  # no 'aeroplane' (see the module docstring)
        diff = rng.random(k) < 0.05
        objs = "".join(
            f"\t<object>\n\t\t<name>{VOC_CLASSES[c]}</name>\n\t\t<pose>Unspecified</pose>\n\t\t<truncated>0</truncated>\n"
            f"\t\t<difficult>{int(d)}</difficult>\n\t\t<bndbox>\n\t\t\t<xmin>{a}</xmin>\n\t\t\t<ymin>{b}</ymin>\n"
            f"\t\t\t<xmax>{c2}</xmax>\n\t\t\t<ymax>{d2}</ymax>\n\t\t</bndbox>\n\t</object>\n"
            for c, d, a, b, c2, d2 in zip(cls, diff, x1, y1, x2, y2, strict=True))
        (voc / "Annotations" / f"{stem}.xml").write_text(
            f"<annotation>\n\t<folder>VOC2007</folder>\n\t<filename>{stem}.jpg</filename>\n\t<source>\n"
            f"\t\t<database>synthetic</database>\n\t</source>\n\t<size>\n\t\t<width>{w}</width>\n"
            f"\t\t<height>{h}</height>\n\t\t<depth>3</depth>\n\t</size>\n\t<segmented>0</segmented>\n{objs}</annotation>\n")
        lines = "".join(f"{c} {(a + c2) / 2 / w:.6f} {(b + d2) / 2 / h:.6f} {(c2 - a) / w:.6f} {(d2 - b) / h:.6f}\n"
                        for c, a, b, c2, d2 in zip(cls, x1, y1, x2, y2, strict=True))
        (yolo / "labels" / f"{stem}.txt").write_text(lines)
        ids.append(stem)
    (voc / "ImageSets" / "Main" / "trainval.txt").write_text("\n".join(ids) + "\n")
    (yolo / "data.yaml").write_text("path: .\ntrain: images\nnames:\n" + "".join(f"  {i}: {n}\n" for i, n in enumerate(VOC_CLASSES)))


# ------------------------------------------------------------------------------------------ children


def child_ours_voc(root: Path, out: Path) -> None:
    from odvgkit.convert.base import write_conversion
    from odvgkit.convert.voc import voc_to_odvg

    conv = voc_to_odvg(root / "voc" / "VOC2007", split="trainval", drop_difficult=True)
    write_conversion(conv, out, inputs=[], label_map_path=out.with_name(out.stem + "_label_map.json"))


def child_ours_yolo(root: Path, out: Path) -> None:
    from odvgkit.convert.base import write_conversion
    from odvgkit.convert.yolo import yolo_to_odvg

    conv = yolo_to_odvg(root / "yolo")
    write_conversion(conv, out, inputs=[], label_map_path=out.with_name(out.stem + "_label_map.json"))


def child_upstream_pascal_voc(root: Path, out: Path, upstream: Path) -> None:
    import importlib.util

    import odvgkit_train  # noqa: F401 - mmcv-lite: registers the mmcv._ext stand-in mmdet.evaluation needs

    spec = importlib.util.spec_from_file_location("pascal_voc", upstream / "pascal_voc.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    sys.stdout = open(os.devnull, "w")  # track_progress draws a bar  # noqa: SIM115
    mod.cvt_annotations(str(root / "voc"), "2007", "trainval", str(out))


def child_baseline_yolo(root: Path, out: Path) -> None:
    """The script a user writes: one process, Pillow per image, json per record."""
    import yaml
    from PIL import Image

    names = yaml.safe_load((root / "yolo" / "data.yaml").read_text())["names"]
    lines = []
    for img in sorted((root / "yolo" / "images").iterdir()):
        with Image.open(img) as im:
            w, h = im.size
            if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):
                w, h = h, w
        inst = []
        for ln in (root / "yolo" / "labels" / (img.stem + ".txt")).read_text().splitlines():
            c, cx, cy, bw, bh = ln.split()
            cx, cy, bw, bh = float(cx) * w, float(cy) * h, float(bw) * w, float(bh) * h
            inst.append({"bbox": [cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], "label": int(c),
                         "category": names[int(c)]})
        lines.append(json.dumps({"filename": f"images/{img.name}", "height": h, "width": w,
                                 "detection": {"instances": inst}}))
    out.write_text("\n".join(lines) + "\n")


CPU: dict[str, float] = {}  # CPU seconds (user + system) per run, workers included


def run(args: list[str]) -> tuple[float, float]:
    """(wall s, peak RSS GiB) of one child process and its workers (the rusage of a wait4).

    The CPU seconds go to ``CPU``: on a machine loaded by other work, wall time hides the workers'
    parallelism, CPU time does not."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, *args], stdout=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"})
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if status != 0:
        raise SystemExit(f"{' '.join(args)} failed with status {status}")
    CPU[args[2] if args[1] == "--child" else Path(args[0]).name] = usage.ru_utime + usage.ru_stime
    return wall, usage.ru_maxrss / (1 << 20)


def best(args: list[str], repeat: int) -> tuple[float, float]:
    """The fastest of ``repeat`` runs (its CPU seconds stay in ``CPU``), the largest peak RSS."""
    key = args[2]
    runs = []
    for _ in range(max(1, repeat)):
        wall, rss = run(args)
        runs.append((wall, rss, CPU[key]))
    wall, _, cpu = min(runs)
    CPU[key] = cpu
    return wall, max(r[1] for r in runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    ap.add_argument("--images", type=int, default=100_000, help="images per dataset")
    ap.add_argument("--upstream", type=Path, default=None,
                    help="folder with pascal_voc.py and coco2odvg.py (default: copied from the installed mmdet into WORKDIR/upstream)")
    ap.add_argument("--workdir", type=Path, default=REPO / "bench-data" / "own")
    ap.add_argument("--skip-upstream", action="store_true", help="time odvgkit only")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each odvgkit command (the fastest is reported)")
    args = ap.parse_args()
    if args.child:
        name, root, out, *rest = args.child
        fn = {"ours-voc": child_ours_voc, "ours-yolo": child_ours_yolo, "baseline-yolo": child_baseline_yolo,
              "upstream-pascal_voc": child_upstream_pascal_voc}[name]
        fn(Path(root), Path(out), *map(Path, rest))
        return
    root = args.workdir / f"n{args.images}"
    if not (root / "yolo" / "data.yaml").exists():
        print(f"generating {args.images:,} VOC + {args.images:,} YOLO images in {root} …", flush=True)
        gen(root, args.images)
    out = root / "out"
    out.mkdir(exist_ok=True)
    me = [str(HERE), "--child"]
    rows = []
    load_before = os.getloadavg()[0]
    ours_voc = best([*me, "ours-voc", str(root), str(out / "ours_voc.jsonl")], args.repeat)
    with open(out / "ours_voc.jsonl", "rb") as fh:
        n_boxes = sum(ln.count(b'"bbox"') for ln in fh)
    ours_yolo = best([*me, "ours-yolo", str(root), str(out / "ours_yolo.jsonl")], args.repeat)
    if not args.skip_upstream:
        args.upstream = args.upstream or fetch(args.workdir / "upstream", ("pascal_voc.py", "coco2odvg.py"))
        for script in ("pascal_voc.py", "coco2odvg.py"):
            if not (args.upstream / script).is_file():
                raise SystemExit(f"{args.upstream / script}: missing; see the module docstring for how to fetch it")
        t1, m1 = run([*me, "upstream-pascal_voc", str(root), str(out / "voc07_trainval.json"), str(args.upstream)])
        t2, m2 = run([str(args.upstream / "coco2odvg.py"), str(out / "voc07_trainval.json"), "-d", "v3det",
                      "-o", str(out / "upstream_voc_od.json")])
        up_voc = (t1 + t2, max(m1, m2))
        base_yolo = run([*me, "baseline-yolo", str(root), str(out / "baseline_yolo.jsonl")])
        same = _same_boxes(out / "upstream_voc_od.json", out / "ours_voc.jsonl")
        up_cpu = CPU["upstream-pascal_voc"] + CPU["coco2odvg.py"]
        rows.append(("voc2odvg", ours_voc, up_voc,
                     f"pascal_voc.py {t1:.1f} s + coco2odvg.py {t2:.1f} s; {same}; CPU s {CPU['ours-voc']:.1f} vs "
                     f"{up_cpu:.1f} ({up_cpu / CPU['ours-voc']:.1f}x less)"))
        rows.append(("yolo2odvg", ours_yolo, base_yolo,
                     f"reference: single-process Pillow + json script; CPU s {CPU['ours-yolo']:.1f} vs "
                     f"{CPU['baseline-yolo']:.1f}"))
    else:
        rows += [("voc2odvg", ours_voc, None, ""), ("yolo2odvg", ours_yolo, None, "")]
    print(f"\n{args.images:,} images per dataset, {n_boxes:,} VOC boxes kept; {os.cpu_count()} CPUs, "
          f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after; odvgkit: best of {args.repeat}, "
          f"CPU s {CPU['ours-voc']:.2f} (voc2odvg), {CPU['ours-yolo']:.2f} (yolo2odvg)")
    print(f"{'command':<10} {'odvgkit s':>10} {'img/s':>9} {'GiB':>6} {'reference s':>12} {'GiB':>6} {'speed-up':>9} {'mem ratio':>9}  note")
    for name, (t, m), ref, note in rows:
        if ref is None:
            print(f"{name:<10} {t:>10.2f} {args.images / t:>9,.0f} {m:>6.2f}")
        else:
            print(f"{name:<10} {t:>10.2f} {args.images / t:>9,.0f} {m:>6.2f} {ref[0]:>12.2f} {ref[1]:>6.2f} "
                  f"{ref[0] / t:>8.1f}x {m / ref[1]:>9.2f}  {note}")


def _same_boxes(upstream: Path, ours: Path) -> str:
    """Same records (filenames differ by the VOC2007/ prefix; odvgkit's extra flags dropped)?"""
    diff = n = 0
    with open(upstream) as fa, open(ours) as fb:
        for la, lb in zip(fa, fb, strict=True):
            a, b = json.loads(la), json.loads(lb)
            a["filename"] = a["filename"].removeprefix("VOC2007/")
            for i in b["detection"]["instances"]:
                i.pop("difficult", None)
                i.pop("truncated", None)
            diff += a != b
            n += 1
    return f"{n:,} records, {'identical boxes' if diff == 0 else f'{diff} DIFFERENT'}"


if __name__ == "__main__":
    main()
