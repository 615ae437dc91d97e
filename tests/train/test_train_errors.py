"""Bad input: one-line errors with a non-zero exit, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import run_cli


def _one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("odvgkit: error:")]
    assert len(lines) == 1, proc.stderr[-2000:]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_od_file_without_label_map(demo, bert_dir, tmp_path: Path) -> None:
    proc = run_cli("train", "pretrain", str(demo.od_file), "--image-root", str(demo.image_root), "--model", "tiny",
                   "--text-encoder", str(bert_dir), "--work-dir", str(tmp_path / "w"), check=False)
    _one_line_error(proc, str(demo.od_file), "label map")
    assert proc.returncode == 2 and not (tmp_path / "w").exists()


def test_unknown_model_preset(demo, bert_dir, tmp_path: Path) -> None:
    proc = run_cli("train", "pretrain", str(demo.vg_file), "--image-root", str(demo.image_root), "--model", "swin-xxl",
                   "--text-encoder", str(bert_dir), "--work-dir", str(tmp_path / "w"), check=False)
    _one_line_error(proc, "swin-xxl", "tiny, swin-t, swin-b, swin-l")


def test_no_text_encoder(demo, tmp_path: Path) -> None:
    env = {"ODVGKIT_TEXT_ENCODER": ""}
    proc = run_cli("train", "pretrain", str(demo.vg_file), "--image-root", str(demo.image_root), "--model", "tiny",
                   "--work-dir", str(tmp_path / "w"), check=False, env=env)
    from odvgkit_train.text_encoder import packaged_minilm

    if packaged_minilm() is None:
        _one_line_error(proc, "no text encoder available", "--text-encoder")
    proc = run_cli("train", "pretrain", str(demo.vg_file), "--image-root", str(demo.image_root), "--model", "tiny",
                   "--text-encoder", "bert-base-uncased", "--work-dir", str(tmp_path / "w"), check=False, env=env)
    _one_line_error(proc, "bert-base-uncased", "not a directory")


def test_checkpoint_with_mismatched_keys_lists_them(trained, demo, tmp_path: Path) -> None:
    import torch

    from odvgkit_train.checkpoint import read_checkpoint

    ckpt = read_checkpoint(trained.checkpoint)
    state = dict(ckpt["state_dict"])
    state.pop("query_embedding.weight")
    state["extra_head.weight"] = torch.zeros(3)
    state["bbox_head.cls_branches.0.bias"] = torch.zeros(7)
    bad = tmp_path / "bad.pth"
    torch.save({"state_dict": state, "meta": ckpt["meta"]}, bad)
    out = tmp_path / "p.jsonl"
    img = sorted(demo.image_root.glob("*.jpg"))[0]
    proc = run_cli("infer", str(img), "--checkpoint", str(bad), "--texts", "red box .", "-o", str(out), check=False)
    line = _one_line_error(proc, "bad.pth", "1 missing: query_embedding.weight", "1 unexpected: extra_head.weight",
                           "1 shape mismatch: bbox_head.cls_branches.0.bias (7,)")
    assert "--model" in line and not out.exists()


def test_vocabulary_over_256_tokens_warns_with_count(trained, demo, tmp_path: Path) -> None:
    from odvgkit.tokenizer import count_tokens

    classes = [f"object number {i}" for i in range(120)]
    n = count_tokens(["".join(c + ". " for c in classes)])[0]
    assert n > 256
    image = sorted(demo.image_root.glob("*.jpg"))[0]
    proc = run_cli("infer", str(image), "--checkpoint", str(trained.checkpoint), "--texts", " . ".join(classes),
                   "-o", str(tmp_path / "p.jsonl"))
    assert f"is {n} tokens, over the 256-token limit" in proc.stderr and "--chunked-size" in proc.stderr
    proc = run_cli("infer", str(image), "--checkpoint", str(trained.checkpoint), "--texts", " . ".join(classes),
                   "--chunked-size", "40", "--score-thr", "0", "-o", str(tmp_path / "q.jsonl"))
    assert "256-token limit" not in proc.stderr
    labels = {i["label"] for i in json.loads((tmp_path / "q.jsonl").read_text())["detection"]["instances"]}
    assert labels and max(labels) < 120


def test_bad_manifest_and_spec_options(demo, bert_dir, tmp_path: Path) -> None:
    proc = run_cli("train", "pretrain", f"{demo.vg_file},speed=3", "--model", "tiny", "--text-encoder", str(bert_dir),
                   "--work-dir", str(tmp_path / "w"), check=False)
    _one_line_error(proc, "unknown option 'speed'")
    proc = run_cli("train", "pretrain", str(demo.vg_file), "--model", "tiny", "--text-encoder", str(bert_dir),
                   "--work-dir", str(tmp_path / "w"), check=False)
    _one_line_error(proc, "image", "not found", "--image-root")


@pytest.mark.parametrize("command", [["train", "pretrain", "x.jsonl"], ["eval", "x.jsonl", "--checkpoint", "c.pth"],
                                     ["infer", "x.jpg", "--checkpoint", "c.pth", "--texts", "cat ."]])
def test_without_the_extra_a_hint_names_it(command: list[str]) -> None:
    code = ("import sys; sys.modules['torch'] = None; sys.argv = ['odvgkit', *sys.argv[1:]];"
            "from odvgkit.cli import main; main()")
    proc = subprocess.run([sys.executable, "-c", code, *command], capture_output=True, text=True)
    assert proc.returncode == 3
    assert proc.stderr.strip() == "odvgkit: error: torch is not installed; install the 'train' extra: pip install 'odvgkit[train]'"


def test_odvgkit_imports_without_training_stack() -> None:
    code = ("import sys\nfor m in ('torch','mmdet','mmengine','mmcv','transformers'): sys.modules[m] = None\n"
            "import odvgkit, odvgkit.cli, odvgkit_train\nprint('ok')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_load_from_with_mismatched_keys_stops_before_training(trained, demo, bert_dir, tmp_path: Path) -> None:
    import torch

    from odvgkit_train.checkpoint import read_checkpoint

    state = dict(read_checkpoint(trained.checkpoint)["state_dict"])
    state.pop("level_embed")
    bad = tmp_path / "bad.pth"
    torch.save({"state_dict": state}, bad)
    work = tmp_path / "w"
    proc = run_cli("train", "finetune", str(demo.od_file), "--label-map", str(demo.label_map), "--image-root",
                   str(demo.image_root), "--model", "tiny", "--text-encoder", str(bert_dir), "--work-dir", str(work),
                   "--max-iters", "2", "--num-workers", "0", "--load-from", str(bad), check=False)
    _one_line_error(proc, "bad.pth", "1 missing: level_embed")
    assert not list(work.glob("iter_*.pth"))
