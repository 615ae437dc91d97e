"""Benchmark: lvis2odvg, goldg2odvg, openimages2odvg — odvgkit vs upstream, side by side.

The upstream scripts (MMDetection ``tools/dataset_converters``) are not installed here. The
"upstream" column is an **honest re-implementation of the upstream algorithm** as
``../shared/spec/upstream-converters.md`` §3.7/§3.12/§3.14 describes it: ``json.load`` of the whole
file into a pycocotools index (standing in for ``lvis.LVIS``, which builds the same dicts), the
second ``json.load`` for the label map, per-image ``getAnnIds``/``loadAnns`` loops, output records
accumulated in a list and written with ``jsonlines`` at the end; for OpenImages every JPEG is read
and decoded (cv2 ``IMREAD_COLOR``, as ``mmcv.imfrombytes``; Pillow if cv2 is missing).

Each run is a fresh child process; wall time and peak RSS (``ru_maxrss`` of that child) are
measured the same way for both sides, on the same generated input, in the same run: ``--repeat``
runs per side (default 3), interleaved, and the medians reported.

    python benchmarks/bench_convert_sources.py                     # issue sizes (LVIS 100k/1.26M, GoldG 120k/466k, OI 20k images)
    python benchmarks/bench_convert_sources.py --scale 0.1 --oi-images 2000   # quick
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import orjson

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[1] / "tests"))  # the independent upstream ports live in tests/reference

# ---------------------------------------------------------------------------------------------
# generated inputs (deterministic)
# ---------------------------------------------------------------------------------------------

WORDS = ["man", "woman", "dog", "cat", "red", "blue", "green", "shirt", "table", "chair", "car", "tree", "building", "window", "sky", "grass", "boat", "water", "bench", "sign", "street", "light", "white", "black", "small", "large", "old", "young", "bag", "hat"]


def gen_lvis(path: Path, n_images: int, n_boxes: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    n_cats = 1203
    widths = rng.integers(320, 641, n_images)
    heights = rng.integers(240, 641, n_images)
    with open(path, "wb") as fh:
        fh.write(b'{"info": {"description": "synthetic LVIS"}, "annotations": [')
        for start in range(0, n_boxes, 100_000):
            n = min(100_000, n_boxes - start)
            img = rng.integers(0, n_images, n)
            w_img, h_img = widths[img], heights[img]
            x = np.round(rng.uniform(-5, w_img * 0.9), 2)
            y = np.round(rng.uniform(-5, h_img * 0.9), 2)
            w = np.round(rng.uniform(0.5, w_img * 0.3), 2)
            h = np.round(rng.uniform(0.5, h_img * 0.3), 2)
            cats = rng.integers(1, n_cats + 1, n)
            out = []
            for k in range(n):
                xk, yk, wk, hk = float(x[k]), float(y[k]), float(w[k]), float(h[k])
                poly = [round(v, 2) for v in (xk, yk, xk + wk, yk, xk + wk, yk + hk, xk, yk + hk,
                                              xk + wk / 2, yk + hk / 2, xk + wk / 3, yk + hk / 3)]
                out.append(orjson.dumps({"area": round(wk * hk * 0.8, 2), "id": start + k + 1,
                                         "segmentation": [poly, poly[:8]], "image_id": int(img[k]) + 1,
                                         "bbox": [xk, yk, wk, hk], "category_id": int(cats[k])}))
            fh.write((b"," if start else b"") + b",".join(out))
        fh.write(b'], "images": [')
        out = []
        for i in range(n_images):
            neg = sorted({int(v) for v in rng.integers(1, n_cats + 1, 5)})
            out.append(orjson.dumps({
                "date_captured": "2013-11-14 11:18:45", "neg_category_ids": neg, "id": i + 1, "license": 1,
                "height": int(heights[i]), "width": int(widths[i]),
                "flickr_url": f"http://farm4.staticflickr.com/{i}/{i}_abc_z.jpg",
                "coco_url": f"http://images.cocodataset.org/train2017/{i + 1:012d}.jpg",
                "not_exhaustive_category_ids": neg[:1]}))
        fh.write(b",".join(out))
        fh.write(b'], "licenses": [], "categories": [')
        cats = [orjson.dumps({"frequency": "rcf"[c % 3], "id": c, "synset": f"thing.n.{c:02d}", "image_count": 10,
                              "instance_count": 20, "synonyms": [f"thing_{c}"], "def": "a thing", "name": f"thing_{c}"})
                for c in range(1, n_cats + 1)]
        fh.write(b",".join(cats) + b"]}")


def gen_goldg(path: Path, n_images: int, n_boxes: int, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    per_image = np.bincount(rng.integers(0, n_images, n_boxes), minlength=n_images)
    images, anns = [], []
    ann_id = 0
    for i in range(n_images):
        words = [WORDS[j] for j in rng.integers(0, len(WORDS), 12)]
        caption = " ".join(words) + "."
        starts, pos = [], 0
        for wd in words:
            starts.append((pos, pos + len(wd)))
            pos += len(wd) + 1
        W, H = int(rng.integers(300, 800)), int(rng.integers(300, 800))
        images.append({"file_name": f"{i + 1000}.jpg", "height": str(H) if i % 7 == 0 else H, "width": W,
                       "id": i, "caption": caption, "dataset_name": "gqa", "tokens_negative": [[0, 5]],
                       "sentence_id": 0, "original_img_id": i + 1000, "tokens_positive_eval": [[[0, 3]]]})
        for _ in range(int(per_image[i])):
            a = int(rng.integers(0, 11))
            spans = [list(starts[a])] + ([list(starts[a + 1])] if rng.random() < 0.3 else [])
            x, y = float(rng.uniform(0, W * 0.8)), float(rng.uniform(0, H * 0.8))
            w, h = float(rng.uniform(0.5, W * 0.4)), float(rng.uniform(0.5, H * 0.4))
            anns.append({"area": w * h, "iscrowd": 0 if rng.random() > 0.01 else 1, "image_id": i, "category_id": 1,
                         "id": ann_id, "bbox": [x, y, w, h], "tokens_positive": spans})
            ann_id += 1
    order = rng.permutation(n_images)  # images not sorted by id, as in the real files
    path.write_bytes(orjson.dumps({"info": {}, "licenses": [], "images": [images[i] for i in order],
                                   "annotations": anns, "categories": []}))


def gen_openimages(root: Path, n_images: int, rows_per_image: float = 8.04, seed: int = 2) -> None:
    from PIL import Image

    rng = np.random.default_rng(seed)
    ann = root / "annotations"
    imgs = root / "train"
    ann.mkdir(parents=True, exist_ok=True)
    imgs.mkdir(parents=True, exist_ok=True)
    mids = [f"/m/{k:05x}" for k in range(601)]
    (ann / "class-descriptions-boxable.csv").write_text("".join(f"{m},Class {k}\n" for k, m in enumerate(mids)))
    # real-size JPEGs (typical OpenImages 1024 px), a few EXIF-rotated; image files are hard links to them
    base = root / "base"
    base.mkdir(exist_ok=True)
    sources = []
    for k in range(16):
        size = (1024, int(rng.integers(576, 1024)))
        p = base / f"b{k}.jpg"
        if not p.exists():
            arr = (rng.random((size[1] // 8, size[0] // 8, 3)) * 255).astype("uint8")
            im = Image.fromarray(arr).resize(size)
            exif = Image.Exif()
            if k % 4 == 0:
                exif[0x0112] = 6
            im.save(p, "JPEG", quality=90, exif=exif)
        sources.append(p)
    ids = [f"{rng.integers(0, 2**63):016x}" for _ in range(n_images)]
    ids.sort()
    lines = ["ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,IsTruncated,IsGroupOf,IsDepiction,IsInside,XClick1X,XClick2X,XClick3X,XClick4X,XClick1Y,XClick2Y,XClick3Y,XClick4Y\n"]
    counts = rng.poisson(rows_per_image - 1, n_images) + 1
    for image_id, n, src in zip(ids, counts, (sources[i % 16] for i in range(n_images)), strict=True):
        dst = imgs / f"{image_id}.jpg"
        if not dst.exists():
            os.link(src, dst)
        for _ in range(int(n)):
            x1, y1 = rng.uniform(0, 0.8, 2)
            x2, y2 = x1 + rng.uniform(0.01, 0.2), y1 + rng.uniform(0.01, 0.2)
            flags = rng.integers(0, 2, 5)
            lines.append(f"{image_id},xclick,{mids[int(rng.integers(0, 601))]},1,{x1:.6f},{x2:.6f},{y1:.6f},{y2:.6f},"
                         f"{flags[0]},{flags[1]},{int(flags[2] and rng.random() < 0.1)},{flags[3]},{flags[4]},-1,-1,-1,-1,-1,-1,-1,-1\n")
    (ann / "oidv6-train-annotations-bbox.csv").write_text("".join(lines))


# ---------------------------------------------------------------------------------------------
# upstream re-implementations (spec §3.12, §3.7, §3.14) — run in a child process
# ---------------------------------------------------------------------------------------------


def upstream_lvis(inp: str, out: str) -> None:
    import contextlib
    import io

    import jsonlines
    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):
        lvis = COCO(inp)  # stands in for lvis.LVIS(path): json.load + index dicts
    with open(inp) as fh:  # upstream loads the file a second time for the label map
        cats = json.load(fh)["categories"]
    label_map = {str(c["id"] - 1): c["name"] for c in cats}
    with open(os.path.join(os.path.dirname(out), "lvis_v1_label_map.json"), "w") as f:
        json.dump(label_map, f)
    id2name = {c["id"]: c["name"] for c in cats}
    metas = []
    sink = open(os.devnull, "w")  # noqa: SIM115 - upstream prints every dropped box
    for img_id in list(lvis.imgs.keys()):
        img_info = lvis.loadImgs([img_id])[0]
        file_name = img_info["coco_url"].replace("http://images.cocodataset.org/", "")
        raw_ann_info = lvis.loadAnns(lvis.getAnnIds(imgIds=[img_id]))
        instances = []
        for ann in raw_ann_info:
            if ann.get("ignore", False):
                print(f"invalid ignore box of {ann}", file=sink)
                continue
            x1, y1, w, h = ann["bbox"]
            inter_w = max(0, min(x1 + w, int(img_info["width"])) - max(x1, 0))
            inter_h = max(0, min(y1 + h, int(img_info["height"])) - max(y1, 0))
            if inter_w * inter_h == 0:
                print(f"invalid wh box of {ann}", file=sink)
                continue
            if ann["area"] <= 0 or w < 1 or h < 1:
                print(f"invalid area box of {ann}", file=sink)
                continue
            if ann.get("iscrowd", False):
                print(f"invalid iscrowd box of {ann}", file=sink)
                continue
            instances.append({"bbox": [x1, y1, x1 + w, y1 + h], "label": ann["category_id"] - 1,
                              "category": id2name[ann["category_id"]]})
        metas.append({"filename": file_name, "height": img_info["height"], "width": img_info["width"],
                      "detection": {"instances": instances}})
    with jsonlines.open(out, mode="w") as writer:
        writer.write_all(metas)


def upstream_goldg(inp: str, out: str) -> None:
    import jsonlines
    from reference.upstream_goldg2odvg import upstream_goldg2odvg

    records = upstream_goldg2odvg(inp)
    with jsonlines.open(out, mode="w") as writer:
        writer.write_all(records)


def upstream_openimages(root: str, out: str) -> None:
    import csv

    import jsonlines

    try:
        import cv2

        def decode(path: str):  # mmcv.imfrombytes(flag='color') → cv2.IMREAD_COLOR (applies EXIF)
            with open(path, "rb") as f:
                buf = np.frombuffer(f.read(), np.uint8)
            return cv2.imdecode(buf, cv2.IMREAD_COLOR)
    except ImportError:  # pragma: no cover
        from PIL import Image, ImageOps

        def decode(path: str):
            with Image.open(path) as im:
                return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))

    ann_dir = os.path.join(root, "annotations")
    with open(os.path.join(ann_dir, "class-descriptions-boxable.csv")) as f:
        label_list = list(csv.reader(f))
    label_map = {str(i): r[1] for i, r in enumerate(label_list)}
    mid2label = {r[0]: i for i, r in enumerate(label_list)}
    with open(os.path.join(os.path.dirname(out), "openimages_label_map.json"), "w") as f:
        json.dump(label_map, f)
    metas, instances = [], []
    skip = 0
    last_name = None
    with open(os.path.join(ann_dir, "oidv6-train-annotations-bbox.csv")) as f:
        reader = csv.reader(f)
        next(reader)
        for row in reader:
            name = row[0] + ".jpg"
            if int(row[10]) == 1:
                skip += 1
                continue
            if name != last_name:
                if last_name is not None and instances:
                    metas.append({"filename": last_name, "height": _h, "width": _w,  # noqa: F821 - as upstream
                                  "detection": {"instances": instances}})
                img = decode(os.path.join(root, "train", name))
                _h, _w = img.shape[:2]
                instances = []
                last_name = name
            label = mid2label[row[2]]
            x1, x2, y1, y2 = float(row[4]) * _w, float(row[5]) * _w, float(row[6]) * _h, float(row[7]) * _h
            box = [max(x1, 0), max(y1, 0), min(x2, _w), min(y2, _h)]
            inter_w = max(0, min(box[2], _w) - max(box[0], 0))
            inter_h = max(0, min(box[3], _h) - max(box[1], 0))
            if inter_w * inter_h == 0:
                continue
            instances.append({"bbox": box, "label": label, "category": label_map[str(label)]})
    if instances:
        metas.append({"filename": last_name, "height": _h, "width": _w, "detection": {"instances": instances}})
    with jsonlines.open(out, mode="w") as writer:
        writer.write_all(metas)


# ---------------------------------------------------------------------------------------------
# odvgkit (the library functions the CLI commands call)
# ---------------------------------------------------------------------------------------------


def ours_lvis(inp: str, out: str) -> None:
    from odvgkit.convert.base import write_conversion
    from odvgkit.convert.lvis import lvis_to_odvg
    from odvgkit.errors import ProblemLog

    conv = lvis_to_odvg(inp, ProblemLog())
    write_conversion(conv, out, inputs=[inp], label_map_path=Path(out).parent / "lvis_v1_label_map.json")


def ours_goldg(inp: str, out: str) -> None:
    from odvgkit.convert.base import write_conversion
    from odvgkit.convert.goldg import goldg_to_odvg
    from odvgkit.errors import ProblemLog

    write_conversion(goldg_to_odvg(inp, ProblemLog()), out, inputs=[inp])


def ours_openimages(root: str, out: str) -> None:
    from odvgkit.convert.base import write_conversion
    from odvgkit.convert.openimages import openimages_to_odvg
    from odvgkit.errors import ProblemLog

    conv = openimages_to_odvg(Path(root) / "annotations", Path(root) / "train", drop_group_of=True, problems=ProblemLog())
    write_conversion(conv, out, inputs=[], label_map_path=Path(out).parent / "openimages_label_map.json")


CHILDREN = {
    "upstream-lvis": upstream_lvis, "ours-lvis": ours_lvis,
    "upstream-goldg": upstream_goldg, "ours-goldg": ours_goldg,
    "upstream-openimages": upstream_openimages, "ours-openimages": ours_openimages,
}


def run_child(name: str, inp: Path, out: Path) -> tuple[float, float]:
    """(wall seconds, peak RSS GiB) of one fresh child process (the previous run's output is
    removed first, so neither side pays for freeing it)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(HERE), "--child", name, str(inp), str(out)])
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if status != 0:
        raise SystemExit(f"{name} failed with status {status}")
    return wall, usage.ru_maxrss / (1 << 20)


