"""The box rules the upstream converters share (upstream-converters.md §2), vectorised.

All functions take numpy arrays of COCO ``[x, y, w, h]`` boxes and return boolean masks or new
arrays; the arithmetic is the same IEEE double arithmetic as upstream's Python (``x + w``), so
kept coordinates are bit-identical to upstream's.
"""

from __future__ import annotations

import numpy as np


def overlaps_image(xywh: np.ndarray, width: np.ndarray, height: np.ndarray) -> np.ndarray:
    """Upstream's test: the box shares a non-zero area with the image ``[0, W] x [0, H]``."""
    x, y, w, h = xywh[:, 0], xywh[:, 1], xywh[:, 2], xywh[:, 3]
    inter_w = np.maximum(0.0, np.minimum(x + w, width) - np.maximum(x, 0.0))
    inter_h = np.maximum(0.0, np.minimum(y + h, height) - np.maximum(y, 0.0))
    return inter_w * inter_h != 0


def big_enough(xywh: np.ndarray, area: np.ndarray) -> np.ndarray:
    """``area > 0 and w >= 1 and h >= 1`` (``area`` is the annotation's own field, as upstream)."""
    return (area > 0) & (xywh[:, 2] >= 1) & (xywh[:, 3] >= 1)


def to_xyxy(xywh: np.ndarray) -> np.ndarray:
    out = xywh.copy()
    out[:, 2] = xywh[:, 0] + xywh[:, 2]
    out[:, 3] = xywh[:, 1] + xywh[:, 3]
    return out
