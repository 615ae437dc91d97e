"""coco2odvg throughput and peak memory at COCO and Objects365 scale.

Every measurement runs in a fresh subprocess (so peak RSS is that of the measured work alone):

* ``odvgkit``  — ``coco_to_odvg`` + ``write_conversion``, exactly what the CLI runs;
* ``floor``    — the parse floor: ``orjson.loads`` of the input plus ``orjson.dumps`` of every
  output record (records pre-loaded, untimed): what any converter that materialises the input
  must at least spend;
* ``upstream`` — the independent port of MMDetection's coco2odvg.py in
  ``tests/reference/upstream_coco2odvg.py`` (pycocotools index, whole file in RAM, output list),
  run with ``--upstream`` (at Objects365 scale it needs ~13 GiB).

Usage::

    python benchmarks/bench_coco2odvg.py --scale coco --upstream
    python benchmarks/bench_coco2odvg.py --scale o365
    taskset -c 0,1 python benchmarks/bench_coco2odvg.py --scale coco o365 o365-full   # 2 cores

Targets (issue #2, 2-core machine): COCO-scale ≤ 4 s and ≤ 0.6 GiB; O365-scale ≤ 25 s and
≤ 3 GiB; ≤ 3× the parse floor; full Objects365 v2 train (25M boxes) within 8 GiB.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from synth import SCALES, write_coco_like  # noqa: E402

TARGETS = {"coco": (4.0, 0.6), "o365": (25.0, 3.0), "o365-full": (None, 8.0)}

_CHILD_PRELUDE = """
import json, sys, time
def peak_gib():
    # VmHWM of this process image (ru_maxrss would include the forking parent's peak)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
def done(t0, **extra):
    print(json.dumps({"seconds": time.perf_counter() - t0, "peak_gib": peak_gib(), **extra}))
"""

ODVGKIT = _CHILD_PRELUDE + """
from odvgkit.convert.coco import coco_to_odvg
from odvgkit.convert.base import write_conversion
src, out, flavour = sys.argv[1:4]
t0 = time.perf_counter()
conv = coco_to_odvg(src, dataset=flavour)
write_conversion(conv, out, inputs=[src], label_map_path=out + ".label_map.json")
done(t0, boxes=conv.stats["boxes"], images=conv.stats["images"])
"""

FLOOR = _CHILD_PRELUDE + """
import orjson
src, out = sys.argv[1:3]
records = [orjson.loads(line) for line in open(out, "rb")]
t0 = time.perf_counter()
data = orjson.loads(open(src, "rb").read())
load = time.perf_counter() - t0
t1 = time.perf_counter()
for r in records:
    orjson.dumps(r)
dump = time.perf_counter() - t1
print(json.dumps({"seconds": load + dump, "load": load, "dump": dump, "peak_gib": peak_gib()}))
"""

UPSTREAM = _CHILD_PRELUDE + """
sys.path.insert(0, sys.argv[4])
from reference.upstream_coco2odvg import upstream_coco2odvg
import jsonlines
src, out, flavour = sys.argv[1:4]
t0 = time.perf_counter()
records, label_map = upstream_coco2odvg(src, flavour)
json.dump(label_map, open(out + ".label_map.json", "w"))
with jsonlines.open(out, mode="w") as w:   # upstream writes with jsonlines at the end
    w.write_all(records)
done(t0, boxes=sum(len(r["detection"]["instances"]) for r in records))
"""


def run_child(code: str, *args: str) -> dict:
    res = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"benchmark child failed:\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", nargs="+", default=["coco"], choices=list(SCALES))
    ap.add_argument("--data-dir", type=Path, default=HERE.parent / "bench-data")
    ap.add_argument("--upstream", action="store_true", help="also time the upstream port (slow, RAM hungry)")
    ap.add_argument("--no-floor", action="store_true", help="skip the parse floor (needs ~7x the input in RAM)")
    args = ap.parse_args()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for scale in args.scale:
        n_images, n_boxes, n_cats, style = SCALES[scale]
        src = args.data_dir / f"synth_{scale}.json"
        if not src.exists():
            print(f"generating {src} ({n_images:,} images, {n_boxes:,} boxes)…", flush=True)
            write_coco_like(src, n_images, n_boxes, n_cats, style)
        flavour = "o365v2" if style == "o365" else "coco"
        out = str(args.data_dir / f"synth_{scale}_od.jsonl")
        ours = run_child(ODVGKIT, str(src), out, flavour)
        row = {"scale": scale, "input_mb": src.stat().st_size / 1e6, "boxes": ours["boxes"],
               "odvgkit_s": ours["seconds"], "odvgkit_gib": ours["peak_gib"],
               "boxes_per_s": ours["boxes"] / ours["seconds"]}
        if not args.no_floor:
            floor = run_child(FLOOR, str(src), out)
            row.update(floor_s=floor["seconds"], floor_gib=floor["peak_gib"], vs_floor=ours["seconds"] / floor["seconds"])
        if args.upstream:
            up_out = str(args.data_dir / f"synth_{scale}_upstream_od.jsonl")
            up = run_child(UPSTREAM, str(src), up_out, flavour, str(HERE.parent / "tests"))
            row.update(upstream_s=up["seconds"], upstream_gib=up["peak_gib"],
                       speedup=up["seconds"] / ours["seconds"], memory_ratio=ours["peak_gib"] / up["peak_gib"])
            with open(out) as a, open(up_out) as b:
                row["same_records"] = all(json.loads(x) == json.loads(y) for x, y in zip(a, b, strict=True))
        t_target, m_target = TARGETS.get(scale, (None, None))
        row["target"] = " ".join(
            filter(None, [f"≤{t_target:g}s" if t_target else "", f"≤{m_target:g}GiB" if m_target else ""]))
        row["meets_target"] = (t_target is None or row["odvgkit_s"] <= t_target) and (
            m_target is None or row["odvgkit_gib"] <= m_target) and row.get("vs_floor", 0) <= 3
        rows.append(row)
        print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
    print()
    cols = [c for c in ("scale", "input_mb", "boxes", "odvgkit_s", "odvgkit_gib", "boxes_per_s", "floor_s", "vs_floor",
                        "upstream_s", "upstream_gib", "speedup", "memory_ratio", "same_records", "target", "meets_target")
            if any(c in r for r in rows)]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(_fmt(r.get(c, "")) for c in cols) + " |")


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:,.2f}" if v < 1000 else f"{v:,.0f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


if __name__ == "__main__":
    main()