def median_run(runs: list[tuple[float, float]]) -> tuple[float, float]:
    """Median wall time and median peak memory of repeated runs (noise on a shared 2-core machine
    is ±5%; both sides get the same number of runs, interleaved)."""
    return statistics.median(t for t, _ in runs), statistics.median(m for _, m in runs)


def _normalise(kind: str, a: dict, b: dict) -> None:
    """Drop what odvgkit adds on purpose (federated fields, OpenImages flags, repeated-phrase spans)."""
    if kind == "lvis":
        b.pop("neg_category_ids", None)
        b.pop("not_exhaustive_category_ids", None)
    if kind == "openimages":
        for i in b["detection"]["instances"]:
            for k in ("is_group_of", "is_occluded", "is_truncated", "is_depiction", "is_inside"):
                i.pop(k, None)
    if kind == "goldg":
        for r in (a, b):
            for reg in r["grounding"]["regions"]:
                reg.pop("tokens_positive")


def compare(kind: str, up: Path, ours: Path) -> str:
    """Both sides wrote the same records? Streamed line by line so this (parent) process stays small:
    a child's ``ru_maxrss`` starts from the parent's size at fork."""
    n_a = n_b = diff = 0
    with up.open() as fa, ours.open() as fb:
        for la, lb in zip(fa, fb, strict=False):
            a, b = json.loads(la), json.loads(lb)
            _normalise(kind, a, b)
            diff += a != b
            n_a += 1
            n_b += 1
        n_a += sum(1 for _ in fa)
        n_b += sum(1 for _ in fb)
    same = diff == 0 and n_a == n_b
    return f"{n_a} vs {n_b} records, {'identical' if same else f'DIFFERENT ({diff})'}"


