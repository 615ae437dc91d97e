"""Trainer benchmarks: odvgkit adds no overhead to mmdet; ODVG vs COCO json data loading.

    OMP_NUM_THREADS=1 python benchmarks/bench_train.py [--iters 40] [--records 4000] [--workdir DIR]

1. **Seconds per iteration** of the ``tiny`` model on CPU (batch 2, OD + VG demo data): the same
   generated config run (a) through ``odvgkit train pretrain`` and (b) with plain mmdet
   (``mmdet/.mim/tools/train.py CONFIG``, what users run). Both in subprocesses, one after the
   other, iteration times read from mmengine's own log (first 5 iterations dropped as warm-up).
   Target: ratio within noise of 1.00.
2. **Data loading throughput**: ``records`` OD samples read by mmdet's ``ODVGDataset`` (ODVG JSON
   Lines + label map) against the same data as COCO json read by ``CocoDataset``, through the same
   pipeline (decode + annotations + resize + pack), in-process: dataset init (parsing) and samples/s.

Each phase runs in its own subprocess so the peak RSS reported is that phase's own.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _child(args: list[str], env: dict[str, str] | None = None) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """Run a subprocess; wall seconds and its own peak RSS (MiB, measured by a fresh parent)."""
    wrapper = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]);"
               "sys.stderr.write(f'\\nPEAK_RSS_KIB {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}\\n');"
               "sys.exit(r.returncode)")
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", wrapper, *args], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})
    wall = time.perf_counter() - t
    if proc.returncode:
        sys.stderr.write(proc.stderr[-3000:])
        raise SystemExit(f"failed: {' '.join(args)}")
    peak = int(proc.stderr.rsplit("PEAK_RSS_KIB", 1)[1].split()[0])
    return wall, peak / 1024, proc


def _iter_times(work_dir: Path) -> list[float]:
    logs = sorted(p for p in work_dir.iterdir() if (p / "vis_data" / "scalars.json").is_file())
    rows = [json.loads(line) for line in (logs[-1] / "vis_data" / "scalars.json").read_text().splitlines()]
    return [r["time"] for r in rows if "time" in r]


def bench_iterations(work: Path, iters: int) -> dict[str, float]:
    import mmdet

    from odvgkit_train.demo import make_demo_dataset
    from odvgkit_train.text_encoder import make_tiny_bert

    bert = make_tiny_bert(work / "bert")
    data = make_demo_dataset(work / "demo", n_images=32, size=96)
    common = [str(data.od_file), str(data.vg_file), "--label-map", str(data.label_map), "--image-root", str(data.image_root),
              "--model", "tiny", "--text-encoder", str(bert), "--max-iters", str(iters), "--batch-size", "2",
              "--num-workers", "0", "--log-interval", "1", "--json"]
    tools = Path(mmdet.__file__).parent / ".mim" / "tools" / "train.py"
    ours: list[float] = []
    plain: list[float] = []
    rss: dict[str, float] = {}
    for rep in range(2):  # alternate the two so machine noise hits both
        _, rss["odvgkit_peak_rss_mib"], _ = _child(
            [sys.executable, "-m", "odvgkit", "train", "pretrain", *common, "--work-dir", str(work / f"odvgkit{rep}")])
        ours.append(statistics.median(_iter_times(work / f"odvgkit{rep}")[5:]))
        _, rss["mmdet_peak_rss_mib"], _ = _child(
            [sys.executable, str(tools), str(work / f"odvgkit{rep}" / "config.py"), "--work-dir", str(work / f"mmdet{rep}")])
        plain.append(statistics.median(_iter_times(work / f"mmdet{rep}")[5:]))
    res = {"odvgkit_s_per_iter": statistics.median(ours), "mmdet_s_per_iter": statistics.median(plain), **rss}
    res["ratio_odvgkit_over_mmdet"] = res["odvgkit_s_per_iter"] / res["mmdet_s_per_iter"]
    return res


LOADER = r'''
import json, sys, time
import odvgkit_train.mmdet_plugin
from mmdet.utils import register_all_modules
register_all_modules(init_default_scope=True)
from mmdet.registry import DATASETS
kind, ann, extra, root, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
pipeline = [dict(type="LoadImageFromFile"), dict(type="LoadAnnotations", with_bbox=True),
            dict(type="Resize", scale=(128, 128), keep_ratio=True), dict(type="PackDetInputs")]
t = time.perf_counter()
if kind == "odvg":
    ds = DATASETS.build(dict(type="ODVGDataset", data_root="", ann_file=ann, label_map_file=extra, data_prefix=dict(img=root + "/"),
                             filter_cfg=dict(filter_empty_gt=False), return_classes=True, pipeline=pipeline))
else:
    ds = DATASETS.build(dict(type="CocoDataset", data_root="", ann_file=ann, data_prefix=dict(img=root + "/"),
                             metainfo=dict(classes=tuple(json.loads(extra))), filter_cfg=dict(filter_empty_gt=False),
                             return_classes=True, pipeline=pipeline))
init = time.perf_counter() - t
t = time.perf_counter()
for i in range(min(n, len(ds))):
    ds[i]
dt = time.perf_counter() - t
print(json.dumps({"init_s": init, "samples_per_s": min(n, len(ds)) / dt, "records": len(ds)}))
'''


def bench_loading(work: Path, records: int, samples: int) -> dict[str, float]:
    from odvgkit.io import write_records
    from odvgkit_train.demo import make_demo_dataset

    data = make_demo_dataset(work / "load", n_images=32, size=96)
    base = [json.loads(line) for line in data.od_file.read_text().splitlines()]
    names = json.loads(data.label_map.read_text())
    recs = [dict(base[i % len(base)]) for i in range(records)]
    write_records(work / "load" / "big_od.jsonl", recs)
    coco = {"images": [], "annotations": [], "categories": [{"id": int(k) + 1, "name": v} for k, v in names.items()]}
    for i, r in enumerate(recs):
        coco["images"].append({"id": i + 1, "file_name": r["filename"], "height": r["height"], "width": r["width"]})
        for inst in r["detection"]["instances"]:
            x1, y1, x2, y2 = inst["bbox"]
            coco["annotations"].append({"id": len(coco["annotations"]) + 1, "image_id": i + 1, "category_id": inst["label"] + 1,
                                        "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0})
    (work / "load" / "big_coco.json").write_text(json.dumps(coco))
    classes = json.dumps([names[k] for k in sorted(names, key=int)])
    out: dict[str, float] = {}
    for kind, ann, extra in (("odvg", work / "load" / "big_od.jsonl", str(data.label_map)),
                             ("coco", work / "load" / "big_coco.json", classes)):
        _, rss, proc = _child([sys.executable, "-c", LOADER, kind, str(ann), extra, str(data.image_root), str(samples)])
        for k, v in json.loads(proc.stdout.strip().splitlines()[-1]).items():
            out[f"{kind}_{k}"] = v
        out[f"{kind}_peak_rss_mib"] = rss
    out["ratio_odvg_over_coco_samples_per_s"] = out["odvg_samples_per_s"] / out["coco_samples_per_s"]
    out["ratio_odvg_over_coco_init"] = out["odvg_init_s"] / out["coco_init_s"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iters", type=int, default=40)
    ap.add_argument("--records", type=int, default=20000)
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        result = {"iterations": bench_iterations(work, args.iters), "loading": bench_loading(work, args.records, args.samples)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
