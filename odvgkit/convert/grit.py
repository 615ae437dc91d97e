"""GRIT-20M processed shards → ODVG VG records (``odvgkit convert grit2odvg``).

Input is what ``odvgkit grit process`` writes (or upstream ``grit_processing.py``):
``OUT_DIR/annotations/<shard>.json`` — a JSON list of img2dataset sample metadata — beside
``OUT_DIR/images/<shard>/<key>.jpg``. Each sample carries ``caption``, the downloaded (post-resize)
``width``/``height`` and ``ref_exps`` = ``[[start, end, x1, y1, x2, y2, score], …]`` with boxes
normalised to the image and character spans into the caption.

What upstream ``grit2odvg.py`` intends, done as intended (docs/deviations.md, "grit2odvg"):

* the phrase filters (``.`` ``？`` space ``'`` ``"``), the ASCII and the emoji filter look at the
  **phrase** (upstream looks at the whole caption, so only one-word captions survive);
* every shard is converted (upstream stops after the first two files of ``os.listdir``);
* the overlap / size filter tests the **box** (upstream adds the image width to x1 and tests the
  image size), so boxes outside the image or under 1 px are dropped;
* one region per referring expression with a flat box, a string phrase and ``tokens_positive``:
  the form both MMDetection and Open-GroundingDino load (upstream nests repeated phrases' boxes);
* records come out in shard order, samples in key order (upstream: queue completion order).

Conversion is per shard and pure (:func:`convert_shard` takes a path and options and returns the
serialised records and the shard's statistics), so the local process pool and Spark run the very
same function and produce the same bytes.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import orjson

from odvgkit.errors import ProblemLog
from odvgkit.io.text import strip_bom

CAPTION_MARKERS = ("↙️", "[CLS]", "[SEP]")
PHRASE_PUNCTUATION = (".", "？", "'", '"')
DEFAULT_TOKEN_LIMIT = 240  # upstream's empirical limit (Grounding DINO truncates at 256)
ANNOTATION_SUFFIXES = (".json", ".jsonl")


@dataclass(frozen=True)
class GritOptions:
    """Filters of grit2odvg; defaults reproduce upstream's intended recipe."""

    token_limit: int = DEFAULT_TOKEN_LIMIT  # drop captions with this many BERT tokens or more
    multi_word: bool = False  # upstream drops phrases with a space; True keeps them
    ascii_only: bool = True  # drop phrases with non-ASCII characters
    drop_emoji: bool = True  # drop phrases containing an emoji
    phrases: str = "ref_exps"  # or "noun_chunks" (same [start, end, box…, score] layout)
    tokenizer: str | None = None  # local tokenizer dir/file; None = bundled bert-base-uncased


@dataclass
class ShardResult:
    """One shard's output: serialised JSON Lines, counts and problems, all plain data (picklable)."""

    shard: str
    data: bytes = b""
    records: int = 0
    stats: Counter[str] = field(default_factory=Counter)
    problems: list[tuple[str, str, str, str | None, str]] = field(default_factory=list)
    # (severity, code, where, field, message); the path is the shard's annotation file

    def problem(self, severity: str, code: str, where: str, fld: str | None, message: str) -> None:
        self.problems.append((severity, code, where, fld, message))


def annotation_files(root: Path) -> list[Path]:
    """The per-shard annotation files under ``root/annotations`` in name order.

    ``*vg.json`` files are skipped as upstream does (its own output once lived there).
    """
    ann = root / "annotations"
    files = [
        p
        for p in ann.iterdir()
        if p.is_file() and p.name.endswith(ANNOTATION_SUFFIXES) and not p.name.endswith("vg.json")
        and not p.name.startswith(".")
    ] if ann.is_dir() else []
    return sorted(files, key=lambda p: p.name)


def shard_name(path: Path) -> str:
    name = path.name
    for suffix in ANNOTATION_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def load_samples(path: Path) -> list[Any]:
    """A shard's samples: a JSON list (upstream layout) or JSON Lines."""
    raw = strip_bom(path.read_bytes())
    if path.name.endswith(".jsonl"):
        return [orjson.loads(line) for line in raw.splitlines() if line.strip()]
    data = orjson.loads(raw)
    if not isinstance(data, list):
        raise ValueError(f"expected a JSON list of samples, got {type(data).__name__}")
    return data


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _as_index(v: Any) -> int | None:
    """Span ends arrive as floats from Parquet (``list<list<double>>``); accept integral ones."""
    if _is_int(v):
        return v
    if isinstance(v, float) and math.isfinite(v) and v.is_integer():
        return int(v)
    return None


def _filename(sample: dict[str, Any]) -> str | None:
    name = sample.get("filename")
    if isinstance(name, str) and name:
        return name
    key = sample.get("key")
    if isinstance(key, str) and key:
        return f"images/{key[0:5]}/{key}.jpg"  # upstream grit_processing layout
    return None


