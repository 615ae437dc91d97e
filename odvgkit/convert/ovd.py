"""Open-vocabulary splits: COCO 48/17 (``coco2ovd``) and LVIS without rare classes (``lvis2ovd``).

``coco2ovd`` (upstream §3.2) writes COCO jsons: train keeps the 48 base classes, val keeps base +
novel; every kept category gets ``"split": "seen" | "unseen"``; crowd annotations are kept; images
with no kept annotation are dropped. The split table ships in ``odvgkit/data/coco_ovd_48_17.json``.
Inputs are streamed twice (which images survive, then the copy), elements copied byte for byte.

``lvis2ovd`` (upstream §3.13) removes rare-class instances from an ``lvis2odvg`` output. The label
map stays **sparse** by default (upstream's keys, e.g. no ``"0"`` if class 1 is rare — MMDetection's
``ODVGDataset`` looks labels up by key, so this loads); ``renumber=True`` makes it dense ``0..K-1``
and rewrites every label (and the LVIS federated fields) accordingly.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import msgspec

from odvgkit.convert._stream import OnBytes, copy_document, decode_raw
from odvgkit.convert.base import Conversion
from odvgkit.convert.lvis import Category
from odvgkit.errors import OdvgError, ProblemLog
from odvgkit.io import check_distinct, read_label_map, read_records
from odvgkit.io.jsonstream import stream_members
from odvgkit.records import items_of


def coco_ovd_split() -> tuple[list[str], list[str]]:
    data = json.loads(resources.files("odvgkit.data").joinpath("coco_ovd_48_17.json").read_text("utf-8"))
    return list(data["base"]), list(data["novel"])


class _Ann(msgspec.Struct, gc=False):
    image_id: int
    category_id: int


class _Img(msgspec.Struct, gc=False):
    id: int


class _Cat(msgspec.Struct, gc=False):
    id: int
    name: str


def category_splits(path: Path, problems: ProblemLog) -> dict[int, str]:
    """``category id → "seen" | "unseen"`` from the categories of a COCO json (by name)."""
    base, novel = coco_ovd_split()
    split = {n: "seen" for n in base} | {n: "unseen" for n in novel}
    out: dict[int, str] = {}
    for _, _, items in stream_members(path, {"categories": _Cat}, problems=problems):
        for c in items:
            if c.name in split:
                out[c.id] = split[c.name]
    if not out:
        raise OdvgError(f"{path}: categories: no COCO category names of the 48/17 split found")
    return out


def coco_ovd_filter(
    path: str | Path, output: str | Path, splits: dict[int, str], allowed: set[str],
    problems: ProblemLog | None = None, on_bytes: OnBytes = None,
) -> Counter[str]:
    """Write ``output``: ``path`` restricted to categories whose split is in ``allowed``."""
    path, output = Path(path), Path(output)
    check_distinct(output, [path])
    problems = problems if problems is not None else ProblemLog()
    keep_cats = {cid for cid, s in splits.items() if s in allowed}
    with_ann: set[int] = set()
    for _, _, items in stream_members(path, {"annotations": _Ann}, problems=problems, on_bytes=on_bytes):
        with_ann.update(a.image_id for a in items if a.category_id in keep_cats)
    stats: Counter[str] = Counter()

    def rewrite(key: str, _: int, raw: msgspec.Raw) -> Any:
        if key == "images":
            keep = decode_raw(raw, _Img).id in with_ann
            stats["images" if keep else "dropped:images-without-kept-annotation"] += 1
            return raw if keep else None
        if key == "annotations":
            keep = decode_raw(raw, _Ann).category_id in keep_cats
            stats["annotations" if keep else "dropped:annotations"] += 1
            return raw if keep else None
        if key == "categories":
            cat = msgspec.json.decode(raw)
            if not isinstance(cat, dict) or type(cat.get("id")) is not int or cat["id"] not in keep_cats:
                return None
            cat["split"] = splits[cat["id"]]
            stats["categories"] += 1
            return cat
        return raw

    copy_document(path, output, rewrite, problems, ensure=("images", "annotations", "categories"))
    return stats


def coco_to_ovd(
    train: str | Path, val: str | Path, train_out: str | Path, val_out: str | Path,
    problems: ProblemLog | None = None,
) -> dict[str, Counter[str]]:
    """Both outputs; the id → split map comes from the train categories (as upstream)."""
    problems = problems if problems is not None else ProblemLog()
    for out in (train_out, val_out):
        check_distinct(out, [train, val])
    if Path(train_out).resolve() == Path(val_out).resolve():
        raise OdvgError(f"{train_out}: train and val outputs must differ")
    splits = category_splits(Path(train), problems)
    return {
        "train": coco_ovd_filter(train, train_out, splits, {"seen"}, problems),
        "val": coco_ovd_filter(val, val_out, splits, {"seen", "unseen"}, problems),
    }


def lvis_base_labels(lvis_json: str | Path, problems: ProblemLog | None = None) -> set[int]:
    """0-based labels of the LVIS categories whose ``frequency`` is not ``"r"``."""
    problems = problems if problems is not None else ProblemLog()
    base: set[int] = set()
    seen = 0
    for _, _, items in stream_members(lvis_json, {"categories": Category}, problems=problems):
        for c in items:
            seen += 1
            if c.frequency is None:
                raise OdvgError(f"{lvis_json}: categories: id {c.id}: no 'frequency' (not an LVIS file?)")
            if c.frequency != "r":
                base.add(c.id - 1)
    if not seen:
        raise OdvgError(f"{lvis_json}: categories: missing or empty")
    return base


def lvis_to_ovd(
    od_path: str | Path, label_map_path: str | Path, lvis_json: str | Path, *, renumber: bool = False,
    problems: ProblemLog | None = None,
) -> Conversion:
    """Drop rare-class instances; label map sparse (upstream) or renumbered dense."""
    problems = problems if problems is not None else ProblemLog()
    base = lvis_base_labels(lvis_json, problems)
    lm = read_label_map(label_map_path)
    from odvgkit.curate.labels import check_keys

    check_keys(lm, Path(label_map_path))  # "a": "cat" would be a ValueError below
    kept = sorted(int(k) for k in lm if int(k) in base)
    remap = {old: new for new, old in enumerate(kept)} if renumber else {old: old for old in kept}
    label_map = {str(remap[k]): lm[str(k)] for k in kept}
    stats: Counter[str] = Counter()

    def records() -> Iterator[dict[str, Any]]:
        for _, rec in read_records(od_path, problems):
            det = rec.get("detection") if isinstance(rec.get("detection"), dict) else {}
            instances = []
            for inst in items_of(det.get("instances")):
                if not isinstance(inst, dict):
                    continue
                new = remap.get(inst.get("label"))  # type: ignore[arg-type]
                if new is None:
                    stats["dropped:rare-instances"] += 1
                    continue
                if new != inst["label"]:
                    inst = {**inst, "label": new}
                instances.append(inst)
            rec = {**rec, "detection": {**det, "instances": instances}}
            for key in ("neg_category_ids", "not_exhaustive_category_ids"):
                if isinstance(rec.get(key), list):
                    rec[key] = [remap[v] for v in rec[key] if v in remap]
            stats["images"] += 1
            stats["boxes"] += len(instances)
            yield rec

    return Conversion(records=records(), label_map=label_map, stats=stats)
