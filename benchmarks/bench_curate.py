"""Curation benchmarks: leakage audit by ids at COCO train2017 scale, perceptual-hash throughput.

    python benchmarks/bench_curate.py [--scale 1.0] [--images 400] [--workdir DIR]

1. **Id audit**: a synthetic COCO train2017 (118,287 images, 860k annotations with polygons:
   ~real size) against every RefCOCO/RefCOCO+/RefCOCOg/gRefCOCO evaluation file (MDETR layout,
   one "image" per expression, real split sizes) plus LVIS v1 val (19,809 images). Measures
   ``odvgkit dedup refcoco`` + ``dedup lvis`` work (parse, index, match, write the filtered json and
   manifest) against a reference of what upstream's script does for val only (``json.load`` +
   set filter + ``json.dump``), both in this run. Target: < 30 s.
2. **Perceptual hashes**: N textured 640×480 JPEGs hashed cold (empty cache) and warm (cache hit)
   against a reference of plain ``imagehash.phash(Image.open(p))`` (full decode).

Every phase runs in its own subprocess so the peak RSS reported is that phase's own.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPLITS = {  # images per MDETR eval file (unique COCO images, expressions per image)
    "refcoco": {"val": (1500, 7), "testA": (750, 7), "testB": (750, 7)},
    "refcoco+": {"val": (1500, 7), "testA": (750, 7), "testB": (750, 7)},
    "refcocog": {"val": (1300, 4), "test": (2600, 4)},
    "grefcoco": {"val": (1500, 7), "testA": (750, 7), "testB": (750, 7)},
}


def make_data(work: Path, scale: float) -> dict[str, str]:
    import numpy as np
    import orjson

    rng = np.random.default_rng(0)
    n_img = int(118_287 * scale)
    ids = np.sort(rng.choice(np.arange(1, 600_000), n_img, replace=False))
    images = [{"license": 1, "file_name": f"{i:012d}.jpg", "coco_url": f"http://images.cocodataset.org/train2017/{i:012d}.jpg",
               "height": 480, "width": 640, "date_captured": "2013-11-14 17:02:52", "flickr_url": "http://x", "id": int(i)}
              for i in ids]
    n_ann = int(860_001 * scale)
    img_of = rng.choice(ids, n_ann)
    xy = rng.uniform(0, 400, (n_ann, 2)).round(2)
    anns = []
    poly = [round(float(v), 2) for v in rng.uniform(0, 600, 48)]
    for k in range(n_ann):
        x, y = float(xy[k, 0]), float(xy[k, 1])
        anns.append({"segmentation": [poly], "area": 1234.5, "iscrowd": 0, "image_id": int(img_of[k]),
                     "bbox": [x, y, 50.5, 60.25], "category_id": int(k % 80) + 1, "id": k + 1})
    train = work / "instances_train2017.json"
    train.write_bytes(orjson.dumps({"info": {}, "licenses": [], "images": images, "annotations": anns,
                                    "categories": [{"id": c, "name": f"c{c}", "supercategory": "x"} for c in range(1, 81)]}))
    del anns
    ref = work / "mdetr"
    ref.mkdir(exist_ok=True)
    pool = rng.permutation(ids)
    pos = 0
    for bench, splits in SPLITS.items():
        for split, (n, per) in splits.items():
            n = int(n * max(scale, 0.01))
            chosen = pool[pos:pos + n]
            pos = (pos + n) % max(1, len(pool) - 3000)
            imgs = [{"file_name": f"COCO_train2014_{int(c):012d}.jpg", "height": 480, "width": 640, "id": len(chosen) * 0 + j * per + e,
                     "original_id": int(c), "caption": "the man on the left in a blue shirt", "dataset_name": bench,
                     "tokens_negative": [[0, 3]]} for j, c in enumerate(chosen) for e in range(per)]
            (ref / f"finetune_{bench}_{split}.json").write_bytes(orjson.dumps({"images": imgs, "annotations": [], "categories": []}))
    lvis_ids = rng.choice(ids, int(19_809 * scale), replace=False)
    lvis = work / "lvis_v1_val.json"
    lvis.write_bytes(orjson.dumps({"images": [{"id": int(i), "coco_url": f"http://images.cocodataset.org/train2017/{int(i):012d}.jpg",
                                               "height": 480, "width": 640, "neg_category_ids": [], "not_exhaustive_category_ids": []}
                                              for i in lvis_ids],
                                   "annotations": [{"id": k, "image_id": int(lvis_ids[k % len(lvis_ids)]), "bbox": [1, 2, 3, 4], "area": 12,
                                                    "category_id": 1, "segmentation": [poly]} for k in range(int(244_707 * scale))],
                                   "categories": [{"id": 1, "name": "x"}]}))
    return {"train": str(train), "refexp": str(ref), "lvis": str(lvis)}


def make_images(root: Path, n: int) -> list[Path]:
    import numpy as np
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    out = []
    for i in range(n):
        small = rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)
        noise = rng.integers(0, 40, (480, 640, 3), dtype=np.uint8)
        arr = np.asarray(Image.fromarray(small).resize((640, 480), Image.BICUBIC)).astype(np.uint16) + noise
        p = root / f"{i:06d}.jpg"
        Image.fromarray(arr.clip(0, 255).astype(np.uint8)).save(p, quality=90)
        out.append(p)
    return out


# ------------------------------------------------------------------------------------- phases


def phase_reference_ids(args: argparse.Namespace) -> dict[str, float]:
    """What upstream remove_cocotrain2017_from_refcoco.py does (val files only), with stdlib json."""
    t0 = time.perf_counter()
    ref = Path(args.refexp)
    val_ids = set()
    for f in sorted(ref.glob("finetune_*_val.json")):
        val_ids |= {im["original_id"] for im in json.loads(f.read_text())["images"]}
    train = json.loads(Path(args.train).read_text())
    keep = [im for im in train["images"] if im["id"] not in val_ids]
    kept = {im["id"] for im in keep}
    train["images"] = keep
    train["annotations"] = [a for a in train["annotations"] if a["image_id"] in kept]
    Path(args.out).write_text(json.dumps(train))
    return {"seconds": time.perf_counter() - t0}


def phase_odvgkit_ids(args: argparse.Namespace) -> dict[str, float]:
    """dedup refcoco (all splits) + dedup lvis, as the CLI runs them, in one process."""
    from odvgkit.curate.dedup import write_removal
    from odvgkit.curate.leakage import audit_source, index_eval
    from odvgkit.curate.sources import open_source, scan_refexp

    t0 = time.perf_counter()
    sources, _ = scan_refexp([Path(args.refexp)])
    sources.append(open_source(args.lvis))
    index = index_eval(sources, ("id",))
    t_index = time.perf_counter() - t0
    audit = audit_source(open_source(args.train), index)
    t_audit = time.perf_counter() - t0
    write_removal(audit, Path(args.out), Path(args.out).with_name("removed.json"))
    return {"seconds": time.perf_counter() - t0, "index_seconds": t_index, "audit_seconds": t_audit,
            "eval_images": len(index.images), "train_images": audit.images, "removed": len(audit.leaks)}


def phase_phash(args: argparse.Namespace) -> dict[str, float]:
    import imagehash  # noqa: F401 - imported before timing, as in the reference
    import scipy.fftpack  # noqa: F401

    from odvgkit.curate.hashes import HashCache, hash_files

    paths = sorted(Path(args.images).glob("*.jpg"))
    cache = HashCache(Path(args.cache))
    t0 = time.perf_counter()
    results = [r for _, r in hash_files(paths, lambda p: p, cache, workers=args.workers)]
    dt = time.perf_counter() - t0
    cache.close()
    return {"seconds": dt, "images": len(paths), "images_per_s": len(paths) / dt,
            "cached": sum(r.cached for r in results), "errors": sum(r.error is not None for r in results)}


def phase_phash_reference(args: argparse.Namespace) -> dict[str, float]:
    import imagehash
    from PIL import Image

    paths = sorted(Path(args.images).glob("*.jpg"))
    t0 = time.perf_counter()
    for p in paths:
        with Image.open(p) as im:
            imagehash.phash(im)
    dt = time.perf_counter() - t0
    return {"seconds": dt, "images": len(paths), "images_per_s": len(paths) / dt}


PHASES = {"reference_ids": phase_reference_ids, "odvgkit_ids": phase_odvgkit_ids,
          "phash": phase_phash, "phash_reference": phase_phash_reference}


def peak_rss_mb() -> float:
    """This process's own high-water RSS (VmHWM; ru_maxrss would include the parent's at fork)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_phase(name: str, **kw: object) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--phase", name]
    for k, v in kw.items():
        cmd += [f"--{k}", str(v)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--phase", choices=sorted(PHASES))
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--images", default="400")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--workdir")
    for k in ("train", "refexp", "lvis", "out", "cache"):
        ap.add_argument(f"--{k}")
    args = ap.parse_args()
    if args.phase:
        res = PHASES[args.phase](args)
        res["peak_rss_mb"] = peak_rss_mb()
        print(json.dumps(res))
        return
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        data = make_data(work, args.scale)
        size = Path(data["train"]).stat().st_size / 1e6
        print(f"generated data in {time.perf_counter() - t0:.1f} s (train json {size:.0f} MB)")
        ref = run_phase("reference_ids", train=data["train"], refexp=data["refexp"], out=work / "ref_out.json")
        ours = run_phase("odvgkit_ids", train=data["train"], refexp=data["refexp"], lvis=data["lvis"], out=work / "our_out.json")
        print(f"id audit, COCO train2017 x{args.scale:g} ({ours['train_images']:,} images) vs {ours['eval_images']:,} "
              f"RefExp/gRefCOCO/LVIS eval images (all splits):")
        print(f"  odvgkit dedup refcoco+lvis : {ours['seconds']:6.1f} s  (index {ours['index_seconds']:.1f} s, "
              f"audit incl. parse {ours['audit_seconds'] - ours['index_seconds']:.1f} s), removed {ours['removed']:,}, "
              f"peak RSS {ours['peak_rss_mb']:,.0f} MB")
        print(f"  reference (upstream, val only, json): {ref['seconds']:6.1f} s, peak RSS {ref['peak_rss_mb']:,.0f} MB")
        print(f"  ratio reference/odvgkit: {ref['seconds'] / ours['seconds']:.2f}x")
        n = int(args.images)
        imgs = make_images(work / "images", n)
        cache = work / "hashes.sqlite"
        cold = run_phase("phash", images=work / "images", cache=cache, workers=args.workers)
        warm = run_phase("phash", images=work / "images", cache=cache, workers=args.workers)
        base = run_phase("phash_reference", images=work / "images")
        print(f"perceptual hash, {len(imgs)} JPEGs 640x480, {args.workers} workers:")
        print(f"  cold cache: {cold['images_per_s']:8.1f} images/s  peak RSS {cold['peak_rss_mb']:,.0f} MB")
        print(f"  warm cache: {warm['images_per_s']:8.1f} images/s  ({warm['cached']} cached)")
        print(f"  reference (imagehash.phash, full decode, 1 thread): {base['images_per_s']:.1f} images/s")
        print(f"  ratio cold/reference: {cold['images_per_s'] / base['images_per_s']:.2f}x, "
              f"warm/cold: {warm['images_per_s'] / cold['images_per_s']:.1f}x")


if __name__ == "__main__":
    main()