def _emoji_count(text: str) -> int:
    import emoji  # imported lazily: only needed when non-ASCII phrases are allowed

    return int(emoji.emoji_count(text))


def phrase_rejection(phrase: str, opts: GritOptions) -> str | None:
    """Why a phrase is dropped, or None. Upstream's ``is_valid_caption`` rules, on the phrase.

    Like upstream, the check ignores the phrase's last character (a closing delimiter).
    """
    body = phrase.strip()[:-1]
    if any(ch in body for ch in PHRASE_PUNCTUATION):
        return "phrase-punctuation"
    if not opts.multi_word and " " in body:
        return "multi-word"
    if opts.ascii_only and not phrase.isascii():
        return "non-ascii"
    if opts.drop_emoji and not phrase.isascii() and _emoji_count(phrase):
        return "emoji"
    return None


def _check_sample(sample: Any, opts: GritOptions) -> tuple[str, str | None, str] | None:
    """(code, field, message) when a sample lacks what conversion needs, else None."""
    if not isinstance(sample, dict):
        return ("bad-sample", None, f"expected a JSON object, got {type(sample).__name__}")
    for name in ("caption", "width", "height", opts.phrases):
        if name not in sample or sample[name] is None:
            return ("missing-column", name, "missing")
    if not isinstance(sample["caption"], str):
        return ("bad-field", "caption", f"expected a string, got {type(sample['caption']).__name__}")
    for name in ("width", "height"):
        v = sample[name]
        if not (_is_int(v) or (isinstance(v, float) and v.is_integer())) or v <= 0:
            return ("bad-field", name, f"expected a positive integer, got {v!r}")
    if not isinstance(sample[opts.phrases], list):
        return ("bad-field", opts.phrases, f"expected a list, got {type(sample[opts.phrases]).__name__}")
    if _filename(sample) is None:
        return ("missing-column", "key", "no filename and no key")
    return None


def convert_sample(
    sample: dict[str, Any], n_tokens: int, opts: GritOptions, res: ShardResult, where: str
) -> dict[str, Any] | None:
    """One checked sample → a VG record, or None (the reason is counted in ``res.stats``)."""
    stats = res.stats
    raw_caption: str = sample["caption"]
    if any(m in raw_caption for m in CAPTION_MARKERS):
        stats["dropped:caption-markers"] += 1
        return None
    caption = raw_caption.strip()  # ODVGDataset strips the caption: shift spans to match
    shift = len(raw_caption) - len(raw_caption.lstrip())
    if not caption:
        stats["dropped:empty-caption"] += 1
        return None
    if len(caption.lower()) != len(caption):
        stats["dropped:caption-case"] += 1  # lowercasing would move every span after it
        return None
    if n_tokens >= opts.token_limit:
        stats["dropped:too-many-tokens"] += 1
        return None
    width, height = int(sample["width"]), int(sample["height"])
    regions: list[dict[str, Any]] = []
    seen: set[tuple[Any, ...]] = set()
    for i, ref in enumerate(sample[opts.phrases]):
        stats["refs"] += 1
        loc = f"{where}.{opts.phrases}[{i}]"
        if not isinstance(ref, list) or len(ref) < 6:
            stats["refs_dropped:malformed"] += 1
            res.problem("warning", "malformed-ref", loc, opts.phrases, f"expected [start, end, x1, y1, x2, y2, score], got {ref!r}"[:200])
            continue
        s, e = _as_index(ref[0]), _as_index(ref[1])
        if s is None or e is None or not (shift <= s < e <= shift + len(caption)):
            stats["refs_dropped:invalid-span"] += 1
            res.problem("warning", "invalid-span", loc, "span", f"[{ref[0]!r}, {ref[1]!r}] is not a span of a {len(raw_caption)}-character caption")
            continue
        s, e = s - shift, e - shift
        phrase = caption[s:e]
        # tighten the span to the phrase's visible characters
        s += len(phrase) - len(phrase.lstrip())
        e -= len(phrase) - len(phrase.rstrip())
        phrase = caption[s:e]
        if not phrase:
            stats["refs_dropped:invalid-span"] += 1
            res.problem("warning", "invalid-span", loc, "span", "span covers only whitespace")
            continue
        reason = phrase_rejection(phrase, opts)
        if reason is not None:
            stats[f"refs_dropped:{reason}"] += 1
            continue
        coords = ref[2:6]
        if not all(_num(v) for v in coords):
            stats["refs_dropped:invalid-box"] += 1
            res.problem("warning", "invalid-box", loc, "box", f"non-numeric box {coords!r}"[:200])
            continue
        x1, y1, x2, y2 = (round(coords[0] * width, 3), round(coords[1] * height, 3),
                          round(coords[2] * width, 3), round(coords[3] * height, 3))
        inter_w = max(0.0, min(x2, width) - max(x1, 0.0))
        inter_h = max(0.0, min(y2, height) - max(y1, 0.0))
        if inter_w * inter_h == 0:
            stats["refs_dropped:outside-image"] += 1
            continue
        if x2 - x1 <= 1 or y2 - y1 <= 1:
            stats["refs_dropped:tiny-box"] += 1
            continue
        box = [max(x1, 0.0), max(y1, 0.0), min(x2, float(width)), min(y2, float(height))]
        if box != [x1, y1, x2, y2]:
            stats["boxes_clipped"] += 1
        ident = (s, e, *box)
        if ident in seen:
            stats["refs_dropped:duplicate"] += 1
            continue
        seen.add(ident)
        regions.append({"bbox": box, "phrase": phrase, "tokens_positive": [[s, e]]})
    if not regions:
        stats["dropped:no-regions"] += 1
        return None
    stats["regions"] += len(regions)
    return {
        "filename": _filename(sample),
        "height": height,
        "width": width,
        "grounding": {"caption": caption, "regions": regions},
    }


