"""Evaluation benchmarks: metric time against pycocotools, D³ prompting speed, the one-pass saving.

    OMP_NUM_THREADS=1 python benchmarks/bench_eval.py [--images 5000] [--boxes 100] [--d3-images 16] [--only metric|dod]

1. **COCO metric time** on a COCO-val-sized prediction set (``images`` × ``boxes`` detections,
   80 classes, ≈7 ground-truth boxes per image): ``odvgkit_train.metrics.coco_map`` from ODVG
   records (building the COCO dicts included) against pycocotools run directly on ready-made dicts
   in the same process, interleaved in alternating order, median of ``--repeats``; also odvgkit's
   default backend (``auto``: faster-coco-eval when importable, unless ``$ODVGKIT_COCO_BACKEND``
   says otherwise) and faster-coco-eval itself, each asserted to give pycocotools' 12 numbers (to 1e-12).
2. **D³ images/s**, ``concat`` vs ``parallel`` prompting, tiny model (random weights, CPU, 1 thread),
   on a generated D³ root (3 sentences per image).
3. **One pass vs three**: inferring once and scoring FULL/PRES/ABS (odvgkit) against inferring each
   image once per setting (MMDetection's ConcatDataset of three DODDatasets).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def make_predictions(n_images: int, n_boxes: int, seed: int = 0) -> tuple[list[dict], list[dict], dict[str, str]]:
    rng = random.Random(seed)
    lm = {str(i): f"class{i}" for i in range(80)}
    gts, preds = [], []
    for i in range(n_images):
        gi = []
        for _ in range(rng.randint(1, 13)):
            x1, y1 = rng.uniform(0, 560), rng.uniform(0, 400)
            gi.append({"bbox": [x1, y1, x1 + rng.uniform(4, 200), y1 + rng.uniform(4, 200)], "label": rng.randrange(80)})
        pi = []
        for k in range(n_boxes):
            if k < len(gi):
                b = gi[k]["bbox"]
                pi.append({"bbox": [v + rng.uniform(-8, 8) for v in b], "label": gi[k]["label"], "score": rng.random()})
            else:
                x1, y1 = rng.uniform(0, 560), rng.uniform(0, 400)
                pi.append({"bbox": [x1, y1, x1 + rng.uniform(4, 200), y1 + rng.uniform(4, 200)], "label": rng.randrange(80),
                           "score": rng.random() * 0.5})
        gts.append({"filename": f"{i}.jpg", "height": 480, "width": 640, "detection": {"instances": gi}})
        preds.append({"filename": f"{i}.jpg", "height": 480, "width": 640, "detection": {"instances": pi}})
    return gts, preds, lm


def pycocotools_direct(gt: dict, dets: list[dict]) -> list[float]:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(dets), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return list(ev.stats)


def bench_metric(n_images: int, n_boxes: int, repeats: int) -> dict[str, float | str]:
    """Median seconds of each way to the 12 COCO stats, interleaved in one process."""
    from odvgkit_train import metrics as M

    gts, preds, lm = make_predictions(n_images, n_boxes)
    gt, dets = M.coco_dicts(gts, preds, lm)
    default = M.coco_backend("auto")[2]  # what `odvgkit eval` uses here ($ODVGKIT_COCO_BACKEND honoured)
    try:
        import faster_coco_eval  # noqa: F401

        fast = True
    except ImportError:
        fast = False
    times: dict[str, list[float]] = {"odvgkit_s": [], "pycocotools_s": [], "default_s": [], "faster_coco_eval_s": []}
    for r in range(repeats):
        for which in ("odvgkit", "pycocotools") if r % 2 == 0 else ("pycocotools", "odvgkit"):  # no order bias
            t = time.perf_counter()
            if which == "odvgkit":
                a = M.coco_map(gts, preds, lm, backend="pycocotools")
            else:
                b = pycocotools_direct(gt, [dict(d) for d in dets])
            times[f"{which}_s"].append(time.perf_counter() - t)
        assert [a[k] for k in M.COCO_NAMES] == b, "odvgkit and pycocotools disagree"
        if default != "pycocotools":
            t = time.perf_counter()
            c = M.coco_map(gts, preds, lm)
            times["default_s"].append(time.perf_counter() - t)
            assert max(abs(c[k] - v) for k, v in zip(M.COCO_NAMES, b, strict=True)) < 1e-12, "default backend disagrees"
        if fast:
            t = time.perf_counter()
            c = M.coco_map(gts, preds, lm, backend="faster-coco-eval")
            times["faster_coco_eval_s"].append(time.perf_counter() - t)
            assert max(abs(c[k] - v) for k, v in zip(M.COCO_NAMES, b, strict=True)) < 1e-12, "faster-coco-eval disagrees"
    out: dict[str, float | str] = {"images": n_images, "detections": len(dets), "default_backend": default}
    for key, ts in times.items():
        out[key] = statistics.median(ts) if ts else float("nan")
    if default == "pycocotools":
        out["default_s"] = out["odvgkit_s"]
    out["ratio"] = out["odvgkit_s"] / out["pycocotools_s"]
    out["default_ratio"] = out["default_s"] / out["pycocotools_s"]
    return out


def bench_dod(n_images: int) -> dict[str, float]:
    import json

    import torch

    from odvgkit_train import metrics as M
    from odvgkit_train.dod import predict_dod
    from odvgkit_train.inference import load_model
    from odvgkit_train.suite_data import make_d3_root
    from odvgkit_train.text_encoder import make_tiny_bert

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = make_d3_root(Path(tmp) / "d3", n_images=n_images)
        from odvgkit.convert.base import write_conversion
        from odvgkit.convert.dod import dod_to_odvg

        conv, settings = dod_to_odvg(root)
        write_conversion(conv, root / "d3_od.jsonl", inputs=[], label_map_path=root / "d3_label_map.json")
        gts = [json.loads(x) for x in (root / "d3_od.jsonl").read_text().splitlines()]
        lm = conv.label_map
        torch.manual_seed(0)
        net = load_model(None, model="tiny", text_encoder=make_tiny_bert(Path(tmp) / "bert"))
        predict_dod(net, gts[:2], root / "d3_images", lm, "concat", root)  # warm-up
        out: dict[str, float] = {"images": n_images}
        for prompting in ("concat", "parallel"):
            t = time.perf_counter()
            preds = predict_dod(net, gts, root / "d3_images", lm, prompting, root)
            out[f"{prompting}_images_per_s"] = n_images / (time.perf_counter() - t)
        # one pass + three scorings vs three passes (one per setting) + three scorings
        t = time.perf_counter()
        preds = predict_dod(net, gts, root / "d3_images", lm, "concat", root)
        M.dod_map(gts, preds, lm, settings)
        out["one_pass_s"] = time.perf_counter() - t
        t = time.perf_counter()
        for name in settings:
            preds = predict_dod(net, gts, root / "d3_images", lm, "concat", root)
            M.dod_map(gts, preds, lm, {name: settings[name]})
        out["three_passes_s"] = time.perf_counter() - t
        out["saving"] = 1 - out["one_pass_s"] / out["three_passes_s"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--boxes", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--d3-images", type=int, default=16)
    ap.add_argument("--only", choices=("metric", "dod"), help="run one part: the COCO metric (1) or D³ (2 and 3)")
    args = ap.parse_args()
    if args.only in (None, "metric"):
        m = bench_metric(args.images, args.boxes, args.repeats)
        print(f"COCO metric, {m['images']:,} images, {m['detections']:,} detections, median of {args.repeats}: "
              f"pycocotools {m['pycocotools_s']:.2f} s; odvgkit with pycocotools {m['odvgkit_s']:.2f} s "
              f"(ratio {m['ratio']:.3f}); odvgkit default ({m['default_backend']}) {m['default_s']:.2f} s "
              f"(ratio {m['default_ratio']:.3f}); faster-coco-eval {m['faster_coco_eval_s']:.2f} s")
    if args.only in (None, "dod"):
        d = bench_dod(args.d3_images)
        print(f"D³ tiny model, {d['images']} images: concat {d['concat_images_per_s']:.2f} images/s, parallel "
              f"{d['parallel_images_per_s']:.2f} images/s; one pass {d['one_pass_s']:.2f} s vs three passes "
              f"{d['three_passes_s']:.2f} s (saving {100 * d['saving']:.0f}%)")


if __name__ == "__main__":
    main()
