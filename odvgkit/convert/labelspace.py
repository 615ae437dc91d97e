"""Align a new dataset onto an existing label space (``--label-map EXISTING [--synonyms FILE]``).

Why: two datasets converted separately each get labels ``0..K-1`` of their own, so "raccoon" is
label 0 in one file and "person" is label 0 in the next; trained or evaluated together they would
silently mean different classes. :func:`align_conversion` rewrites a :class:`Conversion` so that its
labels index an existing label map instead:

1. a class whose name is in the existing map takes that label (exact match);
2. else a case-insensitive match (``"Car"`` → ``"car"``; whitespace runs count as one space);
3. else a ``--synonyms`` entry ``{"new name": "existing name"}`` (JSON object) or a two-column
   CSV ``new name,existing name`` (an optional header row ``new,existing`` is skipped);
4. else the class is **appended** after the existing labels (the summary names it) — or, with
   ``--strict``, the conversion is refused before anything is written.

Existing labels never change number or name, so files converted earlier against the same map stay
valid under the aligned map, which is written beside the new records (the existing file is an input
and is never modified): converting datasets one after the other, each aligned onto the previous
map, ends with one map that every file indexes correctly. Records are remapped one by one (``detection.instances[].label`` and ``category``, and
LVIS's per-image ``neg_category_ids``/``not_exhaustive_category_ids``, which are label ids too); the
serialised-JSONL fast path of a conversion is dropped, since its bytes carry the old labels.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from odvgkit.convert.base import Conversion
from odvgkit.errors import OdvgError, ProblemLog
from odvgkit.io import read_label_map

# per-image fields of label ids (lvis2odvg) that must follow the remapping
LABEL_LIST_FIELDS = ("neg_category_ids", "not_exhaustive_category_ids")
_SHOWN = 20  # appended names listed in a summary row before "… (N more)"


@dataclass
class Alignment:
    """How each class of the new dataset found its label in the existing space."""

    existing: Path
    mapping: dict[int, int]  # new dataset's label → aligned label
    label_map: dict[str, str]  # the aligned label map: the existing one + appended classes
    how: dict[str, str] = field(default_factory=dict)  # new name → exact | case-insensitive | synonym | appended
    appended: list[str] = field(default_factory=list)

    def rows(self) -> dict[str, Any]:
        """Summary rows: what was aligned onto what, and which classes are new."""
        shown = ", ".join(self.appended[:_SHOWN])
        if len(self.appended) > _SHOWN:
            shown += f", … ({len(self.appended) - _SHOWN} more)"
        return {"aligned_onto": str(self.existing), "classes_appended": shown or "none"}


@dataclass
class AlignedConversion(Conversion):
    """A :class:`Conversion` whose labels index an existing label map (see :attr:`alignment`)."""

    alignment: Alignment | None = None


def _norm(name: str) -> str:
    return " ".join(name.split()).casefold()


def read_synonyms(path: Path) -> dict[str, str]:
    """``{"new name": "existing name"}`` from a JSON object or a two-column CSV."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise OdvgError(f"{path}: no such synonyms file") from None
    except UnicodeDecodeError as exc:
        raise OdvgError(f"{path}: synonyms file is not UTF-8 text (byte {exc.start})") from None
    if path.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise OdvgError(f"{path}:{exc.lineno}: malformed JSON synonyms: {exc.msg} (column {exc.colno})") from None
        if not isinstance(data, dict):
            raise OdvgError(f'{path}: synonyms must be a JSON object {{"new name": "existing name"}}')
        for key, value in data.items():
            if not isinstance(value, str):
                raise OdvgError(f"{path}: {key!r}: the existing name must be a string, got {type(value).__name__}")
        return dict(data)
    out: dict[str, str] = {}
    for line, row in enumerate(csv.reader(text.splitlines()), 1):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != 2:
            raise OdvgError(f"{path}:{line}: synonyms CSV rows need 2 columns (new name,existing name), got {len(row)}")
        new, old = row[0].strip(), row[1].strip()
        if line == 1 and (new.casefold(), old.casefold()) == ("new", "existing"):
            continue  # header
        if new in out and out[new] != old:
            raise OdvgError(f"{path}:{line}: {new!r} is already a synonym of {out[new]!r}")
        out[new] = old
    return out


def _label_keys(label_map: dict[str, str], path: Path) -> list[int]:
    keys = []
    for key in label_map:
        try:
            keys.append(int(key))
        except ValueError:
            raise OdvgError(f"{path}: label {key!r}: label map keys must be label ids (\"0\", \"1\", …)") from None
    return keys


