"""Throughput of ``grit process`` + ``grit2odvg`` (samples/s): local engine vs Spark ``local[N]``.

Generates img2dataset-like webdataset shards (tar + parquet + stats) with GRIT-like captions and
ref_exps, then runs on the same shards:

* reference: local engine, 1 worker (in-process);
* local engine, N workers (process pool);
* Spark ``local[N]`` (driver on 127.0.0.1), session start-up timed separately.

Prints samples/s per stage, peak RSS (this process and its children), the ratios against the
reference, the Spark overhead, and a 20M-sample extrapolation. Outputs of all engines are compared
byte for byte.

    python benchmarks/bench_grit.py --shards 8 --samples 1000 --workers 2
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import shutil
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, ImageDraw

from odvgkit.convert.grit import GritOptions, write_grit
from odvgkit.errors import ProblemLog
from odvgkit.grit.engine import run_local, run_spark, spark_session
from odvgkit.grit.process import process_all

WORDS = ["dog", "cat", "sofa", "window", "tree", "car", "street", "man", "woman", "table", "cup", "boat", "sky"]


def make_image(seed: int) -> bytes:
    rnd = random.Random(seed)
    im = Image.new("RGB", (384, 288), (rnd.randrange(256), rnd.randrange(256), rnd.randrange(256)))
    draw = ImageDraw.Draw(im)
    for _ in range(12):
        x, y = rnd.randrange(384), rnd.randrange(288)
        draw.rectangle([x, y, x + rnd.randrange(10, 120), y + rnd.randrange(10, 90)],
                       fill=(rnd.randrange(256), rnd.randrange(256), rnd.randrange(256)))
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def make_sample(rnd: random.Random, key: str) -> dict[str, Any]:
    a, b, c = rnd.sample(WORDS, 3)
    caption = f"A {a} next to the {b} and a small {c} in the picture."
    refs = []
    for word, prefix in ((a, "A "), (b, "the "), (c, "a small ")):
        start = caption.index(prefix + word) + len(prefix)
        x1, y1 = rnd.random() * 0.6, rnd.random() * 0.6
        refs.append([float(start), float(start + len(word)), x1, y1, x1 + 0.3, y1 + 0.3, 0.8])
        s_full = caption.index(prefix + word)
        refs.append([float(s_full), float(start + len(word)), x1, y1, x1 + 0.3, y1 + 0.3, 0.7])  # multi-word
    return {"key": key, "caption": caption, "width": 384, "height": 288, "original_width": 768, "original_height": 576,
            "status": "success", "url": f"http://example.invalid/{key}.jpg", "id": int(key), "ref_exps": refs,
            "noun_chunks": refs[::2], "clip_similarity_vitb32": 0.3, "clip_similarity_vitl14": 0.3,
            "exif": "{}", "sha256": "0" * 64, "error_message": None}


def make_shards(raw: Path, shards: int, samples: int) -> None:
    images = [make_image(i) for i in range(16)]
    rnd = random.Random(0)
    for s in range(shards):
        name = f"{s:05d}"
        rows = []
        with tarfile.open(raw / f"{name}.tar", "w") as tar:
            for i in range(samples):
                key = f"{s:05d}{i:04d}"
                meta = make_sample(rnd, key)
                rows.append((key, "success", None))
                for ext, data in (("jpg", images[i % len(images)]), ("txt", meta["caption"].encode()),
                                  ("json", json.dumps(meta, indent=4).encode())):
                    info = tarfile.TarInfo(f"{key}.{ext}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
        pq.write_table(pa.table({"key": [r[0] for r in rows], "status": [r[1] for r in rows],
                                 "error_message": pa.array([r[2] for r in rows], pa.string())}), raw / f"{name}.parquet")
        (raw / f"{name}_stats.json").write_text(json.dumps({"count": samples, "successes": samples}))


def peak_rss_mib() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, kids


def timed(label: str, fn: Callable[[], Any], n: int, results: dict[str, float]) -> Any:
    t0 = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t0
    results[label] = dt
    own, kids = peak_rss_mib()
    print(f"{label:<34} {dt:8.2f} s  {n / dt:10.0f} samples/s   peak RSS self {own:6.0f} MiB, children {kids:6.0f} MiB",
          flush=True)
    return out


def pipeline(raw: Path, out: Path, run: Callable[..., Any], label: str, n: int, results: dict[str, float]) -> bytes:
    if out.exists():
        shutil.rmtree(out)
    timed(f"{label}: process", lambda: process_all(raw, out, run, ProblemLog()), n, results)
    timed(f"{label}: grit2odvg", lambda: write_grit(out, out / "vg.jsonl", GritOptions(), run, ProblemLog()), n, results)
    return (out / "vg.jsonl").read_bytes()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shards", type=int, default=8)
    ap.add_argument("--samples", type=int, default=1000, help="samples per shard")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--no-spark", action="store_true")
    ap.add_argument("--dir", type=Path, default=None, help="work folder (default: a temporary one)")
    args = ap.parse_args()
    n = args.shards * args.samples
    work = args.dir or Path(tempfile.mkdtemp(prefix="bench_grit_"))
    raw = work / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus; {args.shards} shards x {args.samples} samples = {n}")
    t0 = time.perf_counter()
    make_shards(raw, args.shards, args.samples)
    size = sum(p.stat().st_size for p in raw.glob("*.tar")) / 2**20
    print(f"generated {size:.0f} MiB of shards in {time.perf_counter() - t0:.1f} s")
    results: dict[str, float] = {}
    ref = pipeline(raw, work / "ref", lambda fn, items: run_local(fn, items, 1), "local, 1 worker (reference)", n, results)
    loc = pipeline(raw, work / "local", lambda fn, items: run_local(fn, items, args.workers),
                   f"local, {args.workers} workers", n, results)
    assert loc == ref, "local pool output differs from the reference"
    spark_total = None
    if not args.no_spark:
        t0 = time.perf_counter()
        with spark_session(f"local[{args.workers}]") as session:
            startup = time.perf_counter() - t0
            print(f"{'spark session start-up':<34} {startup:8.2f} s")
            out = pipeline(raw, work / "spark", lambda fn, items: run_spark(fn, items, session),
                           f"spark local[{args.workers}]", n, results)
        assert out == ref, "spark output differs from the reference"
        spark_total = startup + results[f"spark local[{args.workers}]: process"] + results[f"spark local[{args.workers}]: grit2odvg"]
    print("\nratios (time / reference time; < 1 is faster)")
    for stage in ("process", "grit2odvg"):
        base = results[f"local, 1 worker (reference): {stage}"]
        for label in results:
            if label.endswith(stage):
                print(f"  {label:<40} {results[label] / base:6.2f}")
    local_total = results[f"local, {args.workers} workers: process"] + results[f"local, {args.workers} workers: grit2odvg"]
    print(f"\nlocal {args.workers} workers, process + grit2odvg: {n / local_total:,.0f} samples/s")
    if spark_total is not None:
        print(f"spark local[{args.workers}], incl. start-up: {n / spark_total:,.0f} samples/s "
              f"(overhead {spark_total / local_total - 1:+.0%} vs local)")
    per_core = n / local_total / args.workers
    for cores in sorted({args.workers, 16, 64}):
        hours = 20e6 / (per_core * cores) / 3600
        print(f"20M samples on {cores:>3} cores (local-engine rate per core): {hours:6.2f} h")
    if args.dir is None:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
