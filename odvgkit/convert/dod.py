"""D³ (Described Object Detection, shikras/d-cube) → ODVG OD records, a label map and the settings.

D³ keeps its data in two places, and evaluation needs both:

* ``d3_json/d3_{full,pres,abs}_annotations.json`` — COCO ground truth per setting. Every sentence
  (description) is a category, ids 1–422; FULL has all of them, PRES the presence and ABS the
  absence descriptions.
* ``d3_pkl/{images,groups,sentences}.pkl`` — the per-image prompt: an image belongs to a group and is
  prompted with *all* sentences of that group (``groups[g]["inner_sent_id"]``), present on the
  image or not. This list exists only in the pickles.

One record per image (ascending image id): ``detection.instances`` is the FULL ground truth
(``label = category_id - 1``, boxes xywh → xyxy, kept verbatim: evaluation ground truth is never
clipped or dropped), and ``dod = {"image_id", "group_id", "sentences"}`` holds the prompt as 0-based
labels, in the order D³'s own loader returns them (``list(set(ids))`` in CPython, which is what
MMDetection's ``DODDataset`` prompts with). The label map is ``{id - 1: raw_sent}``; the settings
file ``d3_settings.json`` lists each setting's labels and image ids, so FULL, PRES and ABS are
scored from one set of predictions.

A pickle can run arbitrary code when loaded, and D³ is downloaded from the internet: the pickles are
read by :class:`SafeUnpickler`, which only reconstructs builtin containers and numpy arrays/scalars
and refuses (naming it) any other global.
"""

from __future__ import annotations

import codecs
import pickle
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from odvgkit.convert.base import Conversion
from odvgkit.errors import OdvgError, ProblemLog

SETTINGS = {"FULL": "d3_full_annotations.json", "PRES": "d3_pres_annotations.json", "ABS": "d3_abs_annotations.json"}
PICKLES = ("images.pkl", "groups.pkl", "sentences.pkl")
SETTINGS_NAME = "d3_settings.json"
LABEL_MAP_NAME = "d3_label_map.json"

_BUILTINS = {"set", "frozenset", "bytearray", "complex", "slice", "list", "dict", "tuple", "bytes", "str", "int",
             "float", "bool"}
_NUMPY = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),  # protocol-5 arrays
}


