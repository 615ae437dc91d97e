"""Training sources: which ODVG files, their kind (OD/VG), label maps, image roots and weights.

A source is given on the command line as ``FILE[,images=DIR][,label_map=FILE][,repeat=N][,ratio=F]``
or comes from a curation mixture manifest (``odvgkit.curate.mix.load_manifest``, imported lazily
so this works before and after that module exists). OD files need a label map, VG files must not
have one: ODVGDataset decides the mode from it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from odvgkit.errors import OdvgError
from odvgkit.io import read_label_map, read_records
from odvgkit.records import kind_of

MANIFEST_SUFFIXES = (".yaml", ".yml", ".toml", ".mix.json")


@dataclass
class Source:
    ann_file: Path
    kind: str  # "od" | "vg"
    image_root: Path
    label_map: Path | None = None
    repeat: int = 1
    ratio: float = 1.0
    n_records: int = 0
    names: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ann_file": str(self.ann_file),
            "kind": self.kind,
            "image_root": str(self.image_root),
            "label_map": str(self.label_map) if self.label_map else None,
            "repeat": self.repeat,
            "ratio": self.ratio,
            "records": self.n_records,
        }


def sniff(path: Path) -> tuple[str, int]:
    """Kind of the first record that has a block, and the record count (streamed)."""
    kind = "none"
    n = 0
    for _, rec in read_records(path):
        n += 1
        if kind == "none":
            kind = kind_of(rec)
    return kind, n


def parse_spec(spec: str) -> tuple[Path, dict[str, str]]:
    head, *opts = spec.split(",")
    options: dict[str, str] = {}
    for opt in opts:
        if "=" not in opt:
            raise OdvgError(f"{spec}: option {opt!r} is not key=value (keys: images, label_map, repeat, ratio)", 2)
        key, value = opt.split("=", 1)
        key = key.strip().replace("-", "_")
        if key not in {"images", "label_map", "repeat", "ratio"}:
            raise OdvgError(f"{spec}: unknown option {key!r} (keys: images, label_map, repeat, ratio)", 2)
        options[key] = value.strip()
    return Path(head), options


def make_source(
    ann_file: Path,
    *,
    images: str | Path | None = None,
    label_map: str | Path | None = None,
    repeat: float | str = 1,
    ratio: float | str = 1.0,
) -> Source:
    """Validate one source: file exists and is ODVG, label map present exactly for OD data."""
    if not ann_file.is_file():
        raise OdvgError(f"{ann_file}: no such file")
    kind, n = sniff(ann_file)
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
    try:
        rep = int(repeat)
        rat = float(ratio)
    except ValueError as exc:
        raise OdvgError(f"{ann_file}: repeat must be an integer and ratio a number ({exc})", 2) from None
    if rep < 1 or not 0 < rat <= 1:
        raise OdvgError(f"{ann_file}: repeat must be ≥ 1 and ratio in (0, 1]", 2)
    root = Path(images) if images else ann_file.parent
    if not root.is_dir():
        raise OdvgError(f"{ann_file}: image root {root} is not a directory")
    return Source(ann_file.resolve(), kind, root.resolve(), lm_path.resolve() if lm_path else None, rep, rat, n, names)


def from_manifest(path: Path) -> list[Source]:
    """Sources of a curation mixture manifest (needs ``odvgkit.curate.mix``)."""
    try:
        from odvgkit.curate.mix import load_manifest  # type: ignore[import-not-found]
    except ImportError:
        raise OdvgError(f"{path}: mixture manifests need odvgkit.curate.mix, which this odvgkit lacks; list the ODVG files instead", 2) from None
    manifest = load_manifest(path)
    entries = _get(manifest, "sources", "entries", "datasets") or manifest
    sources = []
    for entry in entries:
        ann = _get(entry, "path", "ann_file", "file", "records")
        if ann is None:
            raise OdvgError(f"{path}: a manifest entry has no path")
        ann_path = Path(str(ann))
        if not ann_path.is_absolute():
            ann_path = path.parent / ann_path
        root = _get(entry, "image_root", "images", "img_root", "data_prefix")
        lm = _get(entry, "label_map", "label_map_file")
        if root is not None and not Path(str(root)).is_absolute():
            root = path.parent / str(root)
        if lm is not None and not Path(str(lm)).is_absolute():
            lm = path.parent / str(lm)
        repeat = _get(entry, "repeat", "times") or 1
        ratio = _get(entry, "ratio", "sample_ratio", "fraction") or 1.0
        sources.append(make_source(ann_path, images=root, label_map=lm, repeat=repeat, ratio=ratio))
    return sources


def _get(obj: Any, *names: str) -> Any:
    for name in names:
        if isinstance(obj, dict) and name in obj:
            return obj[name]
        if not isinstance(obj, dict) and hasattr(obj, name):
            return getattr(obj, name)
    return None


def collect(specs: list[str], image_root: Path | None = None, label_map: Path | None = None) -> list[Source]:
    """Sources from command-line specs (and manifests); ``image_root``/``label_map`` are defaults."""
    if not specs:
        raise OdvgError("no training data given", 2)
    sources: list[Source] = []
    for spec in specs:
        path, opts = parse_spec(spec)
        if path.name.endswith(MANIFEST_SUFFIXES):
            sources.extend(from_manifest(path))
            continue
        sources.append(
            make_source(
                path,
                images=opts.get("images") or image_root,
                label_map=opts.get("label_map") or (label_map if _is_od(path) else None),
                repeat=opts.get("repeat", 1),
                ratio=opts.get("ratio", 1.0),
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


def dataset_length(sources: list[Source]) -> int:
    return sum(max(1, int(s.n_records * s.ratio)) * s.repeat for s in sources)


def load_json(path: Path) -> Any:
    with path.open(encoding="utf-8") as fh:
        return json.load(fh)
