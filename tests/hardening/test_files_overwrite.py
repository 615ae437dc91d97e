"""An existing output (above all a label map) is never replaced by different content without
--force; identical content is a quiet success that leaves the file as it was; --force keeps the
file's mode. Every command that writes outputs takes --force."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import typer.main
from hardening._cli import one_image_coco

from odvgkit.cli import app


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int, int, int]]:
    """Every file's bytes, mode, inode and mtime: 'unchanged' means all four."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            st = p.stat()
            out[str(p.relative_to(folder))] = (p.read_bytes(), stat.S_IMODE(st.st_mode), st.st_ino, st.st_mtime_ns)
    return out


def _one_error_line(stderr: str) -> str:
    lines = [x for x in stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("odvgkit: error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_label_map_of_another_dataset_is_not_replaced_without_force(tmp_path, cli):
    """The reported case: raccoon, then COCO into one folder replaced {"0": "raccoon"} silently.

    Without ``-d`` a custom dataset now gets a label map named after its output, so the clash needs
    both runs to claim COCO's name (``-d coco``): the second must still not replace the first's map.
    """
    raccoon = one_image_coco(tmp_path / "raccoon.json", ["raccoon"])
    coco = one_image_coco(tmp_path / "coco.json", ["person", "bicycle", "car"])
    out = tmp_path / "out"
    r = cli("convert", "coco2odvg", raccoon, "-d", "coco", "-o", out / "raccoon_od.jsonl", "-q")
    assert r.returncode == 0, r.stderr
    lm = out / "coco2017_label_map.json"  # the default label map name for -d coco
    assert json.loads(lm.read_text()) == {"0": "raccoon"}
    lm.chmod(0o640)
    coco_bytes = coco.read_bytes()
    before = _snapshot(out)

    r = cli("convert", "coco2odvg", coco, "-d", "coco", "-o", out / "coco_od.jsonl")
    assert r.returncode == 1
    line = _one_error_line(r.stderr)
    assert line == f"odvgkit: error: {lm}: exists with different content; not replaced (pass --force to replace it)"
    assert _snapshot(out) == before  # label map untouched, the records of the run not committed, no temporaries
    assert coco.read_bytes() == coco_bytes

    r = cli("convert", "coco2odvg", coco, "-d", "coco", "-o", out / "coco_od.jsonl", "--force", "-q")
    assert r.returncode == 0, r.stderr
    assert json.loads(lm.read_text()) == {"0": "person", "1": "bicycle", "2": "car"}
    assert stat.S_IMODE(lm.stat().st_mode) == 0o640  # --force keeps the replaced file's mode
    assert sorted(p.name for p in out.iterdir()) == ["coco2017_label_map.json", "coco_od.jsonl", "raccoon_od.jsonl"]


def test_identical_rerun_succeeds_and_leaves_files_untouched(tmp_path, cli, tiny_coco):
    src = tiny_coco / "instances_val2017.json"
    out = tmp_path / "out"
    args = ("convert", "coco2odvg", src, "-o", out / "val_od.jsonl", "-q")
    assert cli(*args).returncode == 0
    (out / "val_od.jsonl").chmod(0o600)
    before = _snapshot(out)
    r = cli(*args)
    assert r.returncode == 0 and r.stderr == ""
    assert _snapshot(out) == before  # same inode, mtime and mode: not even rewritten


def _records(path: Path, n: int, tag: str) -> Path:
    path.write_text("".join(
        json.dumps({"filename": f"{tag}{i}.jpg", "height": 10, "width": 10,
                    "detection": {"instances": [{"bbox": [1, 1, 5, 5], "label": 0, "category": "cat"}]}}) + "\n"
        for i in range(n)))
    return path


@pytest.mark.parametrize("command", ["split", "labels rename", "export coco", "o365 fix-wh"])
def test_other_writers_refuse_too(tmp_path, cli, command):
    """The check lives in the atomic commit, so writers of every kind get it (group, single file, stream)."""
    lm = tmp_path / "lm.json"
    lm.write_text('{"0": "cat"}')
    a, b = _records(tmp_path / "a.jsonl", 3, "a"), _records(tmp_path / "b.jsonl", 3, "b")
    if command == "split":
        target = tmp_path / "out" / "a.jsonl"
        run = lambda src, *x: cli("split", src, "-o", tmp_path / "out", *x)  # noqa: E731
        (tmp_path / "b_dir").mkdir()
        b = _records(tmp_path / "b_dir" / "a.jsonl", 2, "b")  # same output name, other records
    elif command == "labels rename":
        target = tmp_path / "renamed.json"
        a.write_text('{"0": "Cat"}')
        b.write_text('{"0": "Dog"}')
        run = lambda src, *x: cli("labels", "rename", src, "--style", "lower", "-o", target, *x)  # noqa: E731
    elif command == "export coco":
        target = tmp_path / "coco.json"
        run = lambda src, *x: cli("export", "coco", src, "--label-map", lm, "-o", target, *x)  # noqa: E731
    else:
        target = tmp_path / "fixed.json"
        info = tmp_path / "info.tsv"
        info.write_text("id\tfile_name\theight\twidth\n1\ta.jpg\t10\t20\n")
        a.write_text(json.dumps({"images": [{"id": 1, "file_name": "a.jpg", "height": 10, "width": 20}], "annotations": []}))
        b.write_text(json.dumps({"images": [{"id": 1, "file_name": "a.jpg", "height": 99, "width": 20}], "annotations": []}))
        run = lambda src, *x: cli("o365", "fix-wh", src, "--info", info, "-o", target, *x)  # noqa: E731
    r = run(a, "-q")
    assert r.returncode == 0, r.stderr
    first = target.read_bytes()
    assert run(a, "-q").returncode == 0 and target.read_bytes() == first  # identical: fine
    r = run(b)
    assert r.returncode == 1
    assert _one_error_line(r.stderr).startswith(f"odvgkit: error: {target}: exists with different content")
    assert target.read_bytes() == first
    assert not [p for p in target.parent.rglob("*") if ".odvgkit-" in p.name]
    r = run(b, "--force", "-q")
    assert r.returncode == 0, r.stderr
    assert target.read_bytes() != first


# Commands that write into a job folder they own and resume (work dirs, download/processing
# folders) replace their own bookkeeping files; they have no outputs a user names one by one.
JOB_FOLDERS = {"grit download", "grit process", "train pretrain", "train finetune", "pseudolabel loop"}
OUTPUT_PARAMS = {"output", "output_dir", "out_dir", "write", "output_name", "render", "predictions", "plot",
                 "manifest", "materialize", "emit_mmdet", "stats_path", "label_map_out", "out_label_map"}


def _commands(group, path=()):
    for name, sub in group.commands.items():
        if hasattr(sub, "commands"):
            yield from _commands(sub, (*path, name))
        else:
            yield " ".join((*path, name)), sub


def test_every_command_that_writes_outputs_takes_force():
    writers = []
    for name, command in _commands(typer.main.get_command(app)):
        params = {p.name: p for p in command.params}
        if not OUTPUT_PARAMS & set(params) or name in JOB_FOLDERS:
            continue
        writers.append(name)
        flags = [o for p in params.values() for o in getattr(p, "opts", [])]
        assert "--force" in flags, f"odvgkit {name} writes outputs but has no --force"
    assert len(writers) >= 30  # the walk really found the commands


def test_force_is_per_process_state_only_through_the_option(tmp_path, monkeypatch):
    """Library callers get the safe default; force=True is explicit."""
    from odvgkit.errors import OdvgError
    from odvgkit.io import write_records

    target = tmp_path / "x.jsonl"
    write_records(target, [{"a": 1}])
    os.chmod(target, 0o604)
    with pytest.raises(OdvgError, match="exists with different content"):
        write_records(target, [{"a": 2}])
    assert target.read_text() == '{"a":1}\n'
    write_records(target, [{"a": 2}], force=True)
    assert target.read_text() == '{"a":2}\n' and stat.S_IMODE(target.stat().st_mode) == 0o604


def test_label_map_conflict_stops_before_records_are_converted(tmp_path: Path):
    """A conflicting label map is known at once; the (possibly hours-long) record stream never starts."""
    from odvgkit.convert.base import Conversion, write_conversion
    from odvgkit.errors import OdvgError

    lm = tmp_path / "lm.json"
    lm.write_text('{"0": "raccoon"}\n')
    consumed: list[int] = []

    def records():
        consumed.append(1)
        yield {"filename": "a.jpg", "height": 1, "width": 1, "detection": {"instances": []}}

    conv = Conversion(records=records(), label_map={"0": "cat"})
    with pytest.raises(OdvgError, match=f"^{lm}: exists with different content"):
        write_conversion(conv, tmp_path / "x.jsonl", inputs=[], label_map_path=lm)
    assert consumed == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lm.json"]
    assert lm.read_text() == '{"0": "raccoon"}\n'
