"""Pseudo-label benchmarks: ``pseudolabel diff`` and the threshold/NMS filter, pure Python.

    python benchmarks/bench_pseudolabel.py [--records 100000] [--boxes 10] [--preds 300]

1. **diff**: two synthetic OD label files of N records × B boxes (round 2 = round 1 jittered, some
   boxes dropped/added, same record order as a loop writes them). Measures ``diff_records`` over the
   streamed files against a reference of just reading both files (``read_records``), same run.
2. **filter**: ``filter_od`` (per-class threshold + greedy NMS) on P predictions per image (Grounding
   DINO returns up to 300–900), against a reference of sorting the same predictions by score.

Each phase runs in its own subprocess so the peak RSS is that phase's own.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLASSES = [f"class {i}" for i in range(80)]


def make(path: Path, n: int, boxes: int, seed: int, jitter: float) -> None:
    from odvgkit.io import write_records

    rng = random.Random(0)
    move = random.Random(seed)

    def rec(i: int) -> dict:
        inst = []
        for _ in range(boxes):
            c = rng.randrange(len(CLASSES))
            x, y, w, h = rng.uniform(0, 500), rng.uniform(0, 400), rng.uniform(10, 140), rng.uniform(10, 80)
            d = move.uniform(-jitter, jitter)
            inst.append({"bbox": [round(x + d, 2), round(y, 2), round(x + w + d, 2), round(y + h, 2)], "label": c,
                         "category": CLASSES[c], "score": round(rng.random(), 4)})
        if jitter and move.random() < 0.2:
            inst = inst[1:]
        return {"filename": f"{i:08d}.jpg", "height": 480, "width": 640, "detection": {"instances": inst}}

    write_records(path, (rec(i) for i in range(n)))


def phase(name: str, args: argparse.Namespace, work: Path) -> dict:
    from odvgkit.io import read_records

    t = time.perf_counter()
    out: dict = {"phase": name}
    if name == "diff_read_reference":
        n = sum(1 for _ in read_records(work / "a.jsonl")) + sum(1 for _ in read_records(work / "b.jsonl"))
        out["records"] = n
    elif name == "diff":
        from odvgkit.pseudolabel.diff import diff_records

        res = diff_records((r for _, r in read_records(work / "a.jsonl")), (r for _, r in read_records(work / "b.jsonl")))
        out["records"] = res.images_a + res.images_b
        out["total"] = res.totals()
    else:
        from odvgkit.pseudolabel.label import filter_od

        rng = random.Random(1)
        images = [[{"bbox": [x, y, x + rng.uniform(5, 100), y + rng.uniform(5, 100)], "label": c, "category": CLASSES[c],
                    "score": rng.random()}
                   for x, y, c in ((rng.uniform(0, 500), rng.uniform(0, 400), rng.randrange(8)) for _ in range(args.preds))]
                  for _ in range(200)]
        t = time.perf_counter()
        kept = 0
        for preds in images:
            if name == "filter":
                kept += len(filter_od(preds, 0.3, {"class 0": 0.5}, 0.5))
            else:
                kept += len(sorted(preds, key=lambda p: -p["score"]))
        out["records"] = len(images)
        out["kept"] = kept
    out["seconds"] = time.perf_counter() - t
    out["per_s"] = out["records"] / out["seconds"]
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--boxes", type=int, default=10)
    ap.add_argument("--preds", type=int, default=300)
    ap.add_argument("--phase")
    ap.add_argument("--work")
    args = ap.parse_args()
    if args.phase:
        print(json.dumps(phase(args.phase, args, Path(args.work))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        make(work / "a.jsonl", args.records, args.boxes, 1, 0.0)
        make(work / "b.jsonl", args.records, args.boxes, 2, 6.0)
        results = {}
        for name in ("diff_read_reference", "diff", "filter_sort_reference", "filter"):
            proc = subprocess.run([sys.executable, __file__, "--phase", name, "--work", str(work), "--records", str(args.records),
                                   "--boxes", str(args.boxes), "--preds", str(args.preds)], capture_output=True, text=True, check=True)
            results[name] = json.loads(proc.stdout)
            r = results[name]
            print(f"{name:22s} {r['records']:>9,} items  {r['seconds']:7.2f} s  {r['per_s']:>10,.0f}/s  peak RSS {r['peak_rss_mb']:,.0f} MB")
        print(f"diff / read-only time ratio: {results['diff']['seconds'] / results['diff_read_reference']['seconds']:.2f}")
        print(f"filter / sort time ratio:    {results['filter']['seconds'] / results['filter_sort_reference']['seconds']:.2f}")
        print("diff totals:", json.dumps(results["diff"]["total"]))


if __name__ == "__main__":
    main()
