"""RTMDet through odvgkit vs the same run through plain mmdet: seconds per iteration.

    OMP_NUM_THREADS=1 python benchmarks/bench_detector.py [--epochs 6] [--img-size 256] [--batch-size 4] [--workdir DIR]

(a) ``odvgkit train detector`` on the BCCD fixture's train split (ODVG JSON Lines + label map, read
    by odvgkit's ``ODVGDetectionDataset``);
(b) mmdet's ``tools/train.py`` on the config odvgkit wrote, with the dataset swapped to mmdet's
    ``CocoDataset`` over the same split as COCO json and odvgkit's ``TrainSampleVisHook`` removed —
    what a user following the MMDetection tutorial runs. ``custom_imports`` stays: with mmcv-lite,
    mmdet cannot import ``mmcv.ops`` without the ``mmcv._ext`` stand-in.

The two alternate (``--rounds``, default 3) so machine noise hits both; the per-iteration times come from
mmengine's own ``scalars.json``, the first 5 iterations dropped as warm-up. Target: ratio ≈ 1.00.
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
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent
BCCD = HERE.parent.parent / "shared" / "fixtures" / "bccd_voc"
CLASSES = ["RBC", "WBC", "Platelets"]


def bccd_split(split: str, out_dir: Path) -> tuple[Path, Path, Path]:
    """The split as ODVG (+ label map) and as COCO json, boxes under 1 px dropped in both."""
    records, images, anns = [], [], []
    for i, stem in enumerate((BCCD / "ImageSets" / "Main" / f"{split}.txt").read_text().split()):
        root = ET.parse(BCCD / "Annotations" / f"{stem}.xml").getroot()
        w, h = int(root.find("size/width").text), int(root.find("size/height").text)
        insts = []
        for obj in root.findall("object"):
            x1, y1, x2, y2 = (float(obj.find(f"bndbox/{k}").text) for k in ("xmin", "ymin", "xmax", "ymax"))
            if x2 - x1 < 1 or y2 - y1 < 1:
                continue
            label = CLASSES.index(obj.find("name").text)
            insts.append({"bbox": [x1, y1, x2, y2], "label": label, "category": CLASSES[label]})
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": label + 1, "bbox": [x1, y1, x2 - x1, y2 - y1],
                         "area": (x2 - x1) * (y2 - y1), "iscrowd": 0})
        records.append({"filename": f"{stem}.jpg", "height": h, "width": w, "detection": {"instances": insts}})
        images.append({"id": i + 1, "file_name": f"{stem}.jpg", "height": h, "width": w})
    odvg = out_dir / f"{split}_od.jsonl"
    odvg.write_text("".join(json.dumps(r) + "\n" for r in records))
    lm = out_dir / "label_map.json"
    lm.write_text(json.dumps({str(i): c for i, c in enumerate(CLASSES)}))
    coco = out_dir / f"{split}_coco.json"
    coco.write_text(json.dumps({"images": images, "annotations": anns,
                                "categories": [{"id": i + 1, "name": c} for i, c in enumerate(CLASSES)]}))
    return odvg, lm, coco


def _run(args: list[str]) -> float:
    t = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if proc.returncode:
        sys.stderr.write(proc.stderr[-3000:])
        raise SystemExit(f"failed: {' '.join(args)}")
    return time.perf_counter() - t


def _iter_times(work_dir: Path) -> list[float]:
    logs = sorted(p for p in work_dir.iterdir() if (p / "vis_data" / "scalars.json").is_file())
    rows = [json.loads(line) for line in (logs[-1] / "vis_data" / "scalars.json").read_text().splitlines()]
    return [r["time"] for r in rows if "time" in r]


def plain_config(odvgkit_config: Path, coco: Path, out: Path, work_dir: Path) -> Path:
    from mmengine.config import Config

    cfg = Config.fromfile(str(odvgkit_config))
    ds = cfg.train_dataloader.dataset
    cfg.train_dataloader.dataset = dict(type="CocoDataset", data_root="", ann_file=str(coco), data_prefix=ds.data_prefix,
                                        metainfo=dict(classes=tuple(CLASSES)), filter_cfg=dict(filter_empty_gt=False),
                                        pipeline=ds.pipeline, backend_args=None)
    cfg.custom_hooks = [h for h in cfg.custom_hooks if h["type"] != "TrainSampleVisHook"]
    cfg.work_dir = str(work_dir)
    cfg.pop("odvgkit", None)
    cfg.dump(str(out))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--img-size", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workdir", type=Path)
    args = ap.parse_args()
    import mmdet

    import odvgkit_train  # noqa: F401  (stand-in before mmcv.ops)

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_detector_"))
    work.mkdir(parents=True, exist_ok=True)
    odvg, lm, coco = bccd_split("train", work)
    tools = Path(mmdet.__file__).parent / ".mim" / "tools" / "train.py"
    ours, plain, walls = [], [], {"odvgkit": [], "mmdet": []}
    for rnd in range(args.rounds):
        w = work / f"odvgkit{rnd}"
        walls["odvgkit"].append(_run([sys.executable, "-m", "odvgkit", "train", "detector", f"{odvg},images={BCCD / 'JPEGImages'}",
                                      "--label-map", str(lm), "--model", "rtmdet-tiny", "--epochs", str(args.epochs),
                                      "--batch-size", str(args.batch_size), "--img-size", str(args.img_size),
                                      "--num-workers", "0", "--log-interval", "1", "--work-dir", str(w), "--json"]))
        ours.append(statistics.median(_iter_times(w)[5:]))
        p = work / f"mmdet{rnd}"
        cfg = plain_config(w / "config.py", coco, work / f"plain{rnd}.py", p)
        walls["mmdet"].append(_run([sys.executable, str(tools), str(cfg)]))
        plain.append(statistics.median(_iter_times(p)[5:]))
    res = {
        "iterations_per_run": len(_iter_times(work / "odvgkit0")),
        "odvgkit_s_per_iter": statistics.median(ours),
        "mmdet_s_per_iter": statistics.median(plain),
        "per_round_odvgkit": ours,
        "per_round_mmdet": plain,
        "wall_s": {k: [round(v, 1) for v in vs] for k, vs in walls.items()},
    }
    res["ratio_odvgkit_over_mmdet"] = res["odvgkit_s_per_iter"] / res["mmdet_s_per_iter"]
    # on a shared machine the fastest round is the least disturbed one: compare those too
    res["best_round_ratio"] = min(ours) / min(plain)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
