"""Throughput of ``browse render`` and of the FiftyOne load/export, with references measured in the
same run (prints a table; no assertions).

* render: images/s for ``render_file`` on the tiny COCO val images (repeated), against the floor
  cost of the same work without drawing (decode + EXIF transpose + JPEG encode with Pillow).
* FiftyOne: records/s for ``load_dataset`` and ``export_dataset`` on N synthetic OD records (80
  boxes each is not typical; 8 is), against FiftyOne's own ``add_samples`` of bare detections
  (label + box only) — the cost odvgkit's extra fields and bookkeeping add.

Run: ``python benchmarks/bench_browse.py [--records 5000] [--renders 60]`` (starts and stops its own
mongod in a temporary directory).
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from odvgkit.browse.app import database  # noqa: E402
from odvgkit.browse.render import RenderOptions, render_file  # noqa: E402

IMAGES = ROOT / ".." / "shared" / "fixtures" / "tiny_coco" / "images" / "val2017"
ANN = ROOT / ".." / "shared" / "fixtures" / "tiny_coco" / "annotations" / "instances_val2017.json"


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def od_records() -> list[dict]:
    coco = json.loads(ANN.read_text())
    lab = {cid: i for i, cid in enumerate(sorted(c["id"] for c in coco["categories"]))}
    out = []
    for im in coco["images"]:
        inst = [{"bbox": [a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]],
                 "label": lab[a["category_id"]]} for a in coco["annotations"] if a["image_id"] == im["id"]]
        out.append({"filename": im["file_name"], "height": im["height"], "width": im["width"], "detection": {"instances": inst}})
    return out


def bench_render(tmp: Path, renders: int) -> list[tuple[str, float, str]]:
    recs = od_records()
    src = tmp / "render.jsonl"
    src.write_text("".join(json.dumps(recs[i % len(recs)]) + "\n" for i in range(renders)))
    t = time.perf_counter()
    for i in range(renders):
        with Image.open(IMAGES / recs[i % len(recs)]["filename"]) as im:
            im.load()
            ImageOps.exif_transpose(im).convert("RGB").save(io.BytesIO(), "JPEG", quality=90)
    ref = renders / (time.perf_counter() - t)
    t = time.perf_counter()
    render_file(src, RenderOptions(images_root=IMAGES, out_dir=tmp / "out"), n=0)
    ours = renders / (time.perf_counter() - t)
    return [("render (images/s)", ours, f"{ours / ref:.2f}x of decode+encode only ({ref:.1f}/s)")]


def bench_fiftyone(tmp: Path, n: int) -> list[tuple[str, float, str]]:
    recs = od_records()
    rows = []
    src = tmp / "fo.jsonl"
    with open(src, "w") as fh:
        for i in range(n):
            r = dict(recs[i % len(recs)])
            r["detection"] = {"instances": r["detection"]["instances"][:8]}
            fh.write(json.dumps(r) + "\n")
    with database(tmp / "db"):
        import fiftyone as fo

        from odvgkit.browse.fiftyone_io import export_dataset, load_dataset

        t = time.perf_counter()
        ref_ds = fo.Dataset("bench_ref", overwrite=True)
        batch = []
        for line in src.read_text().splitlines():
            r = json.loads(line)
            w, h = r["width"], r["height"]
            dets = [fo.Detection(label=str(i["label"]), bounding_box=[i["bbox"][0] / w, i["bbox"][1] / h,
                    (i["bbox"][2] - i["bbox"][0]) / w, (i["bbox"][3] - i["bbox"][1]) / h]) for i in r["detection"]["instances"]]
            batch.append(fo.Sample(filepath=str(IMAGES / r["filename"]), ground_truth=fo.Detections(detections=dets)))
            if len(batch) == 1000:
                ref_ds.add_samples(batch, progress=False)
                batch = []
        if batch:
            ref_ds.add_samples(batch, progress=False)
        ref = n / (time.perf_counter() - t)
        t = time.perf_counter()
        load_dataset(src, IMAGES, "bench_odvg", overwrite=True)
        load = n / (time.perf_counter() - t)
        rows.append(("FiftyOne load (records/s)", load, f"{load / ref:.2f}x of bare add_samples ({ref:.0f}/s)"))
        t = time.perf_counter()
        export_dataset("bench_odvg", tmp / "back.jsonl")
        exp = n / (time.perf_counter() - t)
        t = time.perf_counter()
        for _ in ref_ds.iter_samples(batch_size=1000):
            pass
        it = n / (time.perf_counter() - t)
        rows.append(("FiftyOne export (records/s)", exp, f"{exp / it:.2f}x of bare iter_samples ({it:.0f}/s)"))
        fo.delete_dataset("bench_ref")
        fo.delete_dataset("bench_odvg")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=5000)
    ap.add_argument("--renders", type=int, default=60)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        rows = bench_render(tmp, args.renders)
        rss_render = rss_mib()
        rows += bench_fiftyone(tmp, args.records)
    for name, value, ratio in rows:
        print(f"{name:30s} {value:10.1f}   {ratio}")
    print(f"peak RSS after render: {rss_render:.0f} MiB; after FiftyOne ({args.records} records): {rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
