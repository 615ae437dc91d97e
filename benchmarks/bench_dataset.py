"""Training-dataset start-up: mmdet's ``ODVGDataset`` vs odvgkit's ``IndexedODVGDataset`` on one file.

    OMP_NUM_THREADS=1 python benchmarks/bench_dataset.py [--records 600000] [--boxes 8700000] [--workdir DIR]
    OMP_NUM_THREADS=1 python benchmarks/bench_dataset.py --records 3400000 --boxes 40000000 --cbt 0.001  # mixture scale
    OMP_NUM_THREADS=1 python benchmarks/bench_dataset.py --records 3400000 --boxes 40000000 --cbt 0.001 --sources 2 --skip-odvg

Generates an ODVG OD file (default Objects365 scale: 600k records, 8.7M boxes, 365 classes, ~1 % of
boxes degenerate or outside the image so ODVGDataset's box rule drops some) plus its label map, then
runs each phase in a fresh child process (nothing cached in the parent, imports excluded from the
timings):

* ``build``   — ``odvgkit.index.build_index`` (the one-time ``odvgkit index FILE``);
* ``odvg``    — ``ODVGDataset(...)`` as mmdet configs build it (``serialize_data=True``) until ready;
* ``indexed`` — ``IndexedODVGDataset(...)`` until ready;
* ``mixture`` (with ``--cbt T``) — a class-balanced ``MixtureSampledDataset`` on top of it (repeat
  factors from the index columns, one epoch's draws), until ready;
* ``sources`` (with ``--sources K``) — the records split over K files with label spaces of their own
  (365, 601, 1,203, … classes: Objects365-, OpenImages-, LVIS-like), each indexed, and the training
  dataset built from the config ``odvgkit train`` generates for them
  (``odvgkit_train.config.dataset_config`` per source — ``MixtureSampledDataset`` over
  ``IndexedODVGDataset``, class-balanced with ``--cbt`` — in mmengine's ``ConcatDataset``), until ready.

Each child then reads 2,000 random ``get_data_info`` (µs per record). Memory per child:

* **private** = ``Anonymous`` of ``/proc/self/smaps_rollup`` after ready minus the same after the
  imports (heap, numpy and pickled buffers: what every rank and worker pays again). File-backed pages
  (the memory-mapped index, the ODVG file read with ``pread``) are page cache shared by every process
  on the node, not counted; they are reported separately as ``file_mapped`` (``Rss − Anonymous``);
* **peak RSS** = ``ru_maxrss`` of the child (imports included) and **peak growth** = that minus the
  RSS after the imports (the transient cost of getting ready).
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
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent


SOURCE_CLASSES = (365, 601, 1203, 150)  # Objects365, OpenImages, LVIS, … label spaces of the --sources files


def label_map_of(ann: Path) -> Path:
    return ann.with_name(ann.stem + "_label_map.json")


def write_odvg(path: Path, records: int, boxes: int, classes: int = 365, seed: int = 0) -> None:
    import orjson

    rng = np.random.default_rng(seed)
    per = rng.poisson(boxes / records, records)
    with open(path, "wb") as fh:
        for start in range(0, records, 20_000):
            stop = min(start + 20_000, records)
            n_box = int(per[start:stop].sum())
            wi = rng.integers(320, 1025, stop - start)
            hi = rng.integers(240, 1025, stop - start)
            owner = np.repeat(np.arange(stop - start), per[start:stop])
            x = np.round(rng.uniform(-10, wi[owner] * 0.9), 2)
            y = np.round(rng.uniform(-10, hi[owner] * 0.9), 2)
            w = np.round(rng.uniform(0.5, wi[owner] * 0.3), 2)
            h = np.round(rng.uniform(0.5, hi[owner] * 0.3), 2)
            lab = rng.integers(0, classes, n_box)
            lines = []
            k = 0
            for r in range(stop - start):
                inst = []
                for _ in range(per[start + r]):
                    inst.append({"bbox": [float(x[k]), float(y[k]), float(x[k] + w[k]), float(y[k] + h[k])],
                                 "label": int(lab[k]), "category": f"class {int(lab[k])}"})
                    k += 1
                rec = {"filename": f"images/v2/patch{(start + r) % 50}/objects365_v2_{start + r + 1:08d}.jpg",
                       "height": int(hi[r]), "width": int(wi[r]), "detection": {"instances": inst}}
                lines.append(orjson.dumps(rec))
            fh.write(b"\n".join(lines) + b"\n")
    label_map_of(path).write_text(json.dumps({str(i): f"class {i}" for i in range(classes)}))


def _smaps() -> dict[str, int]:
    out = {}
    with open("/proc/self/smaps_rollup") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) >= 3 and parts[-1] == "kB":
                out[parts[0].rstrip(":")] = int(parts[1])
    return out


def _mixture_of_sources(anns: list[Path], cbt: float | None) -> Any:
    """The training dataset ``odvgkit train`` configures for these OD sources, each drawn once an epoch."""
    from mmdet.registry import DATASETS

    from odvgkit.index import index_path
    from odvgkit_train.config import dataset_config
    from odvgkit_train.data import Source

    sources = [Source(ann_file=a, kind="od", image_root=Path("images"), label_map=label_map_of(a), name=a.stem,
                      class_balanced_threshold=cbt, index_file=index_path(a)) for a in anns]
    for s in sources:  # what `odvgkit train` counts while planning (it reads the index header)
        s.n_records = _index_records(s.index_file)
    return DATASETS.build(dict(type="ConcatDataset", datasets=[dataset_config(s, []) for s in sources]))


def _index_records(index_file: Path) -> int:
    from odvgkit.index import OdvgIndex

    return OdvgIndex(index_file.with_suffix(""), index_file).records


def child(phase: str, ann: str, cbt: float | None) -> None:
    import importlib

    importlib.import_module("odvgkit_train.mmdet_plugin")  # first: the mmcv._ext stand-in; imports not timed
    from mmdet.datasets import ODVGDataset

    from odvgkit.index import build_index
    from odvgkit_train.datasets import MixtureSampledDataset
    from odvgkit_train.indexed import IndexedODVGDataset

    lm = str(label_map_of(Path(ann)))
    args = dict(data_root="", ann_file=ann, label_map_file=lm, data_prefix=dict(img="images/"),
                filter_cfg=dict(filter_empty_gt=False), return_classes=True, pipeline=[])
    base = _smaps()
    t = time.perf_counter()
    result: dict[str, float] = {}
    if phase == "build":
        res = build_index(ann, force=True)
        result["boxes"] = res.boxes
        ds = None
    elif phase == "odvg":
        ds = ODVGDataset(**args)
    elif phase == "sources":
        ds = _mixture_of_sources([Path(a) for a in ann.split(",")], cbt)
    else:
        ds = IndexedODVGDataset(**args)
        if phase == "mixture":
            ds = MixtureSampledDataset(ds, samples=len(ds), seed=0, name="bench", class_balanced_threshold=cbt)
    result["ready_s"] = time.perf_counter() - t
    after = _smaps()
    if ds is not None:
        idx = np.random.default_rng(0).integers(0, len(ds), 2000)
        t = time.perf_counter()
        for i in idx:
            ds.get_data_info(int(i))
        result["us_per_record"] = (time.perf_counter() - t) / len(idx) * 1e6
        result["records"] = len(ds)
    result["private_mib"] = (after["Anonymous"] - base["Anonymous"]) / 1024
    result["file_mapped_mib"] = (after["Rss"] - after["Anonymous"] - (base["Rss"] - base["Anonymous"])) / 1024
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["peak_growth_mib"] = result["peak_rss_mib"] - base["Rss"] / 1024  # peak RSS above the after-import RSS
    print("RESULT " + json.dumps(result))


def _split_sources(work: Path, records: int, boxes: int, k: int) -> list[Path]:
    """``k`` files of records/k records each, label spaces of ``SOURCE_CLASSES`` (generated once, kept)."""
    anns = []
    for i in range(k):
        ann = work / f"od_{records}_source{i}of{k}.jsonl"
        if not ann.is_file():
            t = time.perf_counter()
            write_odvg(ann, records // k, boxes // k, classes=SOURCE_CLASSES[i % len(SOURCE_CLASSES)], seed=1 + i)
            print(f"generated {ann} ({ann.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - t:.1f} s", flush=True)
        anns.append(ann)
    return anns


def run_child(phase: str, ann: Path, cbt: float | None) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--child", phase, "--ann", str(ann)] + (["--cbt", str(cbt)] if cbt is not None else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if proc.returncode:
        raise SystemExit(f"{phase} failed:\n{proc.stderr[-3000:]}")
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line[7:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=600_000)
    ap.add_argument("--boxes", type=int, default=None, help="default: 14.5 a record (Objects365)")
    ap.add_argument("--cbt", type=float, default=None, help="also a class-balanced MixtureSampledDataset on the index")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--skip-odvg", action="store_true", help="only the indexed dataset (ODVGDataset too slow/big)")
    ap.add_argument("--sources", type=int, default=None,
                    help="also split the records over K source files (own label spaces) and time the trainer's mixture of them")
    ap.add_argument("--child", default=None)
    ap.add_argument("--ann", default=None)
    a = ap.parse_args()
    if a.child:
        child(a.child, a.ann, a.cbt)
        return
    boxes = a.boxes if a.boxes is not None else int(a.records * 14.5)
    work = a.workdir or Path(tempfile.mkdtemp(prefix="bench_dataset_"))
    work.mkdir(parents=True, exist_ok=True)
    ann = work / f"od_{a.records}.jsonl"
    if not ann.is_file():
        t = time.perf_counter()
        write_odvg(ann, a.records, boxes)
        print(f"generated {ann} ({ann.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - t:.1f} s", flush=True)
    rows = {"build": run_child("build", ann, None)}
    print("index build", json.dumps(rows["build"]), flush=True)
    rows["indexed"] = run_child("indexed", ann, None)
    print("IndexedODVGDataset", json.dumps(rows["indexed"]), flush=True)
    if a.cbt is not None:
        rows["mixture"] = run_child("mixture", ann, a.cbt)
        print(f"MixtureSampledDataset(IndexedODVGDataset, cbt={a.cbt})", json.dumps(rows["mixture"]), flush=True)
    if a.sources:
        anns = _split_sources(work, a.records, boxes, a.sources)
        for src in anns:
            run_child("build", src, None)
        rows["sources"] = run_child("sources", ",".join(map(str, anns)), a.cbt)  # type: ignore[arg-type]
        print(f"ConcatDataset of {a.sources} MixtureSampledDataset(IndexedODVGDataset) sources, cbt={a.cbt}",
              json.dumps(rows["sources"]), flush=True)
    if not a.skip_odvg:
        rows["odvg"] = run_child("odvg", ann, None)
        print("ODVGDataset", json.dumps(rows["odvg"]), flush=True)
        o, i = rows["odvg"], rows["indexed"]
        print(f"ready: {o['ready_s']:.2f} s → {i['ready_s']:.3f} s ({o['ready_s'] / max(i['ready_s'], 1e-9):.0f}×); "
              f"private: {o['private_mib']:.0f} MiB → {i['private_mib']:.1f} MiB; "
              f"peak growth {o['peak_growth_mib']:.0f} → {i['peak_growth_mib']:.0f} MiB; "
              f"get_data_info {o['us_per_record']:.0f} → {i['us_per_record']:.0f} µs")
    print(json.dumps({"records": a.records, "boxes": rows["build"]["boxes"], **rows}))


if __name__ == "__main__":
    main()
