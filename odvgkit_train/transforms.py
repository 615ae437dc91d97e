"""Three text transforms mmdet lacks for finetuning ODVG detection data.

* :class:`ClosedSetPrompt` — closed-set finetuning: every image sees the *same* prompt, all class
  names of the label map in label order (``"person. bicycle. car. "``), with ``tokens_positive``
  per label, so training matches closed-set evaluation. mmdet's ``RandomSamplingNegPos`` instead
  samples a random subset of negatives per image (open-set continued pretraining).
* :class:`KeepLabels` — open-vocabulary finetuning on base classes: drops boxes of other labels
  and removes those names from the label-map text, so novel names are never seen in training.
* :class:`NegPosPrompt` — mmdet's ``RandomSamplingNegPos`` without its duplicate-class bug: mmdet
  compares the label map's *string* keys with the *integer* positive labels, so every positive
  class drawn as a negative (half the samples draw all classes) appears twice in the prompt, only
  its first mention marked positive — the model is taught that the true class name is also a
  negative. Same sampling otherwise, with the same random-number calls.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.datasets.transforms.text_transformers import (
    RandomSamplingNegPos,
    check_for_positive_overflow,
    clean_name,
    generate_senetence_given_labels,
)
from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import BaseBoxes
from mmengine.logging import print_log


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


@TRANSFORMS.register_module()
class NegPosPrompt(RandomSamplingNegPos):
    """Sampled positive + negative class prompt for an OD sample, each class named at most once.

    The draws are mmdet's (``RandomSamplingNegPos.od_aug``, mmdet 3.3): one ``random.random()`` for
    "all classes or a random number of them", a second one mmdet draws and ignores, then
    ``np.random.choice`` of that many label-map keys without replacement, then shuffles of the
    positives and the negatives. The one change: drawn keys are compared as integers with the
    positive labels, so a positive is never also a negative. Negatives keep their draw order
    before the shuffle (mmdet iterates a ``set`` of strings, whose order depends on the process's
    hash seed), so a seeded run prompts the same way every time.
    """

    def od_aug(self, results: dict[str, Any]) -> dict[str, Any]:
        gt_bboxes = results["gt_bboxes"]
        if isinstance(gt_bboxes, BaseBoxes):
            gt_bboxes = gt_bboxes.tensor
        gt_labels = results["gt_bboxes_labels"]
        if "text" in results:
            text = results["text"]
        else:
            assert self.label_map is not None, "no label-map text in the sample and no label_map_file"
            text = self.label_map
        n_boxes = len(gt_labels)
        for key, value in text.items():  # Objects365 'a/b' names: one of them, as mmdet
            if "/" in value:
                text[key] = random.choice(value.split("/")).strip()
        gt_bboxes, gt_labels, positive_length = check_for_positive_overflow(
            gt_bboxes, gt_labels, text, self.tokenizer, self.max_tokens)
        if len(gt_bboxes) < n_boxes:
            print_log(f"removed {n_boxes - len(gt_bboxes)} boxes: their class names overflow the "
                      f"{self.max_tokens}-token prompt", logger="current", level=30)
        keys = list(text.keys())
        positives = np.unique(gt_labels).tolist()
        full = min(self.num_sample_negative, len(keys))
        if random.random() < self.full_sampling_prob:
            n_negative = full
        else:
            random.random()  # mmdet draws a second number here and always takes this branch
            n_negative = int(np.random.choice(max(1, full))) + 1
        n_negative = min(n_negative, len(keys))
        positive_set = {int(v) for v in positives}
        drawn = (int(k) for k in np.random.choice(keys, size=n_negative, replace=False))
        negatives = list(dict.fromkeys(k for k in drawn if k not in positive_set))
        random.shuffle(positives)
        random.shuffle(negatives)
        budget = self.max_tokens - positive_length
        kept = []
        for label in negatives:
            budget -= len(self.tokenizer.tokenize(clean_name(text[str(label)]) + ". "))
            if budget <= 0:
                break
            kept.append(label)
        positions, caption, remap = generate_senetence_given_labels(positives, kept, text)
        if len(gt_labels) > 0:
            gt_labels = np.asarray([remap[int(v)] for v in gt_labels], dtype=np.int64)
        results["gt_bboxes"] = gt_bboxes
        results["gt_bboxes_labels"] = gt_labels
        results["text"] = caption
        results["tokens_positive"] = positions
        return results
