"""End to end: ``odvgkit browse fiftyone`` starts mongod and the App on loopback, headless Chromium
shows the sample grid with the real COCO images, and SIGTERM stops every process it started."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from odvgkit.browse.app import free_port

from .conftest import VAL_IMAGES, coco_od_records, write_jsonl

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
WINDOW = (1280, 900)
# the first row of the sample grid at 1280x900: right of the sidebar, below the toolbar, left of
# the pop-up the App shows at the top right
GRID_ROW = (305, 140, 855, 400)


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("chromium is not installed; the App end-to-end test needs it: apt-get install -y chromium")
    return found


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def _colours(png: Path) -> int:
    """Distinct colours (4 bits a channel) in the grid's first row: photographs have hundreds,
    the App's own chrome (flat greys, one orange) a few dozen at most."""
    region = np.asarray(Image.open(png).convert("RGB").crop(GRID_ROW)) >> 4
    return len(np.unique(region.reshape(-1, 3), axis=0))


def _ours(marker: str) -> list[int]:
    """Processes whose command line names our tmp directory (the mongod we started)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if marker in (proc / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(proc.name))
            except OSError:
                continue
    return pids


@pytest.mark.slow
def test_app_renders_the_sample_grid_and_stops_cleanly(tmp_path: Path) -> None:
    chromium = _chromium()
    records, _ = coco_od_records()
    data = write_jsonl(tmp_path / "e2e_coco.jsonl", records)
    db = tmp_path / "db"
    port = free_port()
    env = {**os.environ, "FIFTYONE_DATABASE_DIR": str(db), "NO_COLOR": "1"}
    env.pop("FIFTYONE_DATABASE_URI", None)  # the command must start its own mongod
    log = tmp_path / "cli.log"
    with open(log, "wb") as out:
        cli = subprocess.Popen(
            [sys.executable, "-m", "odvgkit", "browse", "fiftyone", str(data), "-i", str(VAL_IMAGES),
             "--name", "e2e_coco", "--port", str(port), "--db-dir", str(db)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=tmp_path)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 300
        while not _answers(f"{base}/fiftyone"):
            assert cli.poll() is None, f"browse fiftyone exited early:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"the App did not answer in 300 s:\n{log.read_text()}"
            time.sleep(1)
        while f"FiftyOne App: {base}/datasets/e2e_coco" not in log.read_text():  # printed once it answers
            assert cli.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        text = log.read_text()  # the load summary comes while the App serves, not after it stops
        assert "browse fiftyone" in text and text.index("browse fiftyone") < text.index("FiftyOne App:"), text
        assert f"{base}/datasets/e2e_coco" in text[:text.index("FiftyOne App:")], text
        shot = tmp_path / "app.png"
        colours = 0
        for attempt in range(4):  # the grid fills in asynchronously; give a slow machine more time
            shot.unlink(missing_ok=True)
            subprocess.run(
                [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chrome'}",
                 f"--window-size={WINDOW[0]},{WINDOW[1]}", f"--virtual-time-budget={20000 * (attempt + 1)}",
                 f"--screenshot={shot}", f"{base}/datasets/e2e_coco"],
                capture_output=True, timeout=240, check=False, cwd=tmp_path)
            assert shot.is_file(), "chromium wrote no screenshot"
            colours = _colours(shot)
            if colours >= 400:
                break
        keep = os.environ.get("ODVGKIT_E2E_SCREENSHOT")
        if keep:
            shutil.copy(shot, keep)
        assert Image.open(shot).size == WINDOW
        assert colours >= 400, f"no sample grid in the screenshot ({colours} colours in the grid row): {shot}"
    finally:
        if cli.poll() is None:
            cli.send_signal(signal.SIGTERM)
        try:
            code = cli.wait(90)
        except subprocess.TimeoutExpired:
            cli.kill()
            code = cli.wait()
        leftovers = _ours(str(db))
        for pid in leftovers:  # only processes started by this test (their command line names our tmp dir)
            os.kill(pid, signal.SIGKILL)
    assert code == 0, log.read_text()
    assert "stopping the App and the database" in log.read_text()
    assert leftovers == [], "mongod was left running"
    assert not _answers(f"{base}/fiftyone"), "the App server was left running"
