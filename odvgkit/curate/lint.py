"""Grounding-specific checks: what the BERT tokenizer and MMDetection's text pipeline will do.

``odvgkit validate`` checks the schema and boxes; lint checks what silently goes wrong *later*,
when MM-Grounding-DINO turns text into tokens (``mmdet/datasets/transforms/text_transformers.py``
and ``create_positive_map``):

VG records (caption as mmdet sees it: ``caption.lower().strip()`` plus ``". "``):

================================ ======== ===========================================================
code                             severity  meaning
================================ ======== ===========================================================
``caption-too-long``             warning  more than 256 BERT tokens: the tail is truncated
``span-out-of-range``            error    ``tokens_positive`` span outside the caption or empty
``span-no-tokens``               error    the span maps to no token (whitespace / stripped chars):
                                          ``create_positive_map`` skips it, the box gets no text
``span-truncated``               warning  the span lies beyond the 256-token limit (same effect)
``phrase-not-in-caption``        warning  the phrase text occurs nowhere in the caption
``caption-leading-space``        warning  ``strip()`` shifts every span by the leading whitespace
``lowercase-changes-length``     warning  ``lower()`` changes the caption length: spans shift
================================ ======== ===========================================================

OD records (prompt built from the label map: mmdet ``clean_name`` — drop ``(...)``, ``_`` → space,
lower case — and ``". "`` between classes; for ``a/b`` names the longest alternative counts):

================================ ======== ===========================================================
``od-prompt-too-long``           warning  the image's positive classes need more than 256 tokens:
                                          mmdet drops the boxes of the classes that do not fit
``class-name-no-tokens``         error    a class name that cleans/tokenizes to nothing
``class-names-collide``          warning  two labels share one cleaned prompt (``bat_(animal)``…)
``label-map-prompt-too-long``    warning  the prompt of all classes (as used at test time) exceeds
                                          256 tokens
``label-not-in-map``             error    a record label missing from the label map
================================ ======== ===========================================================

Token positions follow ``create_positive_map``: a span's start (and ``start+1``, ``start+2``) and
end-1 (and ``end-2``, ``end-3``) are looked up with ``char_to_token``; if either stays ``None`` the
span is lost.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from odvgkit.errors import ProblemLog
from odvgkit.io import read_records
from odvgkit.records import items_of
from odvgkit.tokenizer import MAX_TOKENS, load_tokenizer

_BATCH = 1024


def clean_name(name: str) -> str:
    """mmdet's ``clean_name`` (text_transformers.py), character for character."""
    name = re.sub(r"\(.*\)", "", name)
    name = re.sub(r"_", " ", name)
    name = re.sub(r"  ", " ", name)
    return name.lower()


def mmdet_caption(caption: str) -> str:
    text = caption.lower().strip()
    return text if text.endswith(".") else text + ". "


@dataclass
class LintResult:
    records: int = 0
    vg_records: int = 0
    od_records: int = 0
    spans: int = 0
    max_caption_tokens: int = 0
    max_prompt_tokens: int = 0
    label_map_prompt_tokens: int | None = None
    classes_fitting: int | None = None
    flagged_records: int = 0
    per_code_records: Counter[str] = field(default_factory=Counter)


def class_token_lengths(label_map: Mapping[str, str], tokenizer: str | None = None) -> dict[str, int]:
    """Tokens each class costs in an OD prompt: ``len(tokenize(clean_name(name) + '. '))``."""
    tok = load_tokenizer(tokenizer)
    keys = list(label_map)
    texts: list[str] = []
    owners: list[str] = []
    for k in keys:
        for alt in label_map[k].split("/") if "/" in label_map[k] else [label_map[k]]:
            texts.append(clean_name(alt) + ". ")
            owners.append(k)
    out: dict[str, int] = {}
    for k, enc in zip(owners, tok.encode_batch(texts, add_special_tokens=False), strict=True):
        out[k] = max(out.get(k, 0), len(enc.ids))
    return out


