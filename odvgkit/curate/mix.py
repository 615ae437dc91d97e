"""Mixture manifests: which ODVG sources a training run draws from, and how much of each per epoch.

The manifest is the contract between ``odvgkit mix`` and the trainer. It is YAML (``.yaml``/``.yml``)
or JSON (``.json``) with this schema (version 1)::

    odvgkit_mixture: 1          # schema version (int, required)
    seed: 0                     # sampling seed (int)
    epoch_size: 123456          # total samples per epoch = sum of samples_per_epoch (int)
    sources:                    # non-empty list, in order
      - name: o365              # unique identifier [A-Za-z0-9_]+ (default: file stem)
        path: o365_od.jsonl     # ODVG file; a relative path is relative to the manifest's directory
        kind: od                # od | vg (detected from the records)
        label_map: o365_label_map.json   # required for od, must be null for vg (same path rule)
        image_root: /data/o365  # image root (data_prefix.img); null = paths in records are complete
        num_records: 1700000    # records in the file when the manifest was made
        ratio: null             # exactly one of ratio / repeat / samples is non-null:
        repeat: 0.05            #   ratio   = fraction of the epoch (0 < r <= 1)
        samples: null           #   repeat  = multiple of the source per epoch (> 0, may be fractional)
                                #   samples = exact number of records per epoch (> 0)
        class_balanced_threshold: null   # od only: LVIS repeat-factor sampling threshold t (0 < t < 1)
        samples_per_epoch: 85000          # resolved count (int) the trainer draws per epoch

Paths are written relative to the manifest's directory when they lie inside it, absolute
otherwise; :func:`load_manifest` returns them absolute.

Resolution of ``samples_per_epoch``: ``repeat`` → ``round(repeat·num_records)``; ``samples`` → as
given; ``ratio`` sources share the rest of the epoch: with F the sum of the other sources,
``epoch_size = round(F / (1 − Σratio))`` and each ratio source gets ``round(ratio·epoch_size)``.
When every source is a ratio, the ratios must sum to 1 and the epoch size is ``--epoch-size`` (default:
the total number of records).

Sampling one epoch (:func:`epoch_counts`, used by ``--materialize`` and meant for the trainer):
every record *i* gets an expected count ``e_i = samples_per_epoch · w_i / Σw`` with ``w_i = 1``, or
with a class-balanced threshold the LVIS repeat factor ``w_i = max_c max(1, sqrt(t / f_c))`` over the
record's labels (``f_c`` = fraction of the source's records containing label ``c``). Counts are drawn
by systematic sampling over a seeded random permutation: every record gets ``floor(e_i)`` or
``ceil(e_i)``, the counts add up exactly to ``samples_per_epoch``, and ``(seed, epoch, name)`` fixes
the result.
"""

from __future__ import annotations

import json
import math
import re
import shlex
import zlib
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from odvgkit.errors import OdvgError, ProblemLog
from odvgkit.io import read_label_map, read_records
from odvgkit.io.text import read_text
from odvgkit.records import items_of

SCHEMA_VERSION = 1
WEIGHT_KEYS = ("ratio", "repeat", "samples")
_NAME = re.compile(r"^[A-Za-z0-9_]+$")
_ALIASES = {
    "r": "ratio", "ratio": "ratio",
    "repeat": "repeat", "x": "repeat",
    "samples": "samples", "n": "samples",
    "cbt": "class_balanced_threshold", "class_balanced": "class_balanced_threshold",
    "class_balanced_threshold": "class_balanced_threshold",
    "label_map": "label_map", "lm": "label_map",
    "root": "image_root", "image_root": "image_root",
    "kind": "kind", "name": "name",
}


@dataclass(frozen=True)
class MixSource:
    """One source of a mixture (paths absolute once loaded)."""

    name: str
    path: Path
    kind: str
    label_map: Path | None
    image_root: Path | None
    num_records: int
    ratio: float | None = None
    repeat: float | None = None
    samples: int | None = None
    class_balanced_threshold: float | None = None
    samples_per_epoch: int = 0