def _gen(kind: str, out: Path, a: int, b: int) -> None:
    subprocess.run([sys.executable, str(HERE), "--gen", kind, str(out), str(a), str(b)], check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", nargs=3, metavar=("NAME", "IN", "OUT"), help=argparse.SUPPRESS)
    ap.add_argument("--gen", nargs=4, metavar=("KIND", "OUT", "A", "B"), help=argparse.SUPPRESS)
    ap.add_argument("--only", default="lvis,goldg,openimages")
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of the issue's LVIS/GoldG sizes")
    ap.add_argument("--oi-images", type=int, default=20_000, help="OpenImages images (8.04 rows each)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per side (interleaved); the medians are reported")
    ap.add_argument("--workdir", type=Path, default=Path(__file__).resolve().parents[1] / "bench-data" / "convert")
    args = ap.parse_args()
    if args.child:
        name, inp, out = args.child
        CHILDREN[name](inp, out)
        return
    if args.gen:  # generators run in their own process so the parent stays small (ru_maxrss of
        kind, out, a, b = args.gen  # a forked child starts from the parent's size)
        {"lvis": gen_lvis, "goldg": gen_goldg}[kind](Path(out), int(a), int(b)) if kind != "openimages" \
            else gen_openimages(Path(out), int(a))
        return
    wd = args.workdir
    wd.mkdir(parents=True, exist_ok=True)
    sizes = {
        "lvis": (int(100_000 * args.scale), int(1_260_000 * args.scale)),
        "goldg": (int(120_000 * args.scale), int(466_000 * args.scale)),
    }
    rows = []
    for kind in args.only.split(","):
        if kind == "lvis":
            n_img, n_box = sizes["lvis"]
            inp = wd / f"lvis_{n_img}_{n_box}.json"
            if not inp.exists():
                _gen("lvis", inp, n_img, n_box)
            what = f"{n_img:,} images, {n_box:,} boxes, {inp.stat().st_size / 1e6:.0f} MB"
        elif kind == "goldg":
            n_img, n_box = sizes["goldg"]
            inp = wd / f"goldg_{n_img}_{n_box}.json"
            if not inp.exists():
                _gen("goldg", inp, n_img, n_box)
            what = f"{n_img:,} images, {n_box:,} boxes, {inp.stat().st_size / 1e6:.0f} MB"
        else:
            inp = wd / f"openimages_{args.oi_images}"
            if not (inp / "annotations" / "oidv6-train-annotations-bbox.csv").exists():
                _gen("openimages", inp, args.oi_images, 0)
            with open(inp / "annotations" / "oidv6-train-annotations-bbox.csv") as fh:
                n_rows = sum(1 for _ in fh) - 1
            what = f"{args.oi_images:,} images (1024 px JPEGs), {n_rows:,} rows"
        runs = [(run_child(f"upstream-{kind}", inp, wd / "up" / f"{kind}.jsonl"),
                 run_child(f"ours-{kind}", inp, wd / "ours" / f"{kind}.jsonl")) for _ in range(args.repeat)]
        (up_t, up_m), (our_t, our_m) = (median_run([r[k] for r in runs]) for k in (0, 1))
        if args.repeat > 1:
            print(f"  {kind}: upstream {', '.join(f'{r[0][0]:.2f}' for r in runs)} s; "
                  f"odvgkit {', '.join(f'{r[1][0]:.2f}' for r in runs)} s (medians below)", flush=True)
        check = compare(kind, wd / "up" / f"{kind}.jsonl", wd / "ours" / f"{kind}.jsonl")
        rows.append((kind, what, up_t, up_m, our_t, our_m, check))
        print(f"{kind:11s} {what}\n  upstream (re-impl) {up_t:8.1f} s {up_m:6.2f} GiB | odvgkit {our_t:7.1f} s "
              f"{our_m:6.2f} GiB | {up_t / our_t:5.1f}x faster, {our_m / up_m:5.2f}x memory | {check}", flush=True)
    print("\n| converter | input | upstream re-impl | odvgkit | speed-up | memory ratio | outputs |")
    print("|---|---|---|---|---|---|---|")
    for kind, what, up_t, up_m, our_t, our_m, check in rows:
        print(f"| {kind}2odvg | {what} | {up_t:.1f} s, {up_m:.2f} GiB | {our_t:.1f} s, {our_m:.2f} GiB | "
              f"{up_t / our_t:.1f}× | {our_m / up_m:.2f} | {check} |")


if __name__ == "__main__":
    main()