def _latin1_encode(text: str, encoding: str = "latin1", errors: str = "strict") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it for bytes (latin-1 only, nothing else)."""
    if codecs.lookup(encoding).name != "iso8859-1":
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r}")
    return codecs.encode(text, "latin1", errors)


class SafeUnpickler(pickle.Unpickler):
    """Unpickles builtin containers and numpy arrays/scalars only; any other global is refused."""

    def find_class(self, module: str, name: str) -> Any:
        module = "builtins" if module == "__builtin__" else module
        if module == "builtins" and name in _BUILTINS:
            return super().find_class(module, name)
        if (module, name) in _NUMPY:
            import numpy as np

            core = np._core if hasattr(np, "_core") else np.core  # numpy 1 pickles name numpy.core
            if module == "numpy":
                return getattr(np, name)
            return getattr(core.numeric if module.endswith("numeric") else core.multiarray, name)
        if module == "numpy.dtypes" and name.endswith("DType"):
            return super().find_class(module, name)
        if module == "_codecs" and name == "encode":
            return _latin1_encode
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed (only builtins and numpy arrays; a pickle can run code)")


def safe_load_pickle(path: Path) -> Any:
    """Load ``path`` with :class:`SafeUnpickler`; a refused global or a broken file is one line."""
    try:
        with path.open("rb") as fh:
            return SafeUnpickler(fh).load()
    except FileNotFoundError:
        raise OdvgError(f"{path}: no such pickle") from None
    except pickle.UnpicklingError as exc:
        raise OdvgError(f"{path}: refused: {exc}") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, ImportError) as exc:
        raise OdvgError(f"{path}: not a readable pickle: {type(exc).__name__}: {exc}") from None


def _json(path: Path) -> dict[str, Any]:
    try:
        doc = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise OdvgError(f"{path}: no such file (D³ ships it in d3_json/)") from None
    except orjson.JSONDecodeError as exc:
        raise OdvgError(f"{path}: malformed JSON: {exc}") from None
    if not isinstance(doc, dict) or not all(isinstance(doc.get(k), list) for k in ("images", "annotations", "categories")):
        raise OdvgError(f"{path}: not a COCO annotation file (needs images, annotations, categories lists)")
    return doc


def _table(obj: Any, path: Path, fields: tuple[str, ...]) -> dict[int, dict[str, Any]]:
    """A D³ pickle is ``{id: {field: value}}``; check that shape once, name the first offender."""
    if not isinstance(obj, dict):
        raise OdvgError(f"{path}: expected a dict of id → entry, got {type(obj).__name__}")
    out: dict[int, dict[str, Any]] = {}
    for key, entry in obj.items():
        if not isinstance(entry, dict):
            raise OdvgError(f"{path}: [{key!r}]: expected a dict entry, got {type(entry).__name__}")
        for f in fields:
            if f not in entry:
                raise OdvgError(f"{path}: [{key!r}]: {f}: missing")
        out[int(key)] = entry
    return out


def _ids(value: Any) -> list[int]:
    if hasattr(value, "tolist"):
        value = value.tolist()
    return [int(v) for v in (value if isinstance(value, (list, tuple, set, frozenset)) else [value])]


def dod_layout(root: str | Path) -> tuple[Path, Path, Path]:
    """``(json dir, pickle dir, image dir)`` of a D³ root; every needed file must be there."""
    root = Path(root)
    if not root.is_dir():
        raise OdvgError(f"{root}: no such D³ root directory")
    jdir, pdir = root / "d3_json", root / "d3_pkl"
    for name in PICKLES:
        if not (pdir / name).is_file():
            raise OdvgError(f"{pdir / name}: missing; D³'s per-image prompts exist only in d3_pkl/ (download it too)")
    for name in SETTINGS.values():
        if not (jdir / name).is_file():
            raise OdvgError(f"{jdir / name}: missing; D³'s ground truth is d3_json/d3_{{full,pres,abs}}_annotations.json")
    return jdir, pdir, root / "d3_images"


def dod_to_odvg(root: str | Path, problems: ProblemLog | None = None) -> tuple[Conversion, dict[str, Any]]:
    """The conversion (records + label map) and the settings document of a D³ root."""
    problems = problems if problems is not None else ProblemLog()
    jdir, pdir, _ = dod_layout(root)
    images = _table(safe_load_pickle(pdir / "images.pkl"), pdir / "images.pkl", ("file_name", "height", "width", "group_id"))
    groups = _table(safe_load_pickle(pdir / "groups.pkl"), pdir / "groups.pkl", ("inner_sent_id",))
    sents = _table(safe_load_pickle(pdir / "sentences.pkl"), pdir / "sentences.pkl", ("raw_sent",))
    label_map = {str(sid - 1): str(sents[sid]["raw_sent"]) for sid in sorted(sents)}
    if any(sid < 1 for sid in sents):
        raise OdvgError(f"{pdir / 'sentences.pkl'}: sentence ids must start at 1 (category_id = sentence id)")
    docs = {name: _json(jdir / fname) for name, fname in SETTINGS.items()}
    settings: dict[str, Any] = {}
    for name, doc in docs.items():
        path = jdir / SETTINGS[name]
        cat_ids = sorted(int(c["id"]) for c in doc["categories"])
        unknown = [c for c in cat_ids if c not in sents]
        if unknown:
            raise OdvgError(f"{path}: categories: id {unknown[0]} is not a sentence of sentences.pkl")
        settings[name] = {"labels": [c - 1 for c in cat_ids], "image_ids": sorted(int(i["id"]) for i in doc["images"])}
    full_path = jdir / SETTINGS["FULL"]
    stats: Counter[str] = Counter()
    by_image: dict[int, list[dict[str, Any]]] = {}
    for n, ann in enumerate(docs["FULL"]["annotations"]):
        where = f"annotations[{n}]"
        try:
            img, cat = int(ann["image_id"]), int(ann["category_id"])
            x, y, w, h = (float(v) for v in ann["bbox"])
        except (KeyError, TypeError, ValueError):
            problems.error("bad-annotation", full_path, where, "bbox", "needs image_id, category_id and bbox [x, y, w, h]")
            stats["dropped:bad-annotation"] += 1
            continue
        if img not in images:
            problems.error("unknown-image", full_path, where, "image_id", f"{img} is not an image of images.pkl")
            stats["dropped:unknown-image"] += 1
            continue
        if cat not in sents:
            problems.error("unknown-sentence", full_path, where, "category_id", f"{cat} is not a sentence of sentences.pkl")
            stats["dropped:unknown-sentence"] += 1
            continue
        inst: dict[str, Any] = {"bbox": [x, y, x + w, y + h], "label": cat - 1, "category": label_map[str(cat - 1)]}
        if int(ann.get("iscrowd", 0) or 0):
            inst["iscrowd"] = 1
        by_image.setdefault(img, []).append(inst)
    # the sub-settings must be FULL restricted to their sentences, or scoring them from FULL is wrong
    for name in ("PRES", "ABS"):
        labels = {c + 1 for c in settings[name]["labels"]}
        expected = sum(1 for a in docs["FULL"]["annotations"] if int(a.get("category_id", 0)) in labels)
        if len(docs[name]["annotations"]) != expected:
            raise OdvgError(f"{jdir / SETTINGS[name]}: {len(docs[name]['annotations'])} annotations, but FULL has "
                            f"{expected} for these sentences; the settings must share one ground truth")

    def records() -> Iterator[dict[str, Any]]:
        for img_id in sorted(images):
            info = images[img_id]
            gid = int(info["group_id"])
            if gid not in groups:
                problems.error("unknown-group", pdir / "images.pkl", f"[{img_id}]", "group_id", f"{gid} is not a group of groups.pkl")
                stats["dropped:unknown-group"] += 1
                continue
            prompt: set[int] = set()
            prompt |= set(_ids(groups[gid]["inner_sent_id"]))  # D³'s get_sent_ids(group_ids=…) order
            missing = [s for s in prompt if s not in sents]
            if missing:
                problems.error("unknown-sentence", pdir / "groups.pkl", f"[{gid}]", "inner_sent_id",
                               f"{missing[0]} is not a sentence of sentences.pkl")
                stats["dropped:unknown-sentence"] += 1
                continue
            instances = by_image.get(img_id, [])
            stats["images"] += 1
            stats["boxes"] += len(instances)
            stats["prompt_sentences"] += len(prompt)
            yield {
                "filename": str(info["file_name"]),
                "height": int(info["height"]),
                "width": int(info["width"]),
                "detection": {"instances": instances},
                "dod": {"image_id": img_id, "group_id": gid, "sentences": [s - 1 for s in prompt]},
            }

    stats["sentences"] = len(sents)
    stats["absence_sentences"] = len(settings["ABS"]["labels"])
    return Conversion(records=records(), label_map=label_map, stats=stats, total=len(images)), settings