@dataclass(frozen=True)
class Manifest:
    """A loaded mixture manifest (see the module docstring for the schema)."""

    sources: tuple[MixSource, ...]
    seed: int = 0
    epoch_size: int = 0
    version: int = SCHEMA_VERSION
    path: Path | None = field(default=None, compare=False)


@dataclass
class SourceSpec:
    """A parsed command-line source ``PATH[:OPTIONS]`` before its file was read."""

    path: Path
    options: dict[str, str]


def parse_spec(spec: str) -> SourceSpec:
    """``A.jsonl``, ``A.jsonl:0.3``, ``A.jsonl:repeat=2``, ``A.jsonl:0.5,lm=map.json,root=img/``."""
    if Path(spec).exists() or ":" not in spec:
        return SourceSpec(Path(spec), {})
    path, _, opts = spec.rpartition(":")
    options: dict[str, str] = {}
    for i, item in enumerate(p.strip() for p in opts.split(",")):
        if not item:
            continue
        if "=" not in item:
            if i == 0:
                options["ratio"] = item
                continue
            raise OdvgError(f"{spec!r}: cannot parse {item!r} (use key=value, e.g. repeat=2, samples=1000, ratio=0.3)")
        key, _, value = item.partition("=")
        canon = _ALIASES.get(key.strip().lower())
        if canon is None:
            raise OdvgError(f"{spec!r}: unknown option {key!r} (ratio, repeat, samples, cbt, label_map, root, kind, name)")
        if canon in options:
            raise OdvgError(f"{spec!r}: option {canon} given twice")
        options[canon] = value.strip()
    return SourceSpec(Path(path), options)


def _number(spec: str, key: str, text: str, integer: bool = False) -> float | int:
    try:
        value: float | int = int(text) if integer else float(text)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise OdvgError(f"{spec}: {key}={text!r} is not {kind}") from None
    if not math.isfinite(value) or value <= 0:
        raise OdvgError(f"{spec}: {key}={text!r} must be positive")
    return value


def scan_source(path: Path, label_map: dict[str, str] | None, problems: ProblemLog | None = None) -> tuple[int, str]:
    """Count records, detect the kind, check labels against the label map: ``(count, kind)``."""
    kinds: Counter[str] = Counter()
    n = 0
    for line, rec in read_records(path, problems):
        n += 1
        if "grounding" in rec:
            kinds["vg"] += 1
        elif "detection" in rec:
            kinds["od"] += 1
            if label_map is not None:
                det = rec["detection"] if isinstance(rec["detection"], dict) else {}
                for j, inst in enumerate(items_of(det.get("instances"))):
                    lab = inst.get("label") if isinstance(inst, dict) else None
                    if str(lab) not in label_map:
                        raise OdvgError(
                            f"{path}:{line}: detection.instances[{j}].label: {lab!r} is not in the label map "
                            f"({len(label_map)} labels): mismatched label map"
                        )
    if kinds["od"] and kinds["vg"]:
        raise OdvgError(f"{path}: mixes {kinds['od']} OD and {kinds['vg']} VG records; ODVGDataset reads one kind per file")
    return n, ("vg" if kinds["vg"] else "od")


