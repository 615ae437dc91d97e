"""Build the unlabeled round-0 ODVG file: image sizes from headers, classes or captions.

OD: every image gets ``detection.instances = []`` and the classes go to a label map.
VG: every image gets its caption and one region per phrase with the placeholder box
``[0, 0, 1, 1]`` (the seed workflow's "to be grounded" marker); phrases come from explicit
``tokens_positive`` spans, from a ``phrases`` list (located in the caption left to right), or from
:func:`noun_phrases`, an offline heuristic (no NLTK data).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from odvgkit.errors import OdvgError
from odvgkit.images import image_sizes
from odvgkit.io.text import read_text

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
PLACEHOLDER_BOX = [0.0, 0.0, 1.0, 1.0]

# Words that end a noun phrase: articles, determiners, pronouns, prepositions, conjunctions,
# auxiliaries and a few very common verbs. Anything else is taken as part of a noun phrase.
_BREAK_WORDS = """a an the this that these those some any each every no another other such
    i you he she it we they me him her us them my your his its our their mine yours
    of in on at by for with without from to into onto over under above below behind beside
    besides between among near through across along around against toward towards upon
    within about after before during off out up down while where when who whom whose which
    and or but nor so yet as than then there here if because although though
    is are was were be been being am has have had do does did will would can could
    shall should may might must not very too also just
    holding holds hold sitting sits sit standing stands stand looking looks look wearing wears
    wear riding rides ride walking walks walk playing plays play eating eats eat lying lies
    next front top bottom left right"""
_BREAK = frozenset(_BREAK_WORDS.split())
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'\-]*")


def parse_classes(text: str) -> list[str]:
    """``'cat, dog'`` or ``'cat . dog'`` → ``['cat', 'dog']`` (order kept, duplicates refused)."""
    sep = "," if "," in text else "."
    names = [n.strip() for n in text.split(sep) if n.strip()]
    if not names:
        raise OdvgError("--classes: no class names given (e.g. --classes 'cat, dog')", 2)
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise OdvgError(f"--classes: duplicate class names: {', '.join(dupes)}", 2)
    return names


def list_images(folder: Path) -> list[Path]:
    """All images under ``folder`` (recursive), sorted by relative path; an empty folder is an error."""
    if not folder.is_dir():
        raise OdvgError(f"--images {folder}: not a directory")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTS)
    if not files:
        raise OdvgError(f"--images {folder}: no images ({', '.join(IMAGE_EXTS)}) found")
    return files


def measure(folder: Path, files: Iterable[Path]) -> list[dict[str, Any]]:
    """``{filename, height, width}`` per image (relative POSIX path); unreadable header → error."""
    out = []
    for path, size, err in image_sizes(list(files)):
        if size is None:
            raise OdvgError(err or f"{path}: unreadable image")
        w, h = size
        out.append({"filename": path.relative_to(folder).as_posix(), "height": h, "width": w})
    return out


def od_records(folder: Path) -> list[dict[str, Any]]:
    return [{**base, "detection": {"instances": []}} for base in measure(folder, list_images(folder))]


def noun_phrases(caption: str) -> list[list[int]]:
    """Character spans ``[start, end)`` of maximal runs of words that are not in the break list.

    The heuristic: split the caption at punctuation and at function words (articles, pronouns,
    prepositions, conjunctions, auxiliaries, common verbs); each remaining run of words is a noun
    phrase ("a man holding a red umbrella" → "man", "red umbrella"). Runs of only digits are
    dropped. Crude, deterministic and offline; give ``tokens_positive`` or ``phrases`` when it
    matters.
    """
    spans: list[list[int]] = []
    start = end = None
    last = 0
    for m in _WORD.finditer(caption):
        gap = caption[last:m.start()]
        word = m.group().lower()
        breaks = word in _BREAK or (start is not None and gap.strip() != "")
        if breaks and start is not None:
            spans.append([start, end])
            start = None
        if word not in _BREAK:
            if start is None:
                start = m.start()
            end = m.end()
        last = m.end()
    if start is not None:
        spans.append([start, end])
    return [s for s in spans if not caption[s[0]:s[1]].isdigit()]


def _locate(caption: str, phrases: list[str], where: str) -> list[list[list[int]]]:
    out, pos = [], 0
    for ph in phrases:
        i = caption.find(ph, pos)
        if i < 0:
            i = caption.find(ph)
        if i < 0 or not ph:
            raise OdvgError(f"{where}: phrases: {ph!r} is not in the caption {caption!r}")
        out.append([[i, i + len(ph)]])
        pos = i + len(ph)
    return out


def _check_spans(caption: str, spans: Any, where: str) -> list[list[list[int]]]:
    ok = isinstance(spans, list) and all(
        isinstance(p, list) and p and all(
            isinstance(s, list) and len(s) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in s)
            for s in p) for p in spans)
    if not ok:
        raise OdvgError(f"{where}: tokens_positive: expected a list (per phrase) of [start, end] spans")
    for p in spans:
        for s, e in p:
            if not 0 <= s < e <= len(caption):
                raise OdvgError(f"{where}: tokens_positive: span [{s}, {e}] is outside the caption ({len(caption)} characters)")
    return spans


def read_captions(path: Path) -> list[dict[str, Any]]:
    """Caption entries from JSON Lines (``filename``, ``caption``, optional ``tokens_positive`` or
    ``phrases``) or a TSV (``filename<TAB>caption``)."""
    if not path.is_file():
        raise OdvgError(f"--captions {path}: no such file")
    entries = []
    for lineno, line in enumerate(read_text(path, "captions file").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        if path.suffix.lower() in (".tsv", ".txt"):
            if "\t" not in line:
                raise OdvgError(f"{where}: expected 'filename<TAB>caption'")
            name, caption = line.split("\t", 1)
            entry: dict[str, Any] = {"filename": name.strip(), "caption": caption.strip()}
        else:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as exc:
                raise OdvgError(f"{where}: malformed JSON: {exc.msg}") from None
            if not isinstance(entry, dict):
                raise OdvgError(f"{where}: expected a JSON object")
        for key in ("filename", "caption"):
            if not isinstance(entry.get(key), str) or not entry[key]:
                raise OdvgError(f"{where}: {key}: missing or not a non-empty string")
        entry["_where"] = where
        entries.append(entry)
    if not entries:
        raise OdvgError(f"--captions {path}: no captions")
    return entries


def vg_record(base: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    caption, where = entry["caption"], entry["_where"]
    if "tokens_positive" in entry:
        spans = _check_spans(caption, entry["tokens_positive"], where)
    elif "phrases" in entry:
        phrases = entry["phrases"]
        if not isinstance(phrases, list) or not all(isinstance(p, str) for p in phrases):
            raise OdvgError(f"{where}: phrases: expected a list of strings")
        spans = _locate(caption, phrases, where)
    else:
        spans = [[s] for s in noun_phrases(caption)]
    if not spans:
        raise OdvgError(f"{where}: caption: no phrase found in {caption!r}; give 'phrases' or 'tokens_positive'")
    regions = [
        {"bbox": list(PLACEHOLDER_BOX), "phrase": " ".join(caption[s:e] for s, e in p), "tokens_positive": p}
        for p in spans
    ]
    return {**base, "grounding": {"caption": caption, "regions": regions}}


def vg_records(folder: Path, captions: Path) -> list[dict[str, Any]]:
    """One VG record per caption entry, in caption-file order (an image may have several captions)."""
    if not folder.is_dir():
        raise OdvgError(f"--images {folder}: not a directory")
    entries = read_captions(captions)
    files = []
    for e in entries:
        p = folder / e["filename"]
        if not p.is_file():
            raise OdvgError(f"{e['_where']}: filename: image {p} not found")
        files.append(p)
    bases = measure(folder, files)
    return [vg_record(b, e) for b, e in zip(bases, entries, strict=True)]


def label_map_path(records_path: str | Path) -> Path:
    """The label map beside an OD records file: ``round0.jsonl`` → ``round0_label_map.json``."""
    p = Path(records_path)
    name = p.name
    for ext in (".jsonl.gz", ".json.gz", ".jsonl", ".json", ".parquet"):
        if name.endswith(ext):
            name = name[: -len(ext)]
            break
    return p.with_name(f"{name}_label_map.json")