def convert_samples(samples: Iterable[Any], opts: GritOptions, res: ShardResult, label: str) -> list[dict[str, Any]]:
    """Check, tokenize (one batch per shard) and convert a shard's samples, in key order."""
    from odvgkit.tokenizer import count_tokens

    checked: list[tuple[str, dict[str, Any]]] = []
    for i, sample in enumerate(samples):
        res.stats["samples"] += 1
        where = f"{label}[{i}]"
        bad = _check_sample(sample, opts)
        if bad is not None:
            code, fld, message = bad
            res.stats[f"dropped:{code}"] += 1
            res.problem("error", code, where, fld, message)
            continue
        checked.append((where, sample))
    checked.sort(key=lambda t: (str(t[1].get("key", "")), _filename(t[1]) or ""))
    counts = count_tokens([s["caption"].strip() for _, s in checked], opts.tokenizer) if checked else []
    out = []
    for (where, sample), n in zip(checked, counts, strict=True):
        rec = convert_sample(sample, n, opts, res, where)
        if rec is not None:
            out.append(rec)
    return out


def convert_shard(path: str | Path, opts: GritOptions) -> ShardResult:
    """One annotation file → serialised records + statistics. Never raises for bad data."""
    p = Path(path)
    res = ShardResult(shard=shard_name(p))
    try:
        samples = load_samples(p)
    except (OSError, ValueError) as exc:  # orjson.JSONDecodeError is a ValueError
        res.stats["unreadable_files"] += 1
        res.problem("error", "corrupt-annotations", "", None, f"cannot read shard annotations: {exc}"[:300])
        return res
    records = convert_samples(samples, opts, res, "samples")
    res.records = len(records)
    res.stats["records"] = len(records)
    res.data = b"".join(orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE) for r in records)
    return res




def merge_problems(problems: ProblemLog, path: Path | str, items: Iterable[tuple[str, str, str, str | None, str]]) -> None:
    """Replay a worker's problems into the command's log (``--strict`` raises on the first error)."""
    from odvgkit.errors import Problem

    for severity, code, where, fld, message in items:
        problems.add(Problem(severity, code, str(path), where or None, fld, message))  # type: ignore[arg-type]


def write_grit(
    root: Path,
    output: Path,
    opts: GritOptions,
    run: Callable[[Callable[[str], ShardResult], list[str]], Iterable[ShardResult]],
    problems: ProblemLog,
    on_shard: Callable[[int], None] | None = None,
) -> tuple[Counter[str], list[dict[str, Any]]]:
    """Convert every shard under ``root`` with ``run`` (local pool or Spark) into ``output``.

    Results arrive in shard order and are appended to one atomic output; returns the totals and
    the per-shard statistics (what was dropped and why).
    """
    from odvgkit.errors import OdvgError
    from odvgkit.io import AtomicGroup, check_distinct, record_writer

    files = annotation_files(root)
    if not files:
        raise OdvgError(f"{root}: no annotations/<shard>.json files (run 'odvgkit grit process' first)")
    check_distinct(output, files)
    totals: Counter[str] = Counter()
    per_shard: list[dict[str, Any]] = []
    fn = partial(_convert_path, opts=opts)
    with AtomicGroup() as group, record_writer(group, output) as writer:
        for res in run(fn, [str(f) for f in files]):
            merge_problems(problems, root / "annotations" / f"{res.shard}.json", res.problems)
            if hasattr(writer, "write_raw"):
                writer.write_raw(res.data, res.records)
            else:
                for line in res.data.splitlines():
                    writer.write(orjson.loads(line))
            totals.update(res.stats)
            totals["shards"] += 1
            per_shard.append({"shard": res.shard, **dict(sorted(res.stats.items()))})
            if on_shard is not None:
                on_shard(1)
    from odvgkit.grit.engine import uniform_rows

    return totals, uniform_rows(per_shard)


def _convert_path(path: str, opts: GritOptions) -> ShardResult:
    return convert_shard(path, opts)