def build_source(spec: SourceSpec, problems: ProblemLog | None = None) -> MixSource:
    """Read one source file (count, kind, label check) and validate its options."""
    text = f"{spec.path}:{','.join(f'{k}={v}' for k, v in spec.options.items())}"
    o = spec.options
    weights = [k for k in WEIGHT_KEYS if k in o]
    if len(weights) > 1:
        raise OdvgError(f"{text}: give only one of ratio / repeat / samples")
    if not spec.path.is_file():
        raise OdvgError(f"{spec.path}: no such file")
    lm_path = Path(o["label_map"]) if "label_map" in o else None
    lm = read_label_map(lm_path) if lm_path is not None else None
    count, detected = scan_source(spec.path, lm, problems)
    kind = o.get("kind", detected)
    if kind not in ("od", "vg"):
        raise OdvgError(f"{text}: kind={kind!r}: use od or vg")
    if kind != detected and count:
        raise OdvgError(f"{text}: kind={kind} but the records are {detected.upper()}")
    if kind == "od" and lm_path is None:
        raise OdvgError(f"{spec.path}: OD source needs its label map: {spec.path}:label_map=FILE")
    if kind == "vg" and lm_path is not None:
        raise OdvgError(f"{spec.path}: a VG source takes no label map (ODVGDataset would read it as OD)")
    if count == 0:
        raise OdvgError(f"{spec.path}: no records")
    root = Path(o["image_root"]) if o.get("image_root") else None
    if root is not None and not root.is_dir():
        raise OdvgError(f"{text}: root={root}: not a directory")
    name = o.get("name") or re.sub(r"[^A-Za-z0-9_]", "_", spec.path.name.split(".")[0])
    if not _NAME.match(name):
        raise OdvgError(f"{text}: name={name!r}: use letters, digits and _")
    ratio = repeat = cbt = None
    samples = None
    if "ratio" in o:
        ratio = float(_number(text, "ratio", o["ratio"]))
        if ratio > 1:
            raise OdvgError(f"{text}: ratio={o['ratio']} must be at most 1 (a fraction of the epoch)")
    elif "samples" in o:
        samples = int(_number(text, "samples", o["samples"], integer=True))
    else:
        repeat = float(_number(text, "repeat", o.get("repeat", "1")))
    if "class_balanced_threshold" in o:
        cbt = float(_number(text, "cbt", o["class_balanced_threshold"]))
        if cbt >= 1:
            raise OdvgError(f"{text}: cbt={cbt} must be below 1 (a frequency threshold, e.g. 0.001)")
        if kind != "od":
            raise OdvgError(f"{text}: class-balanced sampling needs labels: only for OD sources")
    return MixSource(name, spec.path, kind, lm_path, root, count, ratio, repeat, samples, cbt)


def resolve(sources: list[MixSource], epoch_size: int | None = None) -> tuple[list[MixSource], int]:
    """Fill ``samples_per_epoch`` (see the module docstring); returns ``(sources, epoch size)``."""
    names = Counter(s.name for s in sources)
    if dup := [n for n, c in names.items() if c > 1]:
        raise OdvgError(f"source name {dup[0]!r} used twice: give name=... to one of them")
    fixed = 0
    out: list[MixSource] = []
    for s in sources:
        if s.samples is not None:
            spe = s.samples
        elif s.repeat is not None:
            spe = max(1, round(s.repeat * s.num_records))
        else:
            spe = 0
        fixed += spe
        out.append(replace(s, samples_per_epoch=spe))
    total_ratio = sum(s.ratio or 0.0 for s in sources)
    has_ratio = any(s.ratio is not None for s in sources)
    if not has_ratio:
        if epoch_size is not None and epoch_size != fixed:
            raise OdvgError(f"--epoch-size {epoch_size}: conflicts with repeat/samples sources totalling {fixed}")
        return out, fixed
    if fixed == 0:
        if abs(total_ratio - 1.0) > 1e-6:
            raise OdvgError(f"ratios sum to {total_ratio:g}: with only ratio sources they must sum to 1")
        size = epoch_size if epoch_size is not None else sum(s.num_records for s in sources)
    else:
        if total_ratio >= 1.0 - 1e-9:
            raise OdvgError(f"ratios sum to {total_ratio:g}: with repeat/samples sources they must sum to less than 1")
        if epoch_size is not None:
            raise OdvgError("--epoch-size applies only when every source is a ratio; the others fix it here")
        size = round(fixed / (1.0 - total_ratio))
    if size <= 0:
        raise OdvgError(f"--epoch-size {size}: must be positive")
    out = [replace(s, samples_per_epoch=max(1, round(s.ratio * size))) if s.ratio is not None else s for s in out]
    return out, sum(s.samples_per_epoch for s in out)


# --------------------------------------------------------------------------------------- files


def _rel(path: Path | None, base: Path) -> str | None:
    """Relative to the manifest's directory when inside it (the bundle moves as one), else absolute."""
    if path is None:
        return None
    full, root = path.resolve(), base.resolve()
    if full.is_relative_to(root):
        return full.relative_to(root).as_posix()
    return str(full)


