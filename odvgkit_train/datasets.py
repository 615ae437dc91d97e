"""``MixtureSampledDataset``: draw an exact number of records per epoch from one source.

A mixture manifest (``odvgkit mix``) resolves every source to ``samples_per_epoch``; MMDetection
only has integer ``RepeatDataset`` and first-N ``indices``, which bias the mix. This wrapper draws
the counts with the manifest's own sampler (``odvgkit.curate.mix.epoch_counts``: seeded
systematic sampling, every record ``floor`` or ``ceil`` of its expected count, LVIS repeat factors
with a class-balanced threshold) and exposes the repeated index list. Counts are drawn once per
run (epoch 0): the mixture proportions are exact, the choice of repeated records is fixed.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from mmdet.registry import DATASETS


def _counts(n: int, samples: int, seed: int, name: str, weights: list[float] | None) -> list[int]:
    try:
        from odvgkit.curate.mix import epoch_counts
    except ImportError:  # curation module absent: plain seeded systematic sampling
        rng = np.random.default_rng(seed)
        w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
        expected = samples * w / w.sum()
        perm = rng.permutation(n)
        edges = np.concatenate([[0.0], np.cumsum(expected[perm])])
        edges[-1] = samples
        hits = np.searchsorted(edges, rng.random() + np.arange(samples), side="right") - 1
        counts = np.empty(n, dtype=np.int64)
        counts[perm] = np.bincount(np.clip(hits, 0, n - 1), minlength=n)
        return counts.tolist()
    return epoch_counts(n, samples, seed, name, 0, weights)


def repeat_factors(label_sets: list[set[int]], threshold: float) -> list[float]:
    """LVIS repeat factor per record: ``max over its labels of max(1, sqrt(t / f_c))``."""
    n = max(1, len(label_sets))
    freq: dict[int, int] = {}
    for labels in label_sets:
        for c in labels:
            freq[c] = freq.get(c, 0) + 1
    return [max((max(1.0, math.sqrt(threshold / (freq[c] / n))) for c in labels), default=1.0) for labels in label_sets]


def repeat_factors_csr(indptr: np.ndarray, labels: np.ndarray, threshold: float) -> np.ndarray:
    """:func:`repeat_factors` over a CSR of distinct labels per record, bit for bit, without a loop.

    ``labels[indptr[i]:indptr[i+1]]`` are record ``i``'s distinct labels (an indexed dataset's
    ``label_csr()``); the same IEEE operations in the same order give the same floats.
    """
    n_rec = len(indptr) - 1
    n = max(1, n_rec)
    out = np.ones(n_rec, dtype=np.float64)
    if not labels.size:
        return out
    low = int(labels.min())
    span = int(labels.max()) - low + 1
    if span <= 4 * labels.size + 1024:  # label ids are dense class indices: count them directly
        freq = np.bincount(labels - low if low else labels, minlength=span).astype(np.float64)
        codes = None
    else:  # sparse ids: compress them first
        classes, codes = np.unique(labels, return_inverse=True)
        freq = np.bincount(codes, minlength=classes.size).astype(np.float64)
        low = 0
    with np.errstate(divide="ignore"):
        per_class = np.maximum(1.0, np.sqrt(threshold / (freq / n)))  # unused classes: inf, never looked up
    sizes = np.diff(indptr)
    step = 1 << 20  # records per chunk: bounded temporaries at any scale
    for start in range(0, n_rec, step):
        stop = min(start + step, n_rec)
        lo, hi = int(indptr[start]), int(indptr[stop])
        part = labels[lo:hi] if codes is None else codes[lo:hi]
        per_label = per_class[part - low if low and codes is None else part]
        nonempty = np.flatnonzero(sizes[start:stop] > 0)
        if nonempty.size:
            out[start + nonempty] = np.maximum.reduceat(per_label, (indptr[start:stop][nonempty] - lo).astype(np.intp))
    return out
    classes, inverse = np.unique(labels, return_inverse=True)
    freq = np.bincount(inverse, minlength=classes.size).astype(np.float64)
    per_class = np.maximum(1.0, np.sqrt(threshold / (freq / n)))
    per_label = per_class[inverse]
    sizes = np.diff(indptr)
    nonempty = np.flatnonzero(sizes > 0)
    out[nonempty] = np.maximum.reduceat(per_label, indptr[:-1][nonempty])
    return out


@DATASETS.register_module()
class MixtureSampledDataset:
    """``samples`` records of ``dataset`` per epoch, drawn as the mixture manifest specifies."""

    def __init__(self, dataset: Any, samples: int, seed: int = 0, name: str = "source",
                 class_balanced_threshold: float | None = None, lazy_init: bool = False) -> None:
        self.dataset = DATASETS.build(dataset) if isinstance(dataset, dict) else dataset
        self.samples = int(samples)
        self.seed = seed
        self.name = name
        self.threshold = class_balanced_threshold
        self._fully_initialized = False
        self.indices: Any = []
        if not lazy_init:
            self.full_init()

    @property
    def metainfo(self) -> dict[str, Any]:
        return self.dataset.metainfo

    def full_init(self) -> None:
        if self._fully_initialized:
            return
        self.dataset.full_init()
        n = len(self.dataset)
        weights: Any = None
        if self.threshold is not None:
            if hasattr(self.dataset, "label_csr"):  # indexed dataset: from the index columns, no record decoded
                weights = repeat_factors_csr(*self.dataset.label_csr(), self.threshold)
            else:
                weights = repeat_factors([set(self.dataset.get_cat_ids(i)) for i in range(n)], self.threshold)
        counts = _counts(n, self.samples, self.seed, self.name, weights) if n else []
        self.indices = np.repeat(np.arange(n, dtype=np.int64), np.asarray(counts, dtype=np.int64)) if n else np.zeros(0, np.int64)
        self._fully_initialized = True

    def get_data_info(self, idx: int) -> dict[str, Any]:
        return self.dataset.get_data_info(int(self.indices[idx]))

    def __getitem__(self, idx: int) -> Any:
        return self.dataset[int(self.indices[idx])]

    def __len__(self) -> int:
        return len(self.indices)
