"""Deterministic subsets and train/val splits of ODVG files, streamed in bounded memory.

**Sampling** (``-n N``): a first pass counts the records, ``random.Random(seed).sample`` picks N
record indices, a second pass writes them **in file order** (so the subset keeps the input's
locality and the same seed always gives the same bytes). ``-n -1`` means every record (upstream
``split_odvg.py`` writes N−1 records for it).

**Stratified split** (``--ratio R`` on OD files) — "rarest-label" stratification for multi-label
images:

1. count, for every label, the number of selected images that contain it;
2. give every image the *stratum* of its rarest label (fewest images; ties → smaller label id);
   images without boxes form their own stratum;
3. inside each stratum, shuffle with ``Random(f"{seed}:{stratum}")`` and put
   ``floor(n_s·(1−R))`` images into val;
4. the remaining val places (to reach ``round(N·(1−R))`` overall) go to the strata with the
   largest fractional remainders (ties → stratum order), one each.

Every class that appears in ≥ 2 images is thereby present in val proportionally to its rarest
occurrences, which plain random splitting does not guarantee for rare LVIS/O365 classes. VG files
(no labels) are split uniformly at random with the same largest-remainder count.
"""

from __future__ import annotations

import math
import random
from array import array
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from odvgkit.errors import OdvgError, ProblemLog
from odvgkit.io import read_records
from odvgkit.records import items_of

NO_LABEL = -1


def record_labels(rec: dict[str, Any]) -> set[int]:
    """The distinct integer labels of an OD record (empty for VG / empty records)."""
    det = rec.get("detection")
    if not isinstance(det, dict):
        return set()
    out: set[int] = set()
    for inst in items_of(det.get("instances")):
        if isinstance(inst, dict):
            lab = inst.get("label")
            if isinstance(lab, int) and not isinstance(lab, bool):
                out.add(lab)
            elif isinstance(lab, str) and lab.isdigit():
                out.add(int(lab))
    return out




def sample_indices(total: int, n: int, seed: int) -> list[int]:
    """``n`` distinct indices of ``range(total)`` in ascending order (``n = -1``: all)."""
    if n == -1 or n >= total:
        return list(range(total))
    if n < 0:
        raise OdvgError(f"-n {n}: give a positive count, or -1 for every record")
    return sorted(random.Random(seed).sample(range(total), n))


def stratify(strata: list[int], ratio: float, seed: int) -> set[int]:
    """Positions (into ``strata``) that go to val, per the module's algorithm."""
    if not 0.0 < ratio < 1.0:
        raise OdvgError(f"--ratio {ratio}: must be between 0 and 1 (the train fraction, e.g. 0.9)")
    groups: dict[int, list[int]] = {}
    for pos, s in enumerate(strata):
        groups.setdefault(s, []).append(pos)
    val_frac = 1.0 - ratio
    target = round(len(strata) * val_frac)
    quotas: dict[int, int] = {}
    remainders: list[tuple[float, int]] = []
    for s in sorted(groups):
        exact = len(groups[s]) * val_frac
        quotas[s] = math.floor(exact)
        remainders.append((exact - quotas[s], s))
    missing = target - sum(quotas.values())
    remainders.sort(key=lambda t: (-t[0], t[1]))
    for _, s in remainders[: max(0, missing)]:
        quotas[s] += 1
    val: set[int] = set()
    for s in sorted(groups):
        members = list(groups[s])
        random.Random(f"{seed}:{s}").shuffle(members)
        val.update(members[: quotas[s]])
    return val


def rarest_strata(label_sets: Iterable[Iterable[int]]) -> list[int]:
    """Stratum (rarest label, or :data:`NO_LABEL`) of every image."""
    sets = [tuple(sorted(set(ls))) for ls in label_sets]
    freq: Counter[int] = Counter(lab for s in sets for lab in s)
    return [min(s, key=lambda lab: (freq[lab], lab)) if s else NO_LABEL for s in sets]


def plan_split(
    path: Path,
    n: int | None,
    ratio: float | None,
    seed: int,
    problems: ProblemLog | None = None,
) -> tuple[list[int], set[int], int, str]:
    """Which records go where: ``(selected line numbers, val line numbers, total, method)``.

    Memory: one int per record (line numbers) plus, for a stratified split, one small label tuple
    per *selected* record.
    """
    lines = array("q", (line for line, _ in read_records(path, problems)))
    total = len(lines)
    chosen = sample_indices(total, -1 if n is None else n, seed)
    selected = [lines[i] for i in chosen]
    if ratio is None:
        return selected, set(), total, "sample"
    want = set(selected)
    label_sets: list[tuple[int, ...]] = []
    kinds: Counter[str] = Counter()
    for line, rec in read_records(path, problems):
        if line in want:
            label_sets.append(tuple(record_labels(rec)))
            kinds["od" if "detection" in rec else "vg" if "grounding" in rec else "none"] += 1
    stratified = kinds["od"] > 0 and kinds["vg"] == 0
    strata = rarest_strata(label_sets) if stratified else [0] * len(selected)
    val_pos = stratify(strata, ratio, seed)
    return selected, {selected[p] for p in val_pos}, total, "stratified" if stratified else "random"