def lint_label_map(
    label_map: Mapping[str, str], path: Path, problems: ProblemLog, result: LintResult,
    tokenizer: str | None = None, max_tokens: int = MAX_TOKENS,
) -> dict[str, int]:
    lengths = class_token_lengths(label_map, tokenizer)
    seen: dict[str, str] = {}
    for key, name in label_map.items():
        if lengths[key] <= 1:  # only the "." separator survived
            problems.error("class-name-no-tokens", path, f"label {key}", "name",
                           f"{name!r} cleans to {clean_name(name)!r}: no tokens to ground")
        cleaned = clean_name(name).strip()
        if cleaned in seen:
            problems.warn("class-names-collide", path, f"label {key}", "name",
                          f"{name!r} and label {seen[cleaned]} ({label_map[seen[cleaned]]!r}) both prompt as {cleaned!r}")
        else:
            seen[cleaned] = key
    total = 2  # [CLS] + "name. " per class (mmdet appends ". " after every class) + [SEP]
    fitting = 0
    for key in label_map:
        total += lengths[key]
        if total <= max_tokens:
            fitting += 1
    result.label_map_prompt_tokens = total
    result.classes_fitting = fitting
    if total > max_tokens:
        problems.warn("label-map-prompt-too-long", path, None, None,
                      f"all {len(label_map)} classes need {total} tokens; only the first {fitting} fit in "
                      f"{max_tokens} (mmdet samples classes per image for training; test-time prompts must be chunked)")
    return lengths


def lint_file(
    path: Path,
    label_map: Mapping[str, str] | None,
    problems: ProblemLog,
    tokenizer: str | None = None,
    max_tokens: int = MAX_TOKENS,
    label_map_path: Path | None = None,
    advance: Callable[[int], None] | None = None,
) -> LintResult:
    """Lint every record of ``path``; problems go to ``problems`` (``--strict`` stops at an error)."""
    result = LintResult()
    lengths: dict[str, int] | None = None
    if label_map is not None:
        lengths = lint_label_map(label_map, label_map_path or path, problems, result, tokenizer, max_tokens)
    tok = load_tokenizer(tokenizer)
    batch: list[tuple[int, dict[str, Any]]] = []

    def flag(codes: set[str]) -> None:
        if codes:
            result.flagged_records += 1
            result.per_code_records.update(codes)

    def run_batch() -> None:
        texts = [mmdet_caption(g["caption"]) for _, g in batch]
        for (line, g), enc in zip(batch, tok.encode_batch(texts), strict=True):
            flag(_lint_vg(path, line, g, enc, problems, result, max_tokens))
        batch.clear()

    for line, rec in read_records(path, problems, on_bytes=advance):
        result.records += 1
        g = rec.get("grounding")
        if isinstance(g, dict) and isinstance(g.get("caption"), str):
            result.vg_records += 1
            batch.append((line, g))
            if len(batch) >= _BATCH:
                run_batch()
        elif isinstance(rec.get("detection"), dict):
            result.od_records += 1
            if lengths is not None:
                flag(_lint_od(path, line, rec["detection"], lengths, label_map or {}, problems, result, max_tokens))
    if batch:
        run_batch()
    return result


def _lint_od(
    path: Path, line: int, det: dict[str, Any], lengths: Mapping[str, int], label_map: Mapping[str, str],
    problems: ProblemLog, result: LintResult, max_tokens: int,
) -> set[str]:
    codes: set[str] = set()
    labels: list[str] = []
    for j, inst in enumerate(items_of(det.get("instances"))):
        if not isinstance(inst, dict):
            continue
        key = str(inst.get("label"))
        if key not in lengths:
            problems.error("label-not-in-map", path, line, f"detection.instances[{j}].label",
                           f"{inst.get('label')!r} is not in the label map ({len(label_map)} labels)")
            codes.add("label-not-in-map")
            continue
        labels.append(key)
    uniq = list(dict.fromkeys(labels))
    need = sum(lengths[k] for k in uniq)
    result.max_prompt_tokens = max(result.max_prompt_tokens, need)
    if need > max_tokens:
        problems.warn("od-prompt-too-long", path, line, "detection.instances",
                      f"{len(uniq)} positive classes need {need} tokens > {max_tokens}: mmdet drops the boxes of the classes that do not fit")
        codes.add("od-prompt-too-long")
    return codes


