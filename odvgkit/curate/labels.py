"""Label maps across datasets: normalise names, merge maps, remap ids contiguously and back.

Names are what Grounding DINO reads as prompts, so the same thing must be spelled the same way in
every dataset of a mixture. Normalisation styles:

* ``lvis``: LVIS ``bat_(animal)`` → ``bat (animal)`` (underscores to spaces; the parenthesised
  qualifier is kept, because mmdet's ``clean_name`` would otherwise collapse ``bat_(animal)`` and
  ``bat_(sports_equipment)`` into one prompt ``bat``);
* ``o365``: the Objects365 v2 corrections MM-GDINO applies (``objects365_v2_names_fix.csv``:
  e.g. typos and ``/``-joined synonyms), by original name;
* ``lower``: lower case, whitespace collapsed;
* a user table (CSV ``old,new`` or JSON ``{"old": "new"}``).

Merging unions maps by *normalised* name (first map's order first, then new names in order) and
returns, per input, the ``old id → new id`` table. Remapping rewrites record labels through such a
table; a ``mapping`` file written beside the output makes the step reversible (``--reverse``).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator, Mapping
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from odvgkit.errors import OdvgError, ProblemLog
from odvgkit.io import read_records
from odvgkit.io.text import read_text

STYLES = ("lvis", "o365", "lower")


@lru_cache(maxsize=1)
def o365_fixes() -> dict[str, str]:
    """Objects365 v2 ``original name → corrected name`` (bundled table)."""
    text = (resources.files("odvgkit") / "data" / "objects365_v2_names_fix.csv").read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    out: dict[str, str] = {}
    for row in rows:
        if len(row) >= 3 and row[0].strip().isdigit() and row[1] != row[2]:
            out[row[1]] = row[2]
    return out


def normalise(name: str, style: str) -> str:
    if style == "lvis":
        s = name.replace("_", " ")
        s = re.sub(r"\s*\(\s*", " (", s)
        s = re.sub(r"\s*\)", ")", s)
        return re.sub(r"\s+", " ", s).strip()
    if style == "o365":
        return o365_fixes().get(name, name)
    if style == "lower":
        return re.sub(r"\s+", " ", name).strip().lower()
    raise OdvgError(f"--style {style!r}: choose one of {', '.join(STYLES)}")


def read_table(path: Path) -> dict[str, str]:
    """A rename table: CSV rows ``old,new`` (optional header ``old,new``) or JSON ``{old: new}``."""
    text = read_text(path, "rename table")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise OdvgError(f"{path}:{exc.lineno}: malformed JSON: {exc.msg}") from None
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise OdvgError(f"{path}: expected a JSON object {{\"old name\": \"new name\"}}")
        return dict(data)
    out: dict[str, str] = {}
    for i, row in enumerate(csv.reader(io.StringIO(text)), 1):
        if not row or (i == 1 and [c.strip().lower() for c in row[:2]] == ["old", "new"]):
            continue
        if len(row) != 2:
            raise OdvgError(f"{path}:{i}: expected two columns old,new; got {len(row)}")
        out[row[0]] = row[1]
    return out


def rename(label_map: Mapping[str, str], styles: list[str], table: Mapping[str, str] | None = None) -> dict[str, str]:
    """Apply the table (by original name) then each style in order; ids unchanged."""
    out: dict[str, str] = {}
    for key, name in label_map.items():
        new = table.get(name, name) if table else name
        for style in styles:
            new = normalise(new, style)
        out[key] = new
    return out


def duplicates(label_map: Mapping[str, str]) -> list[str]:
    seen: dict[str, str] = {}
    dup = []
    for key, name in label_map.items():
        if name in seen:
            dup.append(f"{name!r} (labels {seen[name]} and {key})")
        else:
            seen[name] = key
    return dup


def merge(maps: list[Mapping[str, str]], styles: list[str] | None = None) -> tuple[dict[str, str], list[dict[int, int]]]:
    """Union of label maps by (normalised) name → ``(merged map, [old id → new id per input])``."""
    merged: dict[str, int] = {}
    names: list[str] = []
    tables: list[dict[int, int]] = []
    for lm in maps:
        table: dict[int, int] = {}
        for key, name in sorted(lm.items(), key=lambda kv: int(kv[0])):
            norm = name
            for style in styles or ():
                norm = normalise(norm, style)
            if norm not in merged:
                merged[norm] = len(names)
                names.append(norm)
            table[int(key)] = merged[norm]
        tables.append(table)
    return {str(i): n for i, n in enumerate(names)}, tables


def contiguous(label_map: Mapping[str, str]) -> tuple[dict[str, str], dict[int, int]]:
    """Sparse ids (LVIS ``norare``) → dense ``0..N-1`` in id order: ``(new map, old → new)``."""
    old = sorted(int(k) for k in label_map)
    table = {o: i for i, o in enumerate(old)}
    return {str(i): label_map[str(o)] for i, o in enumerate(old)}, table


def check_keys(label_map: Mapping[str, str], path: Path) -> None:
    for key in label_map:
        if not re.fullmatch(r"0|[1-9][0-9]*", key):
            raise OdvgError(f"{path}: label {key!r}: keys must be non-negative integers as strings")


def remap_records(
    path: Path,
    table: Mapping[int, int],
    names: Mapping[str, str] | None,
    problems: ProblemLog | None = None,
) -> Iterator[dict[str, Any]]:
    """Records of ``path`` with every ``label`` sent through ``table`` (``category`` renamed too).

    A label missing from the table is a mismatched label map: a one-line error (never a silent
    drop or a guessed id).
    """
    problems = problems if problems is not None else ProblemLog()
    n_records = n_detection = 0
    for line, rec in read_records(path, problems):
        n_records += 1
        det = rec.get("detection")
        if isinstance(det, dict):
            n_detection += 1
            instances = det.get("instances") or []
            if not isinstance(instances, list):
                raise OdvgError(f"{path}:{line}: detection.instances: must be a list, got {type(instances).__name__}")
            for j, inst in enumerate(instances):
                if not isinstance(inst, dict):
                    continue
                lab = inst.get("label")
                if type(lab) is not int:  # 1.7, "3", true: never coerced into some other label
                    raise OdvgError(f"{path}:{line}: detection.instances[{j}].label: must be an integer, got {lab!r}")
                try:
                    new = table[lab]
                except KeyError:
                    raise OdvgError(
                        f"{path}:{line}: detection.instances[{j}].label: {lab!r} is not in the label map "
                        "(mismatched label map)"
                    ) from None
                inst["label"] = new
                if names is not None and "category" in inst:
                    inst["category"] = names[str(new)]
        elif n_detection == 0 and n_records == 1 and "grounding" in rec:
            raise OdvgError(f"{path}:{line}: grounding record: labels remap changes detection labels; "
                            "a VG file has none (phrases are not label ids)")
        else:
            problems.warn("no-detection", path, line, "detection", "no detection block; record copied unchanged")
        yield rec
    if n_records == 0:
        raise OdvgError(f"{path}: no records to remap (empty file?)")


def by_name(source: Mapping[str, str], target: Mapping[str, str], path: Path) -> dict[int, int]:
    """``old id → target id`` matching names exactly; any name missing from the target is an error."""
    index: dict[str, int] = {}
    for k, n in target.items():
        index.setdefault(n, int(k))
    missing = [n for n in source.values() if n not in index]
    if missing:
        more = f" (+{len(missing) - 3} more)" if len(missing) > 3 else ""
        raise OdvgError(
            f"{path}: mismatched label maps: {', '.join(repr(m) for m in missing[:3])}{more} not in the target label map"
        )
    return {int(k): index[n] for k, n in source.items()}


def mapping_document(old: Mapping[str, str], new: Mapping[str, str], table: Mapping[int, int]) -> dict[str, Any]:
    """The reversible record of a remap (``odvgkit labels remap --mapping F --reverse`` reads it)."""
    return {
        "odvgkit_label_mapping": 1,
        "old_to_new": {str(k): v for k, v in sorted(table.items())},
        "old_label_map": dict(old),
        "new_label_map": dict(new),
    }


def read_mapping(path: Path, reverse: bool) -> tuple[dict[int, int], dict[str, str]]:
    """``(table, label map after applying it)`` from a mapping document, optionally reversed."""
    try:
        doc = json.loads(read_text(path, "mapping file"))
    except json.JSONDecodeError as exc:
        raise OdvgError(f"{path}:{exc.lineno}: malformed JSON: {exc.msg}") from None
    if not isinstance(doc, dict) or doc.get("odvgkit_label_mapping") != 1:
        raise OdvgError(f"{path}: not an odvgkit label mapping (written by 'odvgkit labels remap')")
    try:
        fwd = {int(k): int(v) for k, v in doc["old_to_new"].items()}
    except (KeyError, AttributeError, TypeError, ValueError):
        raise OdvgError(f"{path}: old_to_new: must map label ids to label ids") from None
    if not reverse:
        return fwd, dict(doc["new_label_map"])
    back: dict[int, int] = {}
    for o, n in fwd.items():
        if n in back:
            raise OdvgError(f"{path}: label {n} came from several old labels ({back[n]}, {o}): a merge cannot be reversed")
        back[n] = o
    return back, dict(doc["old_label_map"])
