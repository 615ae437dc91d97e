"""Feature-map overlays: per layer, per level, per channel reduction, at the size asked."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from odvgkit_train import explain

from .conftest import run_cli


@pytest.fixture(scope="module")
def rtm(rtmdet):
    return explain.load(rtmdet.checkpoint)


def test_featmap_rtmdet_layers_and_reductions(rtm, rtmdet) -> None:
    img = rtmdet.images[0]
    stage4 = explain.featmaps(rtm, img, ["backbone.stage4"], channel_reduction="squeeze_mean")
    assert [m.label for m in stage4] == ["backbone.stage4"]
    assert stage4[0].tensor.shape == (384, 3, 3)  # CSPNeXt-tiny stage 4: 384 channels at stride 32 of 96 px
    assert stage4[0].panel.shape == (96, 96, 3)
    neck = explain.featmaps(rtm, img, ["neck"], channel_reduction="squeeze_mean")
    assert [m.label for m in neck] == ["neck[0]", "neck[1]", "neck[2]"]
    assert [tuple(m.tensor.shape) for m in neck] == [(96, 12, 12), (96, 6, 6), (96, 3, 3)]
    panels = [stage4[0].panel] + [m.panel for m in neck]
    for i in range(len(panels)):
        for j in range(i + 1, len(panels)):
            assert not np.array_equal(panels[i], panels[j])  # every layer draws its own map
    level0 = explain.featmaps(rtm, img, ["neck.out_convs[0]"], channel_reduction="select_max")
    assert torch_equal(level0[0].tensor, neck[0].tensor)  # the same tensor, hooked by its own name
    assert not np.array_equal(level0[0].panel, neck[0].panel)  # select_max draws one channel, not the mean
    grid = explain.featmaps(rtm, img, ["neck.out_convs[0]"], channel_reduction="none", topk=6, arrangement=(2, 3))
    assert grid[0].panel.shape == (2 * 96, 3 * 96, 3)


def torch_equal(a, b) -> bool:
    import torch

    return bool(torch.equal(a, b))


def test_featmap_grounding_dino_encoder_levels(gdino_ckpt, rtmdet) -> None:
    gd = explain.load(gdino_ckpt)
    maps = explain.featmaps(gd, rtmdet.images[0], ["neck", "encoder"], texts="blob . square",
                            channel_reduction="squeeze_mean")
    neck = [m for m in maps if m.label.startswith("neck")]
    enc = [m for m in maps if m.label.startswith("encoder")]
    # tiny preset: 4 feature levels of 256 channels; the test image is resized to 128 px (stride 8..64)
    assert [tuple(m.tensor.shape) for m in neck] == [(256, 16, 16), (256, 8, 8), (256, 4, 4), (256, 2, 2)]
    assert [m.label for m in enc] == [f"encoder[0] level {i}" for i in range(4)]
    assert [tuple(m.tensor.shape) for m in enc] == [tuple(m.tensor.shape) for m in neck]
    for a, b in zip(neck, enc, strict=True):
        assert a.panel.shape == b.panel.shape == (96, 96, 3)
        assert not np.array_equal(a.panel, b.panel)  # the encoder changed the features
    # a Swin stage returns (x_down, down_hw, x, hw): both token sequences become maps with their own (h, w)
    swin = explain.featmaps(gd, rtmdet.images[0], ["backbone.stages[2]"], texts="blob", channel_reduction="select_max")
    assert [(m.label, tuple(m.tensor.shape)) for m in swin] == [
        ("backbone.stages[2][0]", (256, 4, 4)), ("backbone.stages[2][2]", (128, 8, 8))]


def test_featmap_cli_grid(rtmdet, tmp_path) -> None:
    out = tmp_path / "fm.png"
    proc = run_cli("explain", "featmap", rtmdet.images[0], "--checkpoint", rtmdet.checkpoint,
               "--target-layers", "backbone", "neck", "backbone.stage4", "--channel-reduction", "squeeze_mean",
               "-o", out, "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["maps drawn"] == 7  # 3 backbone outputs + 3 neck levels + stage4
    with Image.open(out) as im:  # 7 panels of 96×96 in ceil(sqrt(7)) = 3 columns, 3 rows
        assert im.size == (3 * 96, 3 * 96)



def test_preview_model_lists_layers(rtmdet, capsys, monkeypatch) -> None:
    import sys

    from odvgkit.cli import main

    monkeypatch.setattr(sys, "argv", ["odvgkit", "explain", "featmap", "--checkpoint", str(rtmdet.checkpoint), "--preview-model"])
    with pytest.raises(SystemExit) as exc:
        main()
    assert not exc.value.code
    layers = dict(line.split("\t") for line in capsys.readouterr().out.splitlines())
    assert layers["neck.out_convs[2]"] == "ConvModule" and layers["backbone.stage4"] == "Sequential"


@pytest.mark.parametrize("reduction", ["squeeze_mean", "select_max"])
def test_draw_featmap_equals_mmengine(reduction: str) -> None:
    """The reduce-before-resize shortcut draws exactly what mmengine's Visualizer.draw_featmap draws."""
    import warnings

    import torch
    from mmengine.visualization import Visualizer

    torch.manual_seed(0)
    t = torch.randn(64, 7, 9)
    img = np.random.default_rng(0).integers(0, 255, (50, 61, 3), dtype=np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = Visualizer.draw_featmap(t, img, channel_reduction=reduction)
    assert np.array_equal(explain.draw_featmap(t, img, reduction, 4, (2, 2)), expected)


def test_target_layers_take_several_values(tmp_path) -> None:
    from odvgkit.cli.explain import spread_multi

    image = tmp_path / "img.png"
    image.write_bytes(b"x")
    assert spread_multi(["IMG", "--target-layers", "backbone", "neck", "-o", "x.png"]) == [
        "IMG", "--target-layers", "backbone", "--target-layers", "neck", "-o", "x.png"]
    # an existing file after the names is the IMAGE argument, not a layer
    assert spread_multi(["--target-layer", "neck.out_convs[2]", str(image)]) == [
        "--target-layer", "neck.out_convs[2]", str(image)]
    assert spread_multi(["--target-layers"]) == ["--target-layers"]
