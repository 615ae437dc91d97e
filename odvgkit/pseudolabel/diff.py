"""Compare two label files of the same images: boxes added, removed, moved; score shifts.

Matching rule (documented in docs/pseudolabel.md): records are paired by ``filename`` (first
occurrence wins; streamed, see :func:`_pairs`). Within one image, boxes are grouped by *key* — the class name for OD (``category``,
else the label-map name, else ``label <id>``) and the phrase text for VG. In each group every pair
(a, b) with IoU ≥ ``match_iou`` is a candidate; candidates are taken greedily by IoU descending (ties:
index in A, then index in B, boxes in file order) and a pair is matched when neither box is matched
yet. Unmatched boxes of A are *removed*, of B *added*. A matched pair is *unchanged* when IoU ≥
``same_iou`` and *moved* otherwise. Score shift = score(B) − score(A) over matched pairs that both
carry a score.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from odvgkit.pseudolabel.label import iou
from odvgkit.records import box_is_finite, items_of, region_boxes

Box = list[float]


@dataclass
class KeyStats:
    key: str
    a: int = 0
    b: int = 0
    added: int = 0
    removed: int = 0
    moved: int = 0
    unchanged: int = 0
    iou_sum: float = 0.0
    shift_sum: float = 0.0
    shift_n: int = 0

    def row(self) -> dict[str, Any]:
        matched = self.moved + self.unchanged
        return {
            "key": self.key, "a": self.a, "b": self.b, "added": self.added, "removed": self.removed,
            "moved": self.moved, "unchanged": self.unchanged,
            "mean_iou": round(self.iou_sum / matched, 6) if matched else None,
            "mean_score_shift": round(self.shift_sum / self.shift_n, 6) if self.shift_n else None,
        }


@dataclass
class DiffResult:
    images_a: int = 0
    images_b: int = 0
    images_common: int = 0
    only_a: int = 0
    only_b: int = 0
    per_key: dict[str, KeyStats] = field(default_factory=dict)

    def totals(self) -> dict[str, Any]:
        t = KeyStats("total")
        for s in self.per_key.values():
            for f in ("a", "b", "added", "removed", "moved", "unchanged", "shift_n"):
                setattr(t, f, getattr(t, f) + getattr(s, f))
            t.iou_sum += s.iou_sum
            t.shift_sum += s.shift_sum
        return t.row()

    def as_dict(self) -> dict[str, Any]:
        return {
            "images_a": self.images_a, "images_b": self.images_b, "images_common": self.images_common,
            "images_only_a": self.only_a, "images_only_b": self.only_b,
            "total": self.totals(),
            "per_key": [self.per_key[k].row() for k in sorted(self.per_key)],
        }


def boxes_by_key(rec: dict[str, Any], names: dict[str, str] | None = None) -> dict[str, list[tuple[Box, float | None]]]:
    """``{key: [(box, score), ...]}`` of one record, boxes in file order."""
    out: dict[str, list[tuple[Box, float | None]]] = {}
    det, gnd = rec.get("detection"), rec.get("grounding")
    for inst in items_of(det.get("instances")) if isinstance(det, dict) else ():
        if not isinstance(inst, dict) or not box_is_finite(inst.get("bbox")):
            continue  # a malformed box cannot be matched (validate reports it)
        label = inst.get("label")
        key = inst.get("category") or (names or {}).get(str(label)) or f"label {label}"
        out.setdefault(str(key), []).append((inst["bbox"], inst.get("score")))
    for reg in items_of(gnd.get("regions")) if isinstance(gnd, dict) else ():
        if not isinstance(reg, dict):
            continue
        phrase = reg.get("phrase")
        key = " ".join(map(str, phrase)) if isinstance(phrase, list) else str(phrase)
        boxes = region_boxes(reg)
        score = reg.get("score")
        scores = score if isinstance(score, list) else [score] * len(boxes)
        for box, s in zip(boxes, scores, strict=False):
            if box_is_finite(box):
                out.setdefault(key, []).append((box, s))
    return out


def match(a: list[Box], b: list[Box], match_iou: float) -> list[tuple[int, int, float]]:
    """Greedy IoU matching: ``(i, j, iou)`` pairs, highest IoU first (see the module docstring)."""
    cands = [(iou(x, y), i, j) for i, x in enumerate(a) for j, y in enumerate(b)]
    cands = [c for c in cands if c[0] >= match_iou and c[0] > 0]
    cands.sort(key=lambda c: (-c[0], c[1], c[2]))
    used_a: set[int] = set()
    used_b: set[int] = set()
    pairs = []
    for v, i, j in cands:
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            pairs.append((i, j, v))
    return pairs


def _pairs(a: Iterable[dict[str, Any]], b: Iterable[dict[str, Any]]) -> Iterator[tuple[dict[str, Any] | None, dict[str, Any] | None]]:
    """``(record_a | None, record_b | None)`` per filename, streaming.

    Files written in the same order (every round of a loop is) are paired in lockstep with O(1)
    memory; records out of order wait in a dict until their partner arrives. Only the first record
    of a filename counts; the filenames seen are remembered to skip later duplicates.
    """
    pend_a: dict[str, dict[str, Any]] = {}
    pend_b: dict[str, dict[str, Any]] = {}
    seen_a: set[str] = set()
    seen_b: set[str] = set()
    ita, itb = iter(a), iter(b)
    done_a = done_b = False
    while not (done_a and done_b):
        ra = rb = None
        if not done_a:
            ra = next(ita, None)
            done_a = ra is None
        if not done_b:
            rb = next(itb, None)
            done_b = rb is None
        if ra is not None:
            name = str(ra.get("filename"))
            if name not in seen_a:
                seen_a.add(name)
                if name in pend_b:
                    yield ra, pend_b.pop(name)
                else:
                    pend_a[name] = ra
        if rb is not None:
            name = str(rb.get("filename"))
            if name not in seen_b:
                seen_b.add(name)
                if name in pend_a:
                    yield pend_a.pop(name), rb
                else:
                    pend_b[name] = rb
    for name in sorted(pend_a):
        yield pend_a[name], None
    for name in sorted(pend_b):
        yield None, pend_b[name]


def diff_records(a: Iterable[dict[str, Any]], b: Iterable[dict[str, Any]], *, match_iou: float = 0.5,
                 same_iou: float = 0.95, names_a: dict[str, str] | None = None,
                 names_b: dict[str, str] | None = None) -> DiffResult:
    """Per-key box changes from ``a`` to ``b`` (see the module docstring for the rule)."""
    res = DiffResult()
    empty: dict[str, Any] = {}
    for ra, rb in _pairs(a, b):
        if ra is not None and rb is not None:
            res.images_common += 1
        elif ra is not None:
            res.only_a += 1
        else:
            res.only_b += 1
        res.images_a += ra is not None
        res.images_b += rb is not None
        ka = boxes_by_key(ra or empty, names_a)
        kb = boxes_by_key(rb or empty, names_b)
        for key in sorted(set(ka) | set(kb)):
            st = res.per_key.setdefault(key, KeyStats(key))
            xa, xb = ka.get(key, []), kb.get(key, [])
            st.a += len(xa)
            st.b += len(xb)
            pairs = match([x[0] for x in xa], [x[0] for x in xb], match_iou)
            st.removed += len(xa) - len(pairs)
            st.added += len(xb) - len(pairs)
            for i, j, v in pairs:
                st.iou_sum += v
                if v >= same_iou:
                    st.unchanged += 1
                else:
                    st.moved += 1
                sa, sb = xa[i][1], xb[j][1]
                if sa is not None and sb is not None:
                    st.shift_sum += sb - sa
                    st.shift_n += 1
    return res