def manifest_dict(manifest: Manifest, base: Path) -> dict[str, Any]:
    """The serialisable manifest, paths relative to ``base`` (the manifest's directory)."""
    return {
        "odvgkit_mixture": manifest.version,
        "seed": manifest.seed,
        "epoch_size": manifest.epoch_size,
        "sources": [
            {
                "name": s.name,
                "path": _rel(s.path, base),
                "kind": s.kind,
                "label_map": _rel(s.label_map, base),
                "image_root": _rel(s.image_root, base),
                "num_records": s.num_records,
                "ratio": s.ratio,
                "repeat": s.repeat,
                "samples": s.samples,
                "class_balanced_threshold": s.class_balanced_threshold,
                "samples_per_epoch": s.samples_per_epoch,
            }
            for s in manifest.sources
        ],
    }


def dump_manifest(manifest: Manifest, path: Path) -> str:
    """The manifest's text for ``path`` (YAML or JSON by extension)."""
    data = manifest_dict(manifest, path.parent)
    if path.suffix.lower() == ".json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if path.suffix.lower() not in (".yaml", ".yml"):
        raise OdvgError(f"{path}: manifest must be .yaml, .yml or .json")
    from odvgkit.errors import require

    yaml = require("yaml", "curate")
    head = "# odvgkit mixture manifest (schema 1): see docs/curate.md#mixture-manifest\n"
    return head + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def load_manifest(path: str | Path) -> Manifest:
    """Read and validate a mixture manifest; paths come back absolute. One-line errors."""
    p = Path(path)
    try:
        text = read_text(p, "manifest")
    except OSError as exc:
        raise OdvgError(f"{p}: cannot read manifest: {exc.strerror}") from None
    if p.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise OdvgError(f"{p}:{exc.lineno}: malformed JSON: {exc.msg}") from None
    else:
        from odvgkit.errors import require

        yaml = require("yaml", "curate")
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise OdvgError(f"{p}: malformed YAML: {str(exc).splitlines()[0]}") from None
    manifest = manifest_from_dict(data, p)
    check_manifest_files(manifest)
    return manifest


