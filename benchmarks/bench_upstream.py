"""Benchmark: odvgkit's converters side by side with the **real** upstream scripts (issue #17).

Each row generates its input with ``benchmarks/realistic/<row>.py`` — written independently of
``benchmarks/synth.py`` and shaped like the real files where it matters to a streaming parser (COCO
annotations not grouped by image, full-precision float areas, crowd RLE ``counts``, polygons of
varying length, non-contiguous ids, varying key order) — then runs, in fresh child processes,
interleaved (upstream, odvgkit, upstream, odvgkit, …):

* the real upstream script, MMDetection v3.3.0 ``tools/dataset_converters/<script>.py``, run as
  written (``python script.py ARGS``);
* ``python -m odvgkit convert ...`` on the same input.

The upstream scripts are never committed. ``fetch`` copies them from the installed mmdet package
(``mmdet/.mim/tools/dataset_converters/``, identical to the v3.3.0 tag) into a scratch folder
outside the repository; without mmdet, fetch them from GitHub into that folder yourself::

    python benchmarks/bench_upstream.py fetch ../upstream-scripts
    # or: for s in coco2odvg goldg2odvg lvis2odvg openimages2odvg; do curl -sLo ../upstream-scripts/$s.py \\
    #   https://raw.githubusercontent.com/open-mmlab/mmdetection/v3.3.0/tools/dataset_converters/$s.py; done

They need ``pycocotools``, ``lvis``, ``jsonlines``, ``tqdm`` and (``openimages2odvg.py``) mmcv +
mmengine: the ``train`` and ``dev`` extras.

Measured per run: wall seconds, CPU seconds (user + system of the child and its workers) and peak
RSS (``ru_maxrss`` of a ``wait4``, the larger of child and workers) — the same way for both sides.
Before every run the harness waits until the 1-minute load average is ≤ ``--max-load`` (default
1.0; the issue's "quiet 2-core machine"), and prints the load it started at::

    python benchmarks/bench_upstream.py run coco --scale small       # quick
    python benchmarks/bench_upstream.py run coco o365 goldg lvis openimages --repeat 3
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SCRIPTS = ("coco2odvg.py", "goldg2odvg.py", "lvis2odvg.py", "openimages2odvg.py")


@dataclass
class Run:
    wall: float
    cpu: float
    rss_gib: float
    load: float


def fetch(dest: Path, scripts: tuple[str, ...] = SCRIPTS) -> Path:
    """Copy the real converters shipped inside the installed mmdet into ``dest`` (outside the repo)."""
    import importlib.util

    spec = importlib.util.find_spec("mmdet")
    if spec is None or spec.origin is None:
        raise SystemExit("mmdet is not installed (extra 'train'): fetch the scripts from GitHub, see the docstring")
    tools = Path(spec.origin).parent / ".mim" / "tools" / "dataset_converters"
    dest.mkdir(parents=True, exist_ok=True)
    for script in scripts:
        shutil.copy2(tools / script, dest / script)
    return dest


def wait_quiet(max_load: float, timeout: float = 900.0) -> float:
    """The 1-minute load average once it is ≤ ``max_load`` (or after ``timeout`` s, said on stderr)."""
    t0 = time.monotonic()
    while (load := os.getloadavg()[0]) > max_load:
        if time.monotonic() - t0 > timeout:
            print(f"  (load still {load:.2f} after {timeout:.0f} s; running anyway)", file=sys.stderr)
            break
        time.sleep(5)
    return load


def child(argv: list[str], max_load: float, cwd: Path | None = None) -> Run:
    """One fresh ``python ARGV`` process: wall, CPU and peak RSS of it and its workers."""
    load = wait_quiet(max_load)
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=cwd)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if status != 0:
        raise SystemExit(f"{' '.join(argv)} failed (status {status}):\n{err[-2000:]}")
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / (1 << 20), load)


def row_module(name: str) -> ModuleType:
    """``benchmarks/realistic/<name>.py``: ``SCALES``, ``generate``, ``upstream``, ``ours``, ``compare``."""
    sys.path.insert(0, str(HERE))
    return importlib.import_module(f"realistic.{name}")


def bench_row(name: str, scale: str, work: Path, scripts: Path, repeat: int, upstream_repeat: int,
              max_load: float) -> dict[str, object]:
    mod = row_module(name)
    inputs = mod.generate(work / name / scale, scale)
    out = work / name / scale / "out"
    out.mkdir(parents=True, exist_ok=True)
    runs: dict[str, list[Run]] = {"upstream": [], "odvgkit": []}
    for i in range(max(repeat, upstream_repeat)):
        for side in ("upstream", "odvgkit"):
            if i >= (upstream_repeat if side == "upstream" else repeat):
                continue
            argv = mod.upstream(inputs, out / "upstream", scripts) if side == "upstream" else mod.ours(inputs, out / "odvgkit")
            (out / side).mkdir(exist_ok=True)
            r = child(argv, max_load, cwd=out / side)
            runs[side].append(r)
            print(f"  {name}/{scale} {side:8s} {r.wall:8.2f} s wall {r.cpu:8.2f} s CPU {r.rss_gib:6.2f} GiB  (load {r.load:.2f})",
                  file=sys.stderr)
    med = {side: Run(*(statistics.median(getattr(r, f) for r in rs) for f in ("wall", "cpu", "rss_gib", "load")))
           for side, rs in runs.items()}
    up, me = med["upstream"], med["odvgkit"]
    return {"row": f"{name}/{scale}", "upstream_s": up.wall, "upstream_cpu_s": up.cpu, "upstream_gib": up.rss_gib,
            "odvgkit_s": me.wall, "odvgkit_cpu_s": me.cpu, "odvgkit_gib": me.rss_gib,
            "speedup": up.wall / me.wall, "memory": me.rss_gib / up.rss_gib,
            "same": mod.compare(inputs, out / "upstream", out / "odvgkit")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch", help="copy the real upstream scripts into DIR (outside the repository)")
    f.add_argument("dest", type=Path)
    r = sub.add_parser("run", help="benchmark rows: coco o365 goldg lvis openimages (see benchmarks/realistic/)")
    r.add_argument("rows", nargs="+")
    r.add_argument("--scale", default="full", help="'full' (the issue's sizes) or 'small'")
    r.add_argument("--work", type=Path, default=REPO / "bench-data" / "upstream-bench")
    r.add_argument("--scripts", type=Path, default=None, help="folder with the upstream scripts (default: fetched into WORK/scripts)")
    r.add_argument("--repeat", type=int, default=3, help="odvgkit runs per row (median reported)")
    r.add_argument("--upstream-repeat", type=int, default=3, help="upstream runs per row (minutes each at full scale)")
    r.add_argument("--max-load", type=float, default=1.0)
    args = ap.parse_args()
    if args.cmd == "fetch":
        print(fetch(args.dest))
        return
    scripts = args.scripts or fetch(args.work / "scripts")
    results = [bench_row(name, args.scale, args.work, scripts, args.repeat, args.upstream_repeat, args.max_load)
               for name in args.rows]
    print("| row | upstream (real script) | odvgkit | speed-up | CPU s (upstream / odvgkit) | memory | same output |")
    print("|---|---|---|---|---|---|---|")
    for x in results:
        print(f"| {x['row']} | {x['upstream_s']:.1f} s, {x['upstream_gib']:.2f} GiB | {x['odvgkit_s']:.2f} s, "
              f"{x['odvgkit_gib']:.2f} GiB | {x['speedup']:.1f}× | {x['upstream_cpu_s']:.1f} / {x['odvgkit_cpu_s']:.2f} | "
              f"{x['memory']:.2f} | {x['same']} |")


if __name__ == "__main__":
    main()
