"""``odvgkit GROUP COMMAND …`` builds only that command (odvgkit.cli._direct_command): a run
must look exactly like the full typer path (which an ``_ODVGKIT*`` variable in the environment,
like shell completion's, selects)."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli

from odvgkit import cli


def test_direct_command_only_for_a_plain_group_command():
    assert cli._direct_command(["convert", "goldg2odvg", "x.json"]).name == "goldg2odvg"
    for argv in (["convert"], ["convert", "goldg2odvg", "-h"], ["convert", "--help", "goldg2odvg"],
                 ["convert", "nosuch"], ["validate", "x"], ["--version", "x"], [],
                 ["explain", "featmap", "a.jpg"]):  # explain's own group class rewrites arguments
        assert cli._direct_command(argv) is None, argv


@pytest.mark.parametrize("args", [
    ["convert", "goldg2odvg"],  # missing argument: usage error, exit 2
    ["convert", "goldg2odvg", "{src}", "--bogus"],
    ["convert", "goldg2odvg", "{src}", "-o", "{out}", "--json"],
    ["convert", "goldg2odvg", "{src}", "-o", "{out}"],  # exists, same bytes: left alone
    ["convert", "goldg2odvg", "{bad}", "-o", "{out2}", "--strict"],
    ["convert", "goldg2odvg", "{tmp}/missing.json"],
])
def test_direct_command_runs_like_the_full_path(tmp_path, args):
    src = tmp_path / "in.json"
    src.write_text(json.dumps({"images": [{"id": 1, "file_name": "a.jpg", "height": 9, "width": 9, "caption": "a dog"}],
                               "annotations": [{"image_id": 1, "bbox": [1, 1, 5, 5], "area": 25, "iscrowd": 0,
                                                "tokens_positive": [[2, 5]]}]}), "utf-8")
    bad = tmp_path / "bad.json"
    bad.write_text(src.read_text("utf-8").replace("[[2, 5]]", "[[2, 50]]"), "utf-8")
    names = {"src": src, "bad": bad, "out": tmp_path / "out.jsonl", "out2": tmp_path / "out2.jsonl", "tmp": tmp_path}
    argv = [a.format(**names) for a in args]
    direct = run_cli(*argv)
    full = run_cli(*argv, env={"_ODVGKIT_FULL_PATH": "1"})
    assert (direct.returncode, direct.stdout, direct.stderr) == (full.returncode, full.stdout, full.stderr)
    assert direct.returncode in (0, 1, 2)