def _char_to_token(enc: Any, pos: int, limit: int) -> int | None:
    if pos < 0:
        return None
    t = enc.char_to_token(pos)
    if t is None or t >= limit - 1:  # truncated away (the last kept position is [SEP])
        return None
    return t


def _lint_vg(
    path: Path, line: int, g: dict[str, Any], enc: Any, problems: ProblemLog, result: LintResult, max_tokens: int
) -> set[str]:
    codes: set[str] = set()
    caption: str = g["caption"]
    n_tokens = len(enc.ids)
    result.max_caption_tokens = max(result.max_caption_tokens, n_tokens)
    if n_tokens > max_tokens:
        problems.warn("caption-too-long", path, line, "grounding.caption",
                      f"{n_tokens} BERT tokens > {max_tokens}: the caption is truncated")
        codes.add("caption-too-long")
    lead = len(caption) - len(caption.lstrip())
    if lead:
        problems.warn("caption-leading-space", path, line, "grounding.caption",
                      f"{lead} leading whitespace character(s): mmdet strips them, every span shifts by {lead}")
        codes.add("caption-leading-space")
    if len(caption.lower()) != len(caption):
        problems.warn("lowercase-changes-length", path, line, "grounding.caption",
                      "lower() changes the caption's length (e.g. 'İ'): spans after it shift")
        codes.add("lowercase-changes-length")
    low = caption.lower()
    for i, region in enumerate(items_of(g.get("regions"))):
        if not isinstance(region, dict):
            continue
        where = f"grounding.regions[{i}]"
        phrase = region.get("phrase")
        pieces = phrase if isinstance(phrase, list) else [phrase]
        for piece in pieces:
            if isinstance(piece, str) and piece.strip() and piece.strip().lower() not in low:
                problems.warn("phrase-not-in-caption", path, line, f"{where}.phrase",
                              f"{piece!r} does not occur in the caption")
                codes.add("phrase-not-in-caption")
        for k, span in enumerate(items_of(region.get("tokens_positive"))):
            result.spans += 1
            loc = f"{where}.tokens_positive[{k}]"
            if not (isinstance(span, list) and len(span) == 2 and all(isinstance(v, int) for v in span)):
                continue  # shape problems are validate's job
            beg, end = span[0] - lead, span[1] - lead
            if span[0] < 0 or span[1] > len(caption) or span[1] <= span[0]:
                problems.error("span-out-of-range", path, line, loc,
                               f"{span} is outside the caption (length {len(caption)}) or empty")
                codes.add("span-out-of-range")
                continue
            full = _positions(enc, beg, end, 1 << 30)
            if full is None:
                problems.error("span-no-tokens", path, line, loc,
                               f"{span} = {caption[span[0]:span[1]]!r} maps to no BERT token: the region gets no text target")
                codes.add("span-no-tokens")
            elif _positions(enc, beg, end, max_tokens) is None:
                problems.warn("span-truncated", path, line, loc,
                              f"{span} = {caption[span[0]:span[1]]!r} lies beyond the {max_tokens}-token limit")
                codes.add("span-truncated")
    return codes


def _positions(enc: Any, beg: int, end: int, limit: int) -> tuple[int, int] | None:
    """``create_positive_map``'s lookup with its fallbacks; None when the span is lost."""
    b = _char_to_token(enc, beg, limit)
    if b is None:
        b = _char_to_token(enc, beg + 1, limit)
        if b is None:
            b = _char_to_token(enc, beg + 2, limit)
    e = _char_to_token(enc, end - 1, limit)
    if e is None:
        e = _char_to_token(enc, end - 2, limit)
        if e is None:
            e = _char_to_token(enc, end - 3, limit)
    if b is None or e is None:
        return None
    return b, e
