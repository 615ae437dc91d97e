"""Dataset statistics in one streaming pass and bounded memory.

Everything is accumulated in counters and fixed-bin histograms (never per-box lists), so
Objects365 (25M boxes) or GRIT (20M captions) need only a few MB. Integer quantities (boxes per
image, tokens, phrases) are kept exactly; box sizes go into fixed log-spaced bins.

Box size is reported two ways: the COCO area classes (small < 32², medium < 96², large) on
absolute pixels, and the *relative* size ``sqrt(box area / image area)`` which is comparable
across datasets of different resolutions.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from odvgkit.errors import ProblemLog
from odvgkit.io import read_records
from odvgkit.records import box_is_finite, region_boxes

REL_BINS = np.logspace(-3, 0, 61)  # relative box side sqrt(area/image area), 1e-3 .. 1
ABS_BINS = np.logspace(0, math.log10(8192), 53)  # absolute box side sqrt(area) in px, 1 .. 8192
_BATCH = 2048
_MAX_SIZES = 100_000


@dataclass
class Stats:
    records: int = 0
    od_records: int = 0
    vg_records: int = 0
    empty_records: int = 0
    boxes: int = 0
    bad_boxes: int = 0
    categories: Counter[str] = field(default_factory=Counter)  # OD: boxes per class name
    phrases: Counter[str] = field(default_factory=Counter)  # VG: regions per phrase (lower case)
    boxes_per_image: Counter[int] = field(default_factory=Counter)
    rel_hist: np.ndarray = field(default_factory=lambda: np.zeros(len(REL_BINS) - 1, np.int64))
    abs_hist: np.ndarray = field(default_factory=lambda: np.zeros(len(ABS_BINS) - 1, np.int64))
    area_classes: Counter[str] = field(default_factory=Counter)
    caption_chars: Counter[int] = field(default_factory=Counter)
    caption_words: Counter[int] = field(default_factory=Counter)
    phrases_per_caption: Counter[int] = field(default_factory=Counter)
    caption_tokens: Counter[int] = field(default_factory=Counter)
    image_sizes: Counter[tuple[int, int]] = field(default_factory=Counter)
    tokenizer: str | None = None

    @property
    def kind(self) -> str:
        if self.od_records and self.vg_records:
            return "mixed"
        return "vg" if self.vg_records else "od"


def _list(value: Any) -> list[Any]:
    """``instances``/``regions`` when they are a list; anything else (a number, a dict, true) has
    nothing to count — such records are the validator's to report, not a crash here."""
    return value if isinstance(value, list) else []


def _add_boxes(st: Stats, boxes: Iterable[Any], w: float, h: float) -> int:
    n = 0
    sides: list[float] = []
    for b in boxes:
        if not box_is_finite(b):
            st.bad_boxes += 1
            continue
        n += 1
        area = max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])
        sides.append(math.sqrt(area))
        st.area_classes["small" if area < 32**2 else "medium" if area < 96**2 else "large"] += 1
    if sides:
        arr = np.asarray(sides)
        st.abs_hist += np.histogram(np.clip(arr, ABS_BINS[0], ABS_BINS[-1]), ABS_BINS)[0]
        if w > 0 and h > 0:
            rel = np.clip(arr / math.sqrt(w * h), REL_BINS[0], REL_BINS[-1])
            st.rel_hist += np.histogram(rel, REL_BINS)[0]
    return n


def compute(
    path: Path,
    label_map: Mapping[str, str] | None = None,
    problems: ProblemLog | None = None,
    tokenizer: str | None = None,
    count_tokens: bool = True,
    advance: Callable[[int], None] | None = None,
) -> Stats:
    """Statistics of one ODVG file (``label_map`` names the OD classes; else ``category``/label)."""
    st = Stats(tokenizer=tokenizer or "bundled bert-base-uncased")
    pending: list[str] = []
    tok = None
    if count_tokens:
        from odvgkit.tokenizer import load_tokenizer

        tok = load_tokenizer(tokenizer)

    def flush() -> None:
        if tok is not None and pending:
            for enc in tok.encode_batch(pending):
                st.caption_tokens[len(enc.ids)] += 1
        pending.clear()

    for _, rec in read_records(path, problems, on_bytes=advance):
        st.records += 1
        w, h = rec.get("width"), rec.get("height")
        w = w if isinstance(w, (int, float)) else 0
        h = h if isinstance(h, (int, float)) else 0
        size = (int(w), int(h))
        if size in st.image_sizes or len(st.image_sizes) < _MAX_SIZES:  # bounded: GRIT sizes vary a lot
            st.image_sizes[size] += 1
        if isinstance(rec.get("grounding"), dict):
            st.vg_records += 1
            g = rec["grounding"]
            caption = g.get("caption") if isinstance(g.get("caption"), str) else ""
            st.caption_chars[len(caption)] += 1
            st.caption_words[len(caption.split())] += 1
            regions = [r for r in _list(g.get("regions")) if isinstance(r, dict)]
            st.phrases_per_caption[len(regions)] += 1
            n = 0
            for r in regions:
                phrase = r.get("phrase")
                text = " ".join(map(str, phrase)) if isinstance(phrase, list) else str(phrase or "")
                st.phrases[text.strip().lower()] += 1
                n += _add_boxes(st, region_boxes(r), w, h)
            if tok is not None:
                pending.append(caption)
                if len(pending) >= _BATCH:
                    flush()
        elif isinstance(rec.get("detection"), dict):
            st.od_records += 1
            insts = [i for i in _list(rec["detection"].get("instances")) if isinstance(i, dict)]
            for inst in insts:
                lab = inst.get("label")
                name = (label_map or {}).get(str(lab)) or inst.get("category") or str(lab)
                st.categories[str(name)] += 1
            n = _add_boxes(st, (i.get("bbox") for i in insts), w, h)
        else:
            st.empty_records += 1
            n = 0
        st.boxes += n
        st.boxes_per_image[n] += 1
    flush()
    return st