def manifest_from_dict(data: Any, path: Path) -> Manifest:
    where = str(path)
    if not isinstance(data, dict) or "odvgkit_mixture" not in data:
        raise OdvgError(f"{where}: not an odvgkit mixture manifest (no 'odvgkit_mixture' key)")
    if data["odvgkit_mixture"] != SCHEMA_VERSION:
        raise OdvgError(f"{where}: odvgkit_mixture: schema {data['odvgkit_mixture']!r} is not supported (1)")
    srcs = data.get("sources")
    if not isinstance(srcs, list) or not srcs:
        raise OdvgError(f"{where}: sources: a non-empty list is required")
    base = path.parent

    def abspath(v: Any, loc: str) -> Path | None:
        if v is None:
            return None
        if not isinstance(v, str) or not v or "\x00" in v:
            raise OdvgError(f"{where}: {loc}: expected a path string, got {v!r}")
        q = Path(v)
        return q if q.is_absolute() else (base / q).resolve()

    out: list[MixSource] = []
    for i, s in enumerate(srcs):
        loc = f"sources[{i}]"
        if not isinstance(s, dict):
            raise OdvgError(f"{where}: {loc}: expected a mapping")
        for key in ("name", "path", "kind", "num_records", "samples_per_epoch"):
            if key not in s:
                raise OdvgError(f"{where}: {loc}.{key}: missing")
        if s["kind"] not in ("od", "vg"):
            raise OdvgError(f"{where}: {loc}.kind: {s['kind']!r} (od or vg)")
        set_weights = [k for k in WEIGHT_KEYS if s.get(k) is not None]
        if len(set_weights) != 1:
            raise OdvgError(f"{where}: {loc}: exactly one of ratio / repeat / samples must be set")
        if s["kind"] == "od" and s.get("label_map") is None:
            raise OdvgError(f"{where}: {loc}.label_map: required for an OD source")
        for key in ("num_records", "samples_per_epoch"):
            if not isinstance(s[key], int) or isinstance(s[key], bool) or s[key] < 0:
                raise OdvgError(f"{where}: {loc}.{key}: expected a non-negative integer")
        for key in ("ratio", "repeat", "class_balanced_threshold"):
            v = s.get(key)
            if v is not None and (not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 < v < math.inf):
                raise OdvgError(f"{where}: {loc}.{key}: expected a positive number, got {v!r}")
        if s.get("ratio") is not None and s["ratio"] > 1:
            raise OdvgError(f"{where}: {loc}.ratio: a fraction of the epoch must be <= 1, got {s['ratio']!r}")
        if s.get("class_balanced_threshold") is not None and s["class_balanced_threshold"] >= 1:
            raise OdvgError(f"{where}: {loc}.class_balanced_threshold: must be below 1, got {s['class_balanced_threshold']!r}")
        v = s.get("samples")
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v <= 0):
            raise OdvgError(f"{where}: {loc}.samples: expected a positive integer, got {v!r}")
        if v is not None and s["samples_per_epoch"] != v:
            raise OdvgError(f"{where}: {loc}.samples_per_epoch: {s['samples_per_epoch']!r} disagrees with samples: {v}")
        out.append(MixSource(
            name=str(s["name"]),
            path=abspath(s["path"], f"{loc}.path"),  # type: ignore[arg-type]
            kind=s["kind"],
            label_map=abspath(s.get("label_map"), f"{loc}.label_map"),
            image_root=abspath(s.get("image_root"), f"{loc}.image_root"),
            num_records=s["num_records"],
            ratio=s.get("ratio"),
            repeat=s.get("repeat"),
            samples=s.get("samples"),
            class_balanced_threshold=s.get("class_balanced_threshold"),
            samples_per_epoch=s["samples_per_epoch"],
        ))
    seed = data.get("seed", 0)
    if not isinstance(seed, int):
        raise OdvgError(f"{where}: seed: expected an integer")
    names = [s.name for s in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise OdvgError(f"{where}: sources: name {dupes[0]!r} is used twice")
    total = sum(s.samples_per_epoch for s in out)
    epoch = data.get("epoch_size", total)
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch != total:
        raise OdvgError(
            f"{where}: epoch_size: {epoch!r} disagrees with the sources (their samples_per_epoch add up to {total})"
        )
    return Manifest(tuple(out), seed, epoch, SCHEMA_VERSION, path)


def check_manifest_files(manifest: Manifest) -> None:
    """Every source file and label map must exist when a manifest is loaded — a missing one would
    otherwise surface only when the trainer reaches that source, possibly hours in."""
    where = str(manifest.path)
    for i, s in enumerate(manifest.sources):
        for key, p in (("path", s.path), ("label_map", s.label_map)):
            if p is not None and not p.is_file():
                raise OdvgError(f"{where}: sources[{i}].{key}: {p}: no such file")


# ------------------------------------------------------------------------------------ sampling


def repeat_factors(label_sets: list[set[int]], threshold: float) -> list[float]:
    """LVIS repeat factors (Gupta et al. 2019; mmdet ``ClassBalancedDataset``) per record."""
    n = len(label_sets)
    freq: Counter[int] = Counter(lab for s in label_sets for lab in s)
    cat_r = {c: max(1.0, math.sqrt(threshold / (k / n))) for c, k in freq.items()}
    return [max((cat_r[c] for c in s), default=1.0) for s in label_sets]


def epoch_counts(
    num_records: int, samples: int, seed: int, name: str, epoch: int = 0, weights: list[float] | None = None
) -> list[int]:
    """How many times each record is drawn in one epoch (see the module docstring)."""
    import numpy as np

    if num_records == 0:
        return []
    w = np.ones(num_records) if weights is None else np.asarray(weights, dtype=np.float64)
    expected = samples * w / w.sum()
    rng = np.random.default_rng([seed, epoch, zlib.crc32(name.encode())])
    perm = rng.permutation(num_records)
    edges = np.concatenate([[0.0], np.cumsum(expected[perm])])
    edges[-1] = samples  # guard against float drift
    points = rng.random() + np.arange(samples)
    hits = np.searchsorted(edges, points, side="right") - 1
    counts_perm = np.bincount(np.clip(hits, 0, num_records - 1), minlength=num_records)
    counts = np.empty(num_records, dtype=np.int64)
    counts[perm] = counts_perm
    return counts.tolist()


# ------------------------------------------------------------------------------------ outputs


def _py_name(name: str) -> str:
    ident = re.sub(r"\W", "_", name)
    return f"{ident}_dataset" if not ident[:1].isdigit() else f"ds_{ident}_dataset"


def emit_mmdet(manifest: Manifest, pipeline: str = "train_pipeline", plain: bool = False) -> str:
    """An MMDetection config snippet (a ``ConcatDataset`` of the sources) for the manifest.

    By default it is what ``odvgkit train`` configures: odvgkit's mmdet plugin (``custom_imports``),
    each source an ``IndexedODVGDataset`` (records read per sample through ``odvgkit index``, not
    held in every rank and worker) in a ``MixtureSampledDataset`` drawing exactly its
    ``samples_per_epoch`` (class-balanced from the index columns).

    ``plain`` is for an MMDetection without odvgkit: ``ODVGDataset`` s, and since MMDetection has no
    per-epoch sample-size wrapper, sizes are approximated and said so in a comment per source:
    ``RepeatDataset(times=round(spe/N))`` when a source is drawn at least once, else ``indices=spe``
    (mmengine takes the *first* spe records); ``ClassBalancedDataset`` carries the class-balanced
    threshold. ``pipeline`` names a variable the surrounding config defines.
    """
    lines = [
        f"# Generated by odvgkit mix (mixture schema {manifest.version}, seed {manifest.seed},",
        f"# {manifest.epoch_size} samples per epoch). Define `{pipeline}` before this snippet.",
    ]
    if not plain:
        lines += [
            "# Needs odvgkit's mmdet plugin (pip install 'odvgkit[train]') and each file's index, built once:",
            "#   odvgkit index " + " ".join(shlex.quote(str(s.path)) for s in manifest.sources),
            "# (odvgkit mix --emit-mmdet F --plain-mmdet: the same for an MMDetection without odvgkit)",
            "custom_imports = dict(imports=['odvgkit_train.mmdet_plugin'], allow_failed_imports=False)",
        ]
    lines.append("")
    names = []
    for s in manifest.sources:
        var = _py_name(s.name)
        names.append(var)
        spe, n = s.samples_per_epoch, s.num_records
        body = [
            f"    type='{'ODVGDataset' if plain else 'IndexedODVGDataset'}',",
            "    data_root='',",
            f"    ann_file={str(s.path)!r},",
        ]
        if s.label_map is not None:
            body.append(f"    label_map_file={str(s.label_map)!r},")
        root = "" if s.image_root is None else str(s.image_root).rstrip("/") + "/"
        body += [
            f"    data_prefix=dict(img={root!r}),",
            "    filter_cfg=dict(filter_empty_gt=False),",
            "    return_classes=True,",
        ]
        note = f"# {s.name}: {s.kind}, {n} records, {spe} per epoch"
        if not plain:
            body.append(f"    pipeline={pipeline},")
            cbt = s.class_balanced_threshold
            if cbt is not None:
                note += f"; class-balanced, threshold {cbt}"
            lines.append(note + " (exact: MixtureSampledDataset)")
            inner = "dict(\n" + "\n".join(body) + "\n)"
            lines.append(f"{var} = dict(\n    type='MixtureSampledDataset',\n    dataset={inner.replace(chr(10), chr(10) + '    ')},"
                         f"\n    samples={spe},\n    seed={manifest.seed},\n    name={s.name!r},"
                         f"\n    class_balanced_threshold={cbt!r},\n)")
            lines.append("")
            continue
        wrap: list[tuple[str, str]] = []
        if spe < n:
            body.append(f"    indices={spe},")
            note += f" (approximation: the first {spe} records; --materialize draws a random sample)"
        elif spe > n:
            times = max(1, round(spe / n))
            if times > 1:
                wrap.append(("RepeatDataset", f"times={times}"))
            if times * n != spe:
                note += f" (approximation: RepeatDataset times={times} = {times * n})"
        body.append(f"    pipeline={pipeline},")
        if s.class_balanced_threshold is not None:
            # innermost: ClassBalancedDataset asks its dataset for get_cat_ids (RepeatDataset has none)
            wrap.insert(0, ("ClassBalancedDataset", f"oversample_thr={s.class_balanced_threshold!r}"))
            note += f"; class-balanced, oversample_thr={s.class_balanced_threshold}"
        lines.append(note)
        inner = "dict(\n" + "\n".join(body) + "\n)"
        for wtype, arg in wrap:
            indented = inner.replace("\n", "\n    ")
            inner = f"dict(\n    type='{wtype}',\n    {arg},\n    dataset={indented},\n)"
        lines.append(f"{var} = {inner}")
        lines.append("")
    lines += [
        "train_dataloader = dict(",
        "    dataset=dict(",
        "        _delete_=True,",
        "        type='ConcatDataset',",
        f"        datasets=[{', '.join(names)}],",
        "    )",
        ")",
        "",
    ]
    return "\n".join(lines)


def source_label_sets(source: MixSource, problems: ProblemLog | None = None) -> list[set[int]]:
    from odvgkit.curate.split import record_labels

    return [record_labels(rec) for _, rec in read_records(source.path, problems)]


def materialize(
    manifest: Manifest,
    writer: Any,
    epoch: int = 0,
    problems: ProblemLog | None = None,
) -> tuple[dict[str, str] | None, dict[str, int]]:
    """Write one epoch of the mixture as ODVG records into ``writer``.

    Returns ``(merged label map or None, records written per source)``. OD sources are remapped onto
    one label map merged by name; ``filename`` becomes ``image_root/filename`` so the file is used
    with ``data_prefix=dict(img='')``. OD and VG sources cannot share one file (ODVGDataset reads one
    kind per file).
    """
    from odvgkit.curate.labels import merge

    kinds = {s.kind for s in manifest.sources}
    if len(kinds) > 1:
        raise OdvgError(
            "--materialize: the mixture has both OD and VG sources, but ODVGDataset reads one kind per "
            "file; materialize the OD and VG sources into separate manifests"
        )
    merged: dict[str, str] | None = None
    tables: list[dict[int, int]] = []
    if kinds == {"od"}:
        maps = [read_label_map(s.label_map) for s in manifest.sources if s.label_map is not None]
        merged, tables = merge(maps)
    written: dict[str, int] = {}
    for i, s in enumerate(manifest.sources):
        weights = None
        if s.class_balanced_threshold is not None:
            weights = repeat_factors(source_label_sets(s, problems), s.class_balanced_threshold)
        n = sum(1 for _ in read_records(s.path, problems))
        if n != s.num_records:
            raise OdvgError(f"{s.path}: has {n} records, the manifest says {s.num_records}: re-run odvgkit mix")
        counts = epoch_counts(n, s.samples_per_epoch, manifest.seed, s.name, epoch, weights)
        table = tables[i] if tables else None
        total = 0
        for k, (line, rec) in enumerate(read_records(s.path, problems)):
            c = counts[k]
            if not c:
                continue
            if s.image_root is not None and isinstance(rec.get("filename"), str):
                rec["filename"] = str(s.image_root / rec["filename"])
            if table is not None:
                det = rec.get("detection") or {}
                for j, inst in enumerate(items_of(det.get("instances"))):
                    try:
                        inst["label"] = table[int(inst["label"])]
                    except (KeyError, TypeError, ValueError):
                        raise OdvgError(
                            f"{s.path}:{line}: detection.instances[{j}].label: {inst.get('label')!r} not in "
                            f"{s.label_map} (mismatched label map)"
                        ) from None
            for _ in range(c):
                writer.write(rec)
            total += c
        written[s.name] = total
    return merged, written
