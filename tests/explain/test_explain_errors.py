"""Bad input gets exactly one line ``odvgkit: error: …`` and a non-zero exit, never a traceback.

One case runs the real console entry point in a subprocess; the others call the same ``main()``
in-process (each subprocess pays ~10 s of torch/mmdet imports on the shared CI machine).
"""

from __future__ import annotations

import sys

import pytest

from odvgkit.cli import main

from .conftest import run_cli


def run_main(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: object) -> tuple[int, list[str]]:
    monkeypatch.setattr(sys, "argv", ["odvgkit", *map(str, args)])
    with pytest.raises(SystemExit) as exc:
        main()
    err = capsys.readouterr().err
    return int(exc.value.code or 0), [line for line in err.splitlines() if line.strip()]


def test_unknown_layer_lists_close_matches(rtmdet, tmp_path) -> None:
    proc = run_cli("explain", "featmap", rtmdet.images[0], "--checkpoint", rtmdet.checkpoint,
               "--target-layers", "neck.out_conv[2]", "-o", tmp_path / "x.png")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("odvgkit: error: --target-layer 'neck.out_conv[2]': no such layer")
    assert "close matches: neck.out_convs[2]" in lines[0]
    assert not (tmp_path / "x.png").exists()


def test_texts_for_rtmdet(capsys, monkeypatch, rtmdet, tmp_path) -> None:
    code, lines = run_main(capsys, monkeypatch, "explain", "boxam", rtmdet.images[0], "--checkpoint", rtmdet.checkpoint,
                           "--texts", "blob", "-o", tmp_path / "x.png")
    assert code == 2 and len(lines) == 1
    assert lines[0] == (f"odvgkit: error: {rtmdet.checkpoint}: RTMDet is a closed-set detector with fixed classes; "
                        "--texts is only for Grounding DINO checkpoints: drop it")


def test_no_texts_for_grounding_dino(capsys, monkeypatch, gdino_ckpt, rtmdet, tmp_path) -> None:
    code, lines = run_main(capsys, monkeypatch, "explain", "featmap", rtmdet.images[0], "--checkpoint", gdino_ckpt,
                           "-o", tmp_path / "x.png")
    assert code == 2 and len(lines) == 1
    assert lines[0].startswith(f"odvgkit: error: {gdino_ckpt}: a Grounding DINO checkpoint (GroundingDINO) needs --texts")


def test_image_that_does_not_decode(capsys, monkeypatch, rtmdet, tmp_path) -> None:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    code, lines = run_main(capsys, monkeypatch, "explain", "featmap", bad, "--checkpoint", rtmdet.checkpoint,
                           "-o", tmp_path / "x.png")
    assert code == 1 and len(lines) == 1
    assert lines[0].startswith(f"odvgkit: error: {bad}: image does not decode (")


def test_layer_without_a_map(capsys, monkeypatch, rtmdet, tmp_path) -> None:
    code, lines = run_main(capsys, monkeypatch, "explain", "featmap", rtmdet.images[0], "--checkpoint", rtmdet.checkpoint,
                           "--target-layers", "data_preprocessor", "-o", tmp_path / "x.png")
    assert code == 2 and len(lines) == 1
    assert "'data_preprocessor'" in lines[0] and "never ran" in lines[0]


def test_arrangement_smaller_than_topk(capsys, monkeypatch, rtmdet, tmp_path) -> None:
    code, lines = run_main(capsys, monkeypatch, "explain", "featmap", rtmdet.images[0], "--checkpoint", rtmdet.checkpoint,
                           "--channel-reduction", "none", "--topk", "5", "--arrangement", "2", "2", "-o", tmp_path / "x.png")
    assert code == 2 and lines == ["odvgkit: error: --arrangement 2 2 has fewer cells than --topk 5"]


def test_checkpoint_without_config(capsys, monkeypatch, rtmdet, tmp_path) -> None:
    import torch

    from odvgkit_train.checkpoint import read_state_dict

    bare = tmp_path / "bare.pth"
    torch.save({"state_dict": read_state_dict(rtmdet.checkpoint)}, bare)
    code, lines = run_main(capsys, monkeypatch, "explain", "featmap", rtmdet.images[0], "--checkpoint", bare,
                           "-o", tmp_path / "x.png")
    assert code == 1 and lines == [f"odvgkit: error: {bare}: checkpoint carries no config; pass --config FILE"]


def test_work_dir_without_config(capsys, monkeypatch, tmp_path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    code, lines = run_main(capsys, monkeypatch, "browse", "pipeline", work, "-o", tmp_path / "viz")
    assert code == 1 and len(lines) == 1
    assert lines[0].startswith(f"odvgkit: error: {work}: no config.py in this work dir")
    code, lines = run_main(capsys, monkeypatch, "browse", "pipeline", tmp_path / "nope.py", "-o", tmp_path / "viz")
    assert code == 1 and lines == [f"odvgkit: error: {tmp_path / 'nope.py'}: no such config file or work dir"]
    notrain = tmp_path / "model_only.py"
    notrain.write_text("model = dict(type='RTMDet')\n")
    code, lines = run_main(capsys, monkeypatch, "browse", "pipeline", notrain, "-o", tmp_path / "viz")
    assert code == 1 and lines == [f"odvgkit: error: {notrain}: train_dataloader: missing (the config trains nothing to preview)"]
    assert not (tmp_path / "viz").exists()


def test_config_of_another_model(capsys, monkeypatch, rtmdet, tmp_path) -> None:
    """--config describing a different architecture than the checkpoint: the key mismatch, in one line."""
    from explain.helpers import rtmdet_config
    from mmengine.config import Config

    other = tmp_path / "three_classes.py"
    other.write_text(Config(rtmdet_config(num_classes=3, size=96)).pretty_text)
    code, lines = run_main(capsys, monkeypatch, "explain", "featmap", rtmdet.images[0], "--checkpoint", rtmdet.checkpoint,
                           "--config", other, "-o", tmp_path / "x.png")
    assert code == 1 and len(lines) == 1
    assert lines[0].startswith(f"odvgkit: error: {rtmdet.checkpoint}: checkpoint does not match the model (")
    assert "bbox_head.rtm_cls.0.weight (1, 96, 1, 1)≠(3, 96, 1, 1)" in lines[0] and lines[0].endswith("check --config")