def align(
    new_map: dict[str, str],
    existing_map: dict[str, str],
    existing: Path,
    *,
    synonyms: dict[str, str] | None = None,
    synonyms_path: Path | None = None,
    strict: bool = False,
) -> Alignment:
    """Match every class of ``new_map`` onto ``existing_map`` (rules in the module docstring)."""
    existing_keys = _label_keys(existing_map, existing)
    by_name: dict[str, int] = {}
    by_norm: dict[str, int] = {}
    for key in sorted(existing_keys):  # lowest label wins when a name repeats
        name = existing_map[str(key)]
        by_name.setdefault(name, key)
        by_norm.setdefault(_norm(name), key)
    syn = dict(synonyms or {})
    syn_norm = {_norm(k): v for k, v in syn.items()}
    for new_name, target in syn.items():
        if target not in by_name and _norm(target) not in by_norm:
            raise OdvgError(f"{synonyms_path or 'synonyms'}: {new_name!r}: {target!r} is not a class of {existing}")
    out = Alignment(existing=existing, mapping={}, label_map={str(k): existing_map[str(k)] for k in sorted(existing_keys)})
    next_label = max(existing_keys, default=-1) + 1
    new_keys = _label_keys(new_map, Path("new label map"))
    for key in sorted(new_keys):
        name = new_map[str(key)]
        if name in by_name:
            out.mapping[key], out.how[name] = by_name[name], "exact"
        elif _norm(name) in by_norm:
            out.mapping[key], out.how[name] = by_norm[_norm(name)], "case-insensitive"
        elif name in syn or _norm(name) in syn_norm:
            target = syn.get(name, syn_norm.get(_norm(name)))
            assert target is not None
            out.mapping[key] = by_name[target] if target in by_name else by_norm[_norm(target)]
            out.how[name] = "synonym"
        else:
            out.appended.append(name)
            out.how[name] = "appended"
            out.mapping[key] = next_label
            out.label_map[str(next_label)] = name
            by_name[name], by_norm[_norm(name)] = next_label, next_label  # a repeat joins it
            next_label += 1
    if strict and out.appended:
        names = ", ".join(repr(n) for n in out.appended[:_SHOWN]) + (" …" if len(out.appended) > _SHOWN else "")
        raise OdvgError(
            f"{existing}: category: {len(out.appended)} class(es) not in the label map (no exact, case-insensitive "
            f"or synonym match): {names}; --strict refuses new classes (add --synonyms, or drop --strict to append them)"
        )
    return out


def align_conversion(
    conv: Conversion, existing: Path, *, synonyms: Path | None, strict: bool, problems: ProblemLog
) -> Conversion:
    """``conv`` with every label moved into the label space of the ``existing`` label map.

    The returned conversion's ``label_map`` is the aligned one (``existing`` plus any appended
    classes); its records are remapped lazily as they are written. Raises :class:`OdvgError` for an
    unreadable map or synonyms file, and under ``strict`` when a class would have to be appended.
    """
    if conv.label_map is None:
        raise OdvgError(f"--label-map {existing}: this conversion writes no label map (grounding data has no labels)", 2)
    existing = Path(existing)
    alignment = align(
        conv.label_map, read_label_map(existing), existing,
        synonyms=read_synonyms(synonyms) if synonyms is not None else None, synonyms_path=synonyms, strict=strict,
    )
    stats = conv.stats
    for how in alignment.how.values():
        stats[f"classes:{how}"] += 1
    return AlignedConversion(
        records=_remap(conv.records, alignment, existing, problems),
        label_map=alignment.label_map,
        stats=stats,
        jsonl_chunks=None,  # the pre-serialised bytes carry the old labels
        total=conv.total,
        alignment=alignment,
    )


def _remap(
    records: Any, alignment: Alignment, existing: Path, problems: ProblemLog
) -> Iterator[dict[str, Any]]:
    mapping, names = alignment.mapping, alignment.label_map
    for n, rec in enumerate(records):
        det = rec.get("detection")
        if isinstance(det, dict):
            instances = det.get("instances") or []
            bad = [i for i, inst in enumerate(instances) if inst.get("label") not in mapping]
            if bad:  # a converter bug or a hand-made record: never guess a label
                i = bad[0]
                problems.error("label-not-in-map", existing, f"record {n}", f"detection.instances[{i}].label",
                               f"label {instances[i].get('label')!r} is not in the dataset's own label map; record skipped")
                continue
            for inst in instances:
                label = mapping[inst["label"]]
                inst["label"] = label
                inst["category"] = names[str(label)]
        for key in LABEL_LIST_FIELDS:
            ids = rec.get(key)
            if isinstance(ids, list):
                rec[key] = [mapping.get(i, i) for i in ids]
        yield rec


@dataclass
class LabelSpaceChoice:
    """Where a converter command writes its label map, and the conversion to write."""

    conversion: Conversion
    path: Path  # the label map written beside the records (the one they index)
    rows: dict[str, Any]


def label_space(
    conv: Conversion, label_map: Path | None, default: Path, *, synonyms: Path | None, strict: bool,
    problems: ProblemLog,
) -> LabelSpaceChoice:
    """The ``--label-map``/``--synonyms`` options of every OD converter, in one place.

    ``--label-map PATH`` naming an existing file aligns the conversion onto it; the aligned map (the
    existing one plus any appended classes) is written to ``default`` beside the records, and the
    existing file is never modified (it is an input). Naming a path that does not exist, it is
    simply where the dataset's own label map is written; absent, ``default`` is.
    """
    if label_map is not None and label_map.exists():
        aligned = align_conversion(conv, label_map, synonyms=synonyms, strict=strict, problems=problems)
        assert isinstance(aligned, AlignedConversion) and aligned.alignment is not None
        return LabelSpaceChoice(aligned, default, aligned.alignment.rows())
    if synonyms is not None:
        raise OdvgError(f"--synonyms {synonyms}: needs --label-map EXISTING (an existing label map to align onto)", 2)
    return LabelSpaceChoice(conv, label_map or default, {})


def default_label_map(output: str | Path) -> Path:
    """``<output stem>_label_map.json`` beside the output (``x_od.jsonl.gz`` → ``x_od_label_map.json``).

    The label map of a dataset without an upstream name is named after its records, so two datasets
    converted into one folder never share (and silently replace) one label-map file.
    """
    p = Path(output)
    name = p.name
    for ext in (".jsonl.gz", ".json.gz", ".jsonl", ".json", ".parquet"):
        if name.endswith(ext):
            name = name[: -len(ext)]
            break
    return p.with_name(name + "_label_map.json")
