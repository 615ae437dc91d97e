"""Training sources: which ODVG files, their kind (OD/VG), label maps, image roots and weights.

A source is given on the command line as
``FILE[,images=DIR][,label_map=FILE][,repeat=F | ,samples=N][,cbt=T][,name=NAME]`` (``repeat`` = multiple
of the source per epoch, may be fractional; ``samples`` = exact records per epoch; ``cbt`` = LVIS
class-balanced threshold) or comes from a curation mixture manifest (``odvgkit.curate.mix.load_manifest``, imported lazily
so this works before and after that module exists). OD files need a label map, VG files must not
have one: ODVGDataset decides the mode from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from odvgkit.errors import OdvgError
from odvgkit.io import read_label_map, read_records
from odvgkit.records import kind_of

MANIFEST_SUFFIXES = (".yaml", ".yml")


def is_manifest(path: Path) -> bool:
    """A mixture manifest: YAML, or JSON whose first 4 KiB name the ``odvgkit_mixture`` key."""
    name = path.name.lower()
    if name.endswith(MANIFEST_SUFFIXES):
        return True
    if name.endswith(".json") and path.is_file():
        with path.open("rb") as fh:
            return b'"odvgkit_mixture"' in fh.read(4096)
    return False
SPEC_KEYS = ("images", "label_map", "repeat", "samples", "cbt", "name")


@dataclass
class Source:
    ann_file: Path
    kind: str  # "od" | "vg"
    image_root: Path
    label_map: Path | None = None
    n_records: int = 0
    samples: int | None = None  # records drawn per epoch; None = each record once
    class_balanced_threshold: float | None = None
    name: str = "source"
    names: dict[str, str] = field(default_factory=dict)
    # distinct images as sorted 64-bit hashes of (image root, filename): a VG file has one record per
    # caption, so records are not images; 8 bytes a record keeps GRIT-sized sources countable
    image_keys: np.ndarray | None = field(default=None, repr=False, compare=False)
    index_file: Path | None = None  # FILE.odvgidx the config's IndexedODVGDataset reads (odvgkit.index)

    @property
    def epoch_records(self) -> int:
        return self.n_records if self.samples is None else self.samples

    def as_dict(self) -> dict[str, Any]:
        return {
            "ann_file": str(self.ann_file),
            "kind": self.kind,
            "image_root": str(self.image_root),
            "label_map": str(self.label_map) if self.label_map else None,
            "name": self.name,
            "records": self.n_records,
            "samples_per_epoch": self.epoch_records,
            "class_balanced_threshold": self.class_balanced_threshold,
        }


def sniff(path: Path, filenames: list[int] | None = None) -> tuple[str, int, str | None]:
    """Kind of the first record that has a block, the record count, and the first filename.

    With ``filenames``, the hash of every record's filename is appended to it (image counting).
    """
    kind = "none"
    n = 0
    first = None
    for _, rec in read_records(path):
        n += 1
        if filenames is not None:
            filenames.append(hash(rec.get("filename")))
        if first is None:
            first = rec.get("filename")
        if kind == "none":
            kind = kind_of(rec)
    return kind, n, first


def parse_spec(spec: str) -> tuple[Path, dict[str, str]]:
    head, *opts = spec.split(",")
    options: dict[str, str] = {}
    for opt in opts:
        if "=" not in opt:
            raise OdvgError(f"{spec}: option {opt!r} is not key=value (keys: {', '.join(SPEC_KEYS)})", 2)
        key, value = opt.split("=", 1)
        key = key.strip().replace("-", "_")
        if key not in SPEC_KEYS:
            raise OdvgError(f"{spec}: unknown option {key!r} (keys: {', '.join(SPEC_KEYS)})", 2)
        options[key] = value.strip()
    return Path(head), options


def make_source(
    ann_file: Path,
    *,
    images: str | Path | None = None,
    label_map: str | Path | None = None,
    repeat: float | str | None = None,
    samples: int | str | None = None,
    cbt: float | str | None = None,
    name: str | None = None,
) -> Source:
    """Validate one source: file exists and is ODVG, label map present exactly for OD data."""
    if not ann_file.is_file():
        raise OdvgError(f"{ann_file}: no such file")
    hashes: list[int] = []
    kind, n, first = sniff(ann_file, hashes)
    if kind == "none":
        raise OdvgError(f"{ann_file}: no record has a 'detection' or 'grounding' block (not ODVG)")
    lm_path = Path(label_map) if label_map else None
    names: dict[str, str] = {}
    if kind == "od":
        if lm_path is None:
            raise OdvgError(f"{ann_file}: OD records need a label map: give --label-map FILE or '{ann_file},label_map=FILE'", 2)
        if not lm_path.is_file():
            raise OdvgError(f"{lm_path}: label map not found")
        names = read_label_map(lm_path)
    elif lm_path is not None:
        raise OdvgError(f"{ann_file}: VG (grounding) records take no label map, but {lm_path} was given", 2)
    if repeat is not None and samples is not None:
        raise OdvgError(f"{ann_file}: give repeat or samples, not both", 2)
    try:
        n_samples = round(float(repeat) * n) if repeat is not None else (int(samples) if samples is not None else None)
        threshold = float(cbt) if cbt is not None else None
    except ValueError as exc:
        raise OdvgError(f"{ann_file}: repeat/cbt must be numbers and samples an integer ({exc})", 2) from None
    if n_samples is not None and n_samples < 1:
        raise OdvgError(f"{ann_file}: repeat/samples must draw at least one record per epoch", 2)
    if threshold is not None and (kind != "od" or not 0 < threshold < 1):
        raise OdvgError(f"{ann_file}: cbt (class-balanced threshold) needs OD data and 0 < cbt < 1", 2)
    root = Path(images) if images else ann_file.parent
    if not root.is_dir():
        raise OdvgError(f"{ann_file}: image root {root} is not a directory")
    if first and not (root / first).is_file():
        raise OdvgError(f"{ann_file}:1: filename: image {root / first} not found (wrong image root? give ',images=DIR' or --image-root)")
    if n_samples == n and threshold is None:
        n_samples = None
    salt = hash(str(root.resolve()))
    keys = np.unique(np.fromiter((hash((salt, h)) for h in hashes), dtype=np.int64, count=len(hashes)))
    return Source(ann_file.resolve(), kind, root.resolve(), lm_path.resolve() if lm_path else None, n, n_samples,
                  threshold, name or ann_file.name.split(".")[0], names, keys)


def from_manifest(path: Path) -> list[Source]:
    """Sources of a curation mixture manifest (``odvgkit.curate.mix``, imported lazily)."""
    try:
        from odvgkit.curate.mix import load_manifest
    except ImportError:
        raise OdvgError(f"{path}: mixture manifests need odvgkit.curate.mix, which this odvgkit lacks; list the ODVG files instead", 2) from None
    manifest = load_manifest(path)
    sources = []
    for entry in manifest.sources:
        src = make_source(Path(entry.path), images=entry.image_root, label_map=entry.label_map,
                          samples=entry.samples_per_epoch, cbt=entry.class_balanced_threshold, name=entry.name)
        if src.n_records != entry.num_records:
            raise OdvgError(f"{entry.path}: has {src.n_records} records, the manifest says {entry.num_records}: re-run odvgkit mix")
        sources.append(src)
    return sources


def collect(specs: list[str], image_root: Path | None = None, label_map: Path | None = None) -> list[Source]:
    """Sources from command-line specs (and manifests); ``image_root``/``label_map`` are defaults."""
    if not specs:
        raise OdvgError("no training data given", 2)
    sources: list[Source] = []
    for spec in specs:
        path, opts = parse_spec(spec)
        if is_manifest(path):
            sources.extend(from_manifest(path))
            continue
        sources.append(
            make_source(
                path,
                images=opts.get("images") or image_root,
                label_map=opts.get("label_map") or (label_map if _is_od(path) else None),
                repeat=opts.get("repeat"),
                samples=opts.get("samples"),
                cbt=opts.get("cbt"),
                name=opts.get("name"),
            )
        )
    return sources


def _is_od(path: Path) -> bool:
    if not path.is_file():
        return False
    for _, rec in read_records(path):
        k = kind_of(rec)
        if k != "none":
            return k == "od"
    return False


def count_images(sources: list[Source]) -> int:
    """Distinct images over all sources (the same file under the same root counts once)."""
    keys = [s.image_keys for s in sources if s.image_keys is not None]
    return len(np.unique(np.concatenate(keys))) if keys else 0


def dataset_length(sources: list[Source]) -> int:
    return sum(s.epoch_records for s in sources)

