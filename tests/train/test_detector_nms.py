"""The pure-PyTorch ``nms`` of the mmcv-lite stand-in equals a brute-force port of mmcv's CPU kernel."""

from __future__ import annotations

import numpy as np
import pytest

import odvgkit_train  # noqa: F401  (registers the stand-in before mmcv.ops is imported)


def reference_nms(boxes: np.ndarray, scores: np.ndarray, order: list[int], thr: float, offset: int) -> list[int]:
    """mmcv's ``nms_cpu`` loop written out with float32 scalars (select by sorted position, ``ovr > thr``)."""
    f = np.float32
    b = boxes.astype(np.float32)
    thr32 = f(thr)
    off = f(offset)
    areas = [(b[i, 2] - b[i, 0] + off) * (b[i, 3] - b[i, 1] + off) for i in range(len(b))]
    select = [True] * len(order)
    for pi in range(len(order)):
        if not select[pi]:
            continue
        i = order[pi]
        for pj in range(pi + 1, len(order)):
            if not select[pj]:
                continue
            j = order[pj]
            w = max(f(0), min(b[i, 2], b[j, 2]) - max(b[i, 0], b[j, 0]) + off)
            h = max(f(0), min(b[i, 3], b[j, 3]) - max(b[i, 1], b[j, 1]) + off)
            inter = f(w * h)
            with np.errstate(invalid="ignore", divide="ignore"):
                ovr = f(inter / f(f(areas[i] + areas[j]) - inter))
            if ovr > thr32:
                select[pj] = False
    return [order[p] for p in range(len(order)) if select[p]]


def _kernel():
    import mmcv._ext as ext

    return ext.nms


def _descending_order(scores: np.ndarray) -> list[int]:
    """Score order: descending; equal scores in the order torch's sort (the kernel's own call) gives them."""
    import torch

    order = torch.from_numpy(scores).sort(0, descending=True)[1].tolist()
    s = scores[order]
    assert all(s[k] >= s[k + 1] for k in range(len(s) - 1))
    assert sorted(order) == list(range(len(scores)))
    return order


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("offset", [0, 1])
def test_random_boxes_with_ties_match_the_kernel_port(seed: int, offset: int) -> None:
    import torch

    rng = np.random.default_rng(seed)
    n = int(rng.integers(150, 260))
    xy = rng.uniform(0, 60, size=(n, 2))
    wh = rng.uniform(0, 30, size=(n, 2))
    wh[rng.random(n) < 0.05] = 0  # empty boxes (NaN IoU with offset 0)
    boxes = np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
    boxes[rng.random(n) < 0.1] = boxes[0]  # exact duplicates
    scores = rng.integers(0, 12, size=n).astype(np.float32) / 12  # many ties
    thr = float(rng.choice([0.3, 0.5, 0.65, 0.7]))
    keep = _kernel()(torch.from_numpy(boxes), torch.from_numpy(scores), iou_threshold=thr, offset=offset)
    assert keep.dtype == torch.int64
    expected = reference_nms(boxes, scores, _descending_order(scores), thr, offset)
    assert keep.tolist() == expected
    assert 0 < len(expected) < n


def test_threshold_is_strictly_greater() -> None:
    import torch

    boxes = torch.tensor([[0, 0, 4, 1], [0, 0, 2, 1], [10, 10, 11, 11]], dtype=torch.float32)  # IoU(0, 1) = 0.5 exactly
    scores = torch.tensor([0.9, 0.8, 0.7])
    assert _kernel()(boxes, scores, iou_threshold=0.5, offset=0).tolist() == [0, 1, 2]
    assert _kernel()(boxes, scores, iou_threshold=0.49, offset=0).tolist() == [0, 2]
    # offset 1: areas 10 and 6, overlap 6 → IoU 0.6
    assert _kernel()(boxes, scores, iou_threshold=0.6, offset=1).tolist() == [0, 1, 2]
    assert _kernel()(boxes, scores, iou_threshold=0.59, offset=1).tolist() == [0, 2]
    empty = _kernel()(torch.zeros((0, 4)), torch.zeros((0,)), iou_threshold=0.5, offset=0)
    assert empty.dtype == torch.int64 and empty.numel() == 0


def test_mmcv_batched_nms_runs_through_the_stand_in() -> None:
    """What RTMDet's ``_bbox_post_process`` calls: per-class NMS, score order, other kernels still refuse."""
    import torch
    from mmcv.ops import batched_nms

    from odvgkit_train._ext_shim import MissingKernelError

    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10], [0, 0, 10, 10], [50, 50, 60, 60]], dtype=torch.float32)
    scores = torch.tensor([0.9, 0.8, 0.7, 0.95])
    labels = torch.tensor([0, 0, 1, 0])
    dets, keep = batched_nms(boxes, scores, labels, dict(type="nms", iou_threshold=0.5))
    assert keep.tolist() == [3, 0, 2]  # box 1 suppressed by box 0 (same class), box 2 is another class
    assert dets[:, -1].tolist() == pytest.approx([0.95, 0.9, 0.7])
    import mmcv._ext as ext

    with pytest.raises(MissingKernelError, match="softnms"):
        ext.softnms(boxes, scores)
