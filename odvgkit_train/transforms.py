"""Two text transforms mmdet lacks for finetuning ODVG detection data.

* :class:`ClosedSetPrompt` — closed-set finetuning: every image sees the *same* prompt, all class
  names of the label map in label order (``"person. bicycle. car. "``), with ``tokens_positive``
  per label, so training matches closed-set evaluation. mmdet's ``RandomSamplingNegPos`` instead
  samples a random subset of negatives per image (open-set continued pretraining).
* :class:`KeepLabels` — open-vocabulary finetuning on base classes: drops boxes of other labels
  and removes those names from the label-map text, so novel names are never seen in training.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS


def closed_set_caption(names: list[str]) -> tuple[str, dict[int, list[list[int]]]]:
    """``"a. b. "`` and the character span of each name, by position (mmdet's prompt layout)."""
    caption = ""
    spans: dict[int, list[list[int]]] = {}
    for i, name in enumerate(names):
        clean = " ".join(name.replace("_", " ").split()).lower()
        spans[i] = [[len(caption), len(caption) + len(clean)]]
        caption += clean + ". "
    return caption, spans


@TRANSFORMS.register_module()
class ClosedSetPrompt(BaseTransform):
    """Replace the label-map text of an OD sample by the full class prompt and its spans."""

    def transform(self, results: dict[str, Any]) -> dict[str, Any]:
        text = results["text"]
        if not isinstance(text, dict):  # VG sample: its caption is the prompt (as RandomSamplingNegPos.vg_aug)
            caption = text.lower().strip()
            if not caption.endswith("."):
                caption += ". "
            phrases = results.get("phrases", {})
            labels = np.unique(np.asarray(results["gt_bboxes_labels"], dtype=np.int64)).tolist()
            results["text"] = caption
            results["tokens_positive"] = {int(v): phrases[v]["tokens_positive"] for v in labels}
            return results
        keys = sorted(text, key=int)
        caption, spans = closed_set_caption([text[k] for k in keys])
        position = {int(k): i for i, k in enumerate(keys)}
        labels = np.asarray(results["gt_bboxes_labels"], dtype=np.int64)
        results["gt_bboxes_labels"] = np.asarray([position[int(v)] for v in labels], dtype=np.int64)
        results["text"] = caption
        results["tokens_positive"] = spans
        results["custom_entities"] = True
        return results


@TRANSFORMS.register_module()
class KeepLabels(BaseTransform):
    """Keep only boxes (and label-map names) whose label id is in ``labels``."""

    def __init__(self, labels: list[int]) -> None:
        self.labels = {int(v) for v in labels}

    def transform(self, results: dict[str, Any]) -> dict[str, Any]:
        text = results.get("text")
        if not isinstance(text, dict):
            return results
        labels = np.asarray(results["gt_bboxes_labels"], dtype=np.int64)
        keep = np.asarray([int(v) in self.labels for v in labels], dtype=bool)
        results["gt_bboxes"] = results["gt_bboxes"][keep]
        results["gt_bboxes_labels"] = labels[keep]
        if "gt_ignore_flags" in results:
            results["gt_ignore_flags"] = np.asarray(results["gt_ignore_flags"])[keep]
        results["text"] = {k: v for k, v in text.items() if int(k) in self.labels}
        return results
