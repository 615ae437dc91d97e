"""A stand-in for ``mmcv._ext`` when only ``mmcv-lite`` is installed.

MMDetection's Grounding DINO imports ``mmcv.ops`` (for ``MultiScaleDeformableAttention``), and
``mmcv.ops`` imports the compiled ``mmcv._ext`` at module level, checking that each kernel name
exists. On the CPU the attention runs mmcv's pure-PyTorch path and never calls a kernel, so a
module that *names* every kernel is enough to import. Calling one raises :class:`MissingKernelError`
with the fix (install full mmcv), instead of a silent wrong answer. The one exception is ``nms``
(called by RTMDet's validation/testing through ``mmcv.ops.batched_nms``): :func:`nms` is a
pure-PyTorch twin of mmcv's CPU kernel with identical results.

Full mmcv, when installed, is always preferred: :func:`install` does nothing then. Nothing is
written to site-packages; the stand-in lives in ``sys.modules`` of the current process (and of
every process that imports :mod:`odvgkit_train.mmcv_compat`, which generated configs list in
``custom_imports``).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import types
from pathlib import Path
from typing import Any

STANDIN_FLAG = "__odvgkit_standin__"


class MissingKernelError(RuntimeError):
    """A compiled mmcv op was called but only mmcv-lite (no kernels) is installed."""


def _kernel(name: str) -> Any:
    def missing(*_args: Any, **_kwargs: Any) -> Any:
        raise MissingKernelError(
            f"mmcv compiled op '{name}' is not available: only mmcv-lite is installed "
            "(odvgkit's stand-in for mmcv._ext). On a GPU install full mmcv: "
            "pip uninstall -y mmcv-lite && pip install 'setuptools<81' && "
            "pip install --no-build-isolation 'mmcv==2.1.0' (see docs/train.md)"
        )

    missing.__name__ = name
    return missing


class _StandIn(types.ModuleType):
    """Module whose every public attribute is a kernel that raises when called."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        fn = _kernel(name)
        setattr(self, name, fn)
        return fn


def nms(bboxes: Any, scores: Any, iou_threshold: float = 0.5, offset: int = 0) -> Any:
    """Pure-PyTorch twin of mmcv's CPU ``nms`` kernel (``mmcv/ops/csrc/pytorch/cpu/nms.cpp``).

    RTMDet's test/validation path calls ``mmcv.ops.batched_nms``, which looks ``nms`` up in
    ``mmcv._ext`` at call time; training never does. This reproduces the kernel's semantics exactly
    so results equal full mmcv's on the CPU:

    * order = ``scores.sort(0, descending=True)`` — the very call the kernel makes, so equal scores
      come out in the same (torch-defined) order;
    * float32 arithmetic throughout, ``area = (x2 - x1 + offset) * (y2 - y1 + offset)``, overlap
      ``w = max(0, min(x2) - max(x1) + offset)``, ``iou = inter / (area_i + area_j - inter)``;
    * a box is suppressed when ``iou > iou_threshold`` (strictly greater; the threshold is a C
      ``float``), only by boxes that were themselves kept; a NaN IoU (two empty boxes) suppresses
      nothing;
    * returns the kept indices (int64) in score order.

    Greedy, vectorised per kept box: O(n·k) time, O(n) memory.
    """
    import torch

    if bboxes.numel() == 0:
        return torch.empty((0,), dtype=torch.long, device=bboxes.device)
    device = bboxes.device  # computed on the CPU (a per-box loop), indices returned where the boxes were
    boxes = bboxes.detach().to("cpu", torch.float32)
    scores = scores.detach().to("cpu")
    x1, y1, x2, y2 = (boxes[:, i].contiguous() for i in range(4))
    off = torch.tensor(float(offset), dtype=torch.float32)
    areas = (x2 - x1 + off) * (y2 - y1 + off)
    order = scores.detach().sort(0, descending=True)[1]
    thr = torch.tensor(iou_threshold, dtype=torch.float32)
    zero = torch.tensor(0.0, dtype=torch.float32)
    alive = torch.ones(order.numel(), dtype=torch.bool)
    ox1, oy1, ox2, oy2, oarea = x1[order], y1[order], x2[order], y2[order], areas[order]
    n = order.numel()
    for pos in range(n):
        if not alive[pos]:
            continue
        rest = slice(pos + 1, n)
        w = torch.maximum(zero, torch.minimum(ox2[pos], ox2[rest]) - torch.maximum(ox1[pos], ox1[rest]) + off)
        h = torch.maximum(zero, torch.minimum(oy2[pos], oy2[rest]) - torch.maximum(oy1[pos], oy1[rest]) + off)
        inter = w * h
        iou = inter / (oarea[pos] + oarea[rest] - inter)
        alive[rest] &= ~(iou > thr)
    return order[alive].to(device)


def has_compiled_ops() -> bool:
    """True when a real ``mmcv._ext`` (full mmcv) exists; looks at files, never imports mmcv."""
    mod = sys.modules.get("mmcv._ext")
    if mod is not None:
        return not getattr(mod, STANDIN_FLAG, False)
    spec = importlib.util.find_spec("mmcv")
    if spec is None or not spec.submodule_search_locations:
        return False
    return any(any(Path(d).glob("_ext.*")) or (Path(d) / "_ext").is_dir() for d in spec.submodule_search_locations)


def install() -> bool:
    """Register the stand-in unless real kernels exist; return True when the stand-in is in use."""
    existing = sys.modules.get("mmcv._ext")
    if existing is not None:
        return bool(getattr(existing, STANDIN_FLAG, False))
    if importlib.util.find_spec("mmcv") is None:
        return False
    if has_compiled_ops():
        return False
    module = _StandIn("mmcv._ext", "odvgkit stand-in for mmcv's compiled ops (mmcv-lite installed)")
    setattr(module, STANDIN_FLAG, True)
    module.nms = nms  # the one kernel RTMDet's test path needs on the CPU (pure PyTorch, same results)
    # a spec without a loader: importlib is satisfied, and mmengine's mmcv_full_available() is False
    module.__spec__ = importlib.machinery.ModuleSpec("mmcv._ext", loader=None)
    sys.modules["mmcv._ext"] = module
    return True
