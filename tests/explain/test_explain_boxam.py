"""Box activation maps on a model that really learnt where the object is, and on Grounding DINO."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from odvgkit_train import explain

from .conftest import run_cli


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.fixture(scope="module")
def rtm(rtmdet):
    return explain.load(rtmdet.checkpoint)


@pytest.mark.parametrize("method", explain.METHODS)
def test_boxam_mass_lies_in_the_learnt_box(rtm, rtmdet, method: str) -> None:
    image, gt = rtmdet.images[0], rtmdet.boxes[0]
    am = explain.boxam(rtm, image, ["neck"], method=method, score_thr=0.3)
    # the model really found the object: one confident box on the ground truth
    assert am.boxes and not am.fallback_top1
    assert _iou(am.boxes[0], gt) > 0.6
    assert am.labels[0] == "blob"
    assert am.heat.shape == (96, 96) and am.heat.dtype == np.float32
    assert am.heat.min() >= 0.0 and am.heat.max() == pytest.approx(1.0)
    share = explain.area_share(am.heat.shape, gt)
    assert share == pytest.approx((81 - 52) * (43 - 14) / 96 / 96)
    mass = explain.mass_inside(am.heat, gt)
    assert mass > 2 * share, f"{method}: {mass:.3f} of the map inside a box covering {share:.3f} of the image"
    # the overlay is the image blended with the map, at the image's size
    assert am.image.shape == (96, 96, 3)
    assert not np.array_equal(am.image, np.asarray(Image.open(image).convert("RGB")))


def test_the_property_fails_for_maps_that_know_nothing(rtmdet) -> None:
    gt = rtmdet.boxes[0]
    share = explain.area_share((96, 96), gt)
    rng = np.random.default_rng(0)
    for heat in (rng.random((96, 96), dtype=np.float32), np.ones((96, 96), np.float32)):
        mass = explain.mass_inside(heat, gt)
        assert mass == pytest.approx(share, abs=0.02)
        assert not mass > 2 * share
    # a map that sits on the *other* object fails too
    other = np.zeros((96, 96), np.float32)
    x1, y1, x2, y2 = rtmdet.boxes[1]
    other[y1:y2, x1:x2] = 1
    assert explain.mass_inside(other, gt) == 0.0


def test_grad_methods_differ_from_eigencam(rtm, rtmdet) -> None:
    maps = {m: explain.boxam(rtm, rtmdet.images[0], ["neck.out_convs[1]"], method=m).heat for m in explain.METHODS}
    assert not np.allclose(maps["gradcam"], maps["eigencam"])
    assert not np.allclose(maps["gradcam++"], maps["eigencam"])


@pytest.mark.parametrize("method", explain.METHODS)
def test_boxam_grounding_dino_eval_mode(gdino_ckpt, rtmdet, method: str) -> None:
    gd = explain.load(gdino_ckpt)
    am = explain.boxam(gd, rtmdet.images[0], ["neck"], texts="blob . square", method=method, score_thr=0.99)
    assert not gd.net.training  # explained in eval mode
    assert am.fallback_top1 and len(am.boxes) == 1  # nothing reaches 0.99 on an untrained model: the best box
    assert am.labels[0] in ("blob", "square")
    assert am.heat.shape == (96, 96) and np.isfinite(am.heat).all()
    assert am.heat.max() == pytest.approx(1.0) and am.heat.std() > 0.01


def test_boxam_cli_grounding_dino(gdino_ckpt, rtmdet, tmp_path) -> None:
    out = tmp_path / "am.png"
    proc = run_cli("explain", "boxam", rtmdet.images[0], "--checkpoint", gdino_ckpt, "--texts", "blob . square",
               "--target-layer", "encoder", "--method", "gradcam++", "-o", out, "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["model"] == "GroundingDINO" and summary["boxes explained"] == 1
    assert summary["boxes"][0]["label"] in ("blob", "square")
    with Image.open(out) as im:
        assert im.size == (96, 96)
