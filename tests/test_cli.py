"""The CLI as a whole: every command teaches by example, heavy extras stay out of the way, the demo runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import typer.main

from odvgkit.cli import app


def _commands() -> list[tuple[str, ...]]:
    root = typer.main.get_command(app)
    out: list[tuple[str, ...]] = []

    def walk(cmd, path: tuple[str, ...]) -> None:
        if getattr(cmd, "commands", None):
            for name, sub in cmd.commands.items():
                walk(sub, (*path, name))
        else:
            out.append(path)

    walk(root, ())
    return out


def test_every_command_has_examples_in_help() -> None:
    root = typer.main.get_command(app)
    commands = _commands()
    assert ("convert", "coco2odvg") in commands and ("validate",) in commands and ("demo",) in commands
    missing = []
    for path in commands:
        cmd = root
        for name in path:
            cmd = cmd.commands[name]  # type: ignore[attr-defined]
        if "Examples" not in (cmd.help or ""):
            missing.append(" ".join(path))
    assert not missing, f"commands without an Examples block in --help: {missing}"


def test_import_and_help_need_no_extras() -> None:
    code = ("import sys, odvgkit.cli; heavy = {'torch', 'mmdet', 'mmengine', 'fiftyone', 'pyspark', 'img2dataset', "
            "'matplotlib', 'transformers', 'odvgkit_train'} & set(sys.modules); print(sorted(heavy))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "[]"


def test_version_and_unknown_command(cli) -> None:
    res = cli("--version")
    assert res.returncode == 0 and res.stdout.startswith("odvgkit ")
    res = cli("convert", "nosuch2odvg")
    assert res.returncode == 2 and "No such command" in res.stderr


def test_demo_end_to_end(tmp_path: Path, cli) -> None:
    res = cli("demo", "-o", tmp_path / "demo", "--json")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["images"] == 6 and summary["boxes_kept"] == 135 and summary["boxes_dropped_crowd"] == 1
    assert summary["validation_errors"] == 0
    assert summary["top categories"][0] == {"category": "wine glass", "boxes": 31}
    lines = (tmp_path / "demo" / "instances_val2017_sample_od.json").read_text().splitlines()
    assert len(lines) == 6
    res = cli("demo", "-o", tmp_path / "demo2")
    assert res.returncode == 0 and "odvgkit demo" in res.stderr and res.stdout == ""
