"""kill -9 at several points of a real conversion: no final output, no surviving worker, and the
temporaries are gone after the next run into the folder. A kill between the renames of a group
commit (records + label map) is finished by the next reader, never left mixed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hardening._cli import one_image_coco

from odvgkit.convert._parallel import usable_cpus

N_IMAGES = 40_000
N_ANNS = 1_000_000  # ~105 MB of JSON: over the parallel reader's 64 MB threshold
BLOCK = 40_000


def _big_coco(path: Path) -> Path:
    """A COCO-style file large enough that reading takes seconds, generated in about a second: one
    block of annotations formatted once and repeated (annotation ids repeat; nothing checks them)."""
    cats = ",".join(f'{{"id":{i + 1},"name":"class{i}","supercategory":"x"}}' for i in range(80))
    imgs = ",".join(f'{{"id":{i},"file_name":"{i:012d}.jpg","height":480,"width":640}}' for i in range(N_IMAGES))
    tpl = '{"id":%d,"image_id":%d,"category_id":%d,"bbox":[%d.5,20.25,%d.0,40.0],"area":1200.0,"iscrowd":0}'
    block = ",".join([tpl % (j, j % N_IMAGES, j % 80 + 1, j % 300, j % 50 + 10) for j in range(BLOCK)])
    with path.open("w") as fh:
        fh.write(f'{{"info":{{}},"licenses":[],"images":[{imgs}],"annotations":[')
        fh.write(",".join([block] * (N_ANNS // BLOCK)))
        fh.write(f'],"categories":[{cats}]}}')
    return path


@pytest.fixture(scope="module")
def big_coco(tmp_path_factory) -> Path:
    return _big_coco(tmp_path_factory.mktemp("big") / "instances_big.json")


def _children(pid: int) -> set[int]:
    """Direct children of ``pid`` (from /proc, so the test needs nothing installed)."""
    out = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.add(int(entry))
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def _start(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "odvgkit", *map(str, args)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, **(env or {})},
    )


def _wait_for(cond, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".odvgkit-" in p.name) if folder.is_dir() else []


def _kill(proc: subprocess.Popen[bytes]) -> set[int]:
    kids = _children(proc.pid)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    return kids


def _assert_die(workers: set[int]) -> None:
    """The workers end by themselves; if they do not, the test fails and kills them (no orphans)."""
    try:
        _wait_for(lambda: not any(_alive(w) for w in workers), 10, "the workers to die with their parent")
    finally:
        for w in workers:
            if _alive(w):
                os.kill(w, signal.SIGKILL)


def test_kill9_while_reading_and_writing_leaves_nothing(big_coco: Path, tmp_path: Path):
    before = big_coco.stat().st_mtime_ns, big_coco.stat().st_size
    out_dir = tmp_path / "out"
    out = out_dir / "big_od.jsonl"
    lm = out_dir / "coco2017_label_map.json"
    args = ("convert", "coco2odvg", big_coco, "-o", out, "--label-map", lm, "-q")

    # 1. while the annotations are decoded (with two CPUs: by forked workers)
    proc = _start(*args)
    if usable_cpus() >= 2:
        _wait_for(lambda: len(_children(proc.pid)) >= 2 or proc.poll() is not None, 60, "the decode workers")
    else:
        time.sleep(1.5)  # one CPU: no workers are forked; the ~100 MB file is still being decoded
    assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
    workers = _kill(proc)
    assert len(workers) >= (2 if usable_cpus() >= 2 else 0)
    _assert_die(workers)
    assert not out.exists() and not lm.exists()
    first = proc.pid

    # 2. while the records are being written (the temporary is growing)
    proc = _start(*args)
    def growing() -> bool:
        own = [out_dir / n for n in _temps(out_dir) if f".odvgkit-{proc.pid}-" in n and n.startswith(".big_od")]
        return any(p.stat().st_size > 1 << 20 for p in own if p.exists())

    _wait_for(lambda: growing() or proc.poll() is not None, 120, "records being written")
    assert proc.poll() is None
    workers = _kill(proc)
    _assert_die(workers)
    assert not out.exists() and not lm.exists()
    stale = _temps(out_dir)  # recognisable: named after their (dead) owner, label map and records
    assert len(stale) == 2 and all(f".odvgkit-{proc.pid}-" in n for n in stale), stale
    assert not any(f".odvgkit-{first}-" in n for n in stale)

    # 3. the next run into the folder removes every dead run's temporary and writes the outputs
    r = subprocess.run([sys.executable, "-m", "odvgkit", *map(str, args)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert _temps(out_dir) == []
    assert sorted(p.name for p in out_dir.iterdir()) == ["big_od.jsonl", "coco2017_label_map.json"]
    with out.open("rb") as fh:
        assert sum(1 for _ in fh) == N_IMAGES
    assert (big_coco.stat().st_mtime_ns, big_coco.stat().st_size) == before  # input untouched


def test_kill9_between_the_renames_of_a_group_is_rolled_forward(tmp_path: Path):
    a = one_image_coco(tmp_path / "raccoon.json", ["raccoon"])
    b = one_image_coco(tmp_path / "pets.json", ["cat", "dog", "bird"])
    out_dir = tmp_path / "out"
    out, lm = out_dir / "data_od.jsonl", out_dir / "data_od_label_map.json"  # the default name of a custom set
    r = subprocess.run([sys.executable, "-m", "odvgkit", "convert", "coco2odvg", a, "-o", out, "-q"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(lm.read_text()) == {"0": "raccoon"}

    # run B replaces both (--force) but is killed after the first rename, inside the commit window
    proc = _start("convert", "coco2odvg", b, "-o", out, "-q", "--force",
                  env={"ODVGKIT_TEST_COMMIT_PAUSE": "60"})
    journal = lambda: [p for p in out_dir.iterdir() if p.name.endswith(".journal")]  # noqa: E731
    _wait_for(lambda: journal() or proc.poll() is not None, 60, "the commit journal")
    _wait_for(lambda: len(_temps(out_dir)) == 2 or proc.poll() is not None, 10, "the first rename")  # journal + 1 temp
    assert proc.poll() is None
    _kill(proc)
    # the folder is detectably incomplete: one file is B's, the other A's, and the journal says so
    assert journal(), _temps(out_dir)
    mixed = (json.loads(lm.read_text()), [json.loads(x) for x in out.read_text().splitlines()])
    assert (mixed[0] == {"0": "raccoon"}) != (len(mixed[1][0]["detection"]["instances"]) == 1)

    # any odvgkit reader of the folder finishes B's commit before it reads
    r = subprocess.run([sys.executable, "-m", "odvgkit", "validate", out, "-m", lm, "--json"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(lm.read_text()) == {"0": "cat", "1": "dog", "2": "bird"}
    assert [i["category"] for i in json.loads(out.read_text())["detection"]["instances"]] == ["cat", "dog", "bird"]
    assert _temps(out_dir) == []


def test_ctrl_c_between_the_renames_finishes_the_commit(tmp_path: Path):
    """Ctrl-C after the first rename: the journal promised every rename, so the run completes them
    before it stops (a half-committed group is never left by a live process that can finish it)."""
    a = one_image_coco(tmp_path / "raccoon.json", ["raccoon"])
    b = one_image_coco(tmp_path / "pets.json", ["cat", "dog"])
    out_dir = tmp_path / "out"
    out, lm = out_dir / "data_od.jsonl", out_dir / "data_od_label_map.json"  # the default name of a custom set
    r = subprocess.run([sys.executable, "-m", "odvgkit", "convert", "coco2odvg", a, "-o", out, "-q"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    proc = _start("convert", "coco2odvg", b, "-o", out, "-q", "--force",
                  env={"ODVGKIT_TEST_COMMIT_PAUSE": "60"})
    _wait_for(lambda: any(n.endswith(".journal") for n in _temps(out_dir)) or proc.poll() is not None, 60, "the journal")
    _wait_for(lambda: len(_temps(out_dir)) == 2 or proc.poll() is not None, 10, "the first rename")
    assert proc.poll() is None
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "Traceback" not in err.decode()
    assert _temps(out_dir) == []  # no journal, no temporary: the commit was finished
    assert json.loads(lm.read_text()) == {"0": "cat", "1": "dog"}
    assert [i["category"] for i in json.loads(out.read_text())["detection"]["instances"]] == ["cat", "dog"]