def describe(counter: Counter[int]) -> dict[str, float]:
    """Exact mean / median / p95 / max of an integer distribution."""
    total = sum(counter.values())
    if not total:
        return {"mean": 0.0, "median": 0, "p95": 0, "max": 0}
    keys = sorted(counter)
    mean = sum(k * v for k, v in counter.items()) / total

    def quantile(q: float) -> int:
        target = q * total
        acc = 0
        for k in keys:
            acc += counter[k]
            if acc >= target:
                return k
        return keys[-1]

    return {"mean": round(mean, 3), "median": quantile(0.5), "p95": quantile(0.95), "max": keys[-1]}


def hist_quantile(hist: np.ndarray, bins: np.ndarray, q: float) -> float:
    """Approximate quantile of a binned distribution (geometric bin centre)."""
    total = hist.sum()
    if not total:
        return 0.0
    idx = int(np.searchsorted(np.cumsum(hist), q * total))
    idx = min(idx, len(hist) - 1)
    return float(math.sqrt(bins[idx] * bins[idx + 1]))


def summary(st: Stats, top: int = 20) -> dict[str, Any]:
    """A JSON-able summary (what ``odvgkit stats --json`` prints)."""
    from odvgkit.tokenizer import MAX_TOKENS

    out: dict[str, Any] = {
        "records": st.records,
        "kind": st.kind,
        "od_records": st.od_records,
        "vg_records": st.vg_records,
        "empty_records": st.empty_records,
        "boxes": st.boxes,
        "invalid_boxes": st.bad_boxes,
        "boxes_per_image": describe(st.boxes_per_image),
        "images_without_boxes": st.boxes_per_image.get(0, 0),
        "box_area_classes": {k: st.area_classes.get(k, 0) for k in ("small", "medium", "large")},
        "relative_box_side": {
            "median": round(hist_quantile(st.rel_hist, REL_BINS, 0.5), 4),
            "p05": round(hist_quantile(st.rel_hist, REL_BINS, 0.05), 4),
            "p95": round(hist_quantile(st.rel_hist, REL_BINS, 0.95), 4),
        },
        "distinct_image_sizes": len(st.image_sizes) if len(st.image_sizes) < _MAX_SIZES else f">={_MAX_SIZES}",
    }
    if st.od_records:
        out["categories"] = len(st.categories)
        out["top_categories"] = [{"name": n, "boxes": c} for n, c in _top(st.categories, top)]
        out["rarest_categories"] = [{"name": n, "boxes": c} for n, c in _bottom(st.categories, 10)]
    if st.vg_records:
        out["caption_chars"] = describe(st.caption_chars)
        out["caption_words"] = describe(st.caption_words)
        out["phrases_per_caption"] = describe(st.phrases_per_caption)
        out["distinct_phrases"] = len(st.phrases)
        out["top_phrases"] = [{"phrase": n, "regions": c} for n, c in _top(st.phrases, top)]
        if st.caption_tokens:
            out["caption_tokens"] = describe(st.caption_tokens)
            out["captions_over_token_limit"] = sum(v for k, v in st.caption_tokens.items() if k > MAX_TOKENS)
            out["tokenizer"] = st.tokenizer
    return out


def _top(counter: Counter[str], k: int) -> list[tuple[str, int]]:
    return sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:k]


def _bottom(counter: Counter[str], k: int) -> list[tuple[str, int]]:
    return sorted(counter.items(), key=lambda kv: (kv[1], kv[0]))[:k]
