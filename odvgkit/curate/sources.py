"""What an input file is, and the identity of every image it names.

Leakage checks compare *images*, whatever file format names them. Every supported input is reduced
to a stream of :class:`ImageRef` — the image's COCO id when it has one (COCO 2014 and 2017 share
ids, so ``COCO_train2014_000000123456.jpg``, ``train2017/000000123456.jpg`` and MDETR's
``original_id`` all meet on ``123456``), its normalised file name, and its path on disk when an
image root is known.

Supported inputs (detected from content, not trusted names):

=================== ===============================================================================
kind                recognised by
=================== ===============================================================================
``odvg``            JSON Lines / Parquet records with ``filename`` (one record per image, or per
                    expression for refexp-style VG files: records of one image share a key)
``coco``            a JSON object with ``images[]`` carrying ``file_name`` (COCO, Objects365, ODinW)
``lvis``            a JSON object with ``images[]`` carrying ``coco_url`` and no ``file_name``
``mdetr``           MDETR refexp/grounding json: ``images[]`` carrying ``original_id``
``grefs``           official gRefCOCO ``grefs(unc).json``: a JSON list of refs with ``image_id``,
                    ``split``
``refs``            official RefCOCO/RefCOCO+/RefCOCOg ``refs(unc|umd|google).p`` pickles (read
                    with a loader that refuses any Python object but lists, dicts, strings, numbers)
=================== ===============================================================================
"""

from __future__ import annotations

import io
import pickle
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import orjson

from odvgkit.errors import OdvgError, ProblemLog
from odvgkit.io import format_of, open_binary, read_records
from odvgkit.io.jsonstream import stream_members
from odvgkit.io.text import strip_bom

_COCO_NAME = re.compile(r"(?:^|_)(\d{12})\.(?:jpg|jpeg|png)$", re.IGNORECASE)
_COCO_URL = re.compile(r"cocodataset\.org/.*?(\d{12})\.jpg", re.IGNORECASE)
_PEEK = 1 << 20

KINDS = ("odvg", "coco", "lvis", "mdetr", "grefs", "refs")
EVAL_SPLITS = ("val", "testA", "testB", "test")
_MDETR_EVAL = re.compile(
    r"^finetune_(refcoco|refcoco\+|refcocog|grefcoco)_(val|testA|testB|test)\.json$"
)
_MDETR_ANY = re.compile(r"^finetune_(refcoco|refcoco\+|refcocog|grefcoco)_(\w+)\.json$")
_GREFS = re.compile(r"^grefs\((\w+)\)\.json$")
_REFS = re.compile(r"^refs\((\w+)\)\.p$")
_REFEXP_DIRS = ("refcoco", "refcoco+", "refcocog", "grefcoco")


@dataclass(frozen=True, slots=True)
class ImageRef:
    """One image named by an input file.

    ``where`` locates it for messages (``3`` = line 3, ``"images[12]"``); ``split`` is the
    evaluation split for benchmark files (``None`` for training data).
    """

    where: int | str
    file_name: str
    coco_id: int | None
    path: Path | None
    split: str | None = None

    @property
    def name_key(self) -> str:
        """The file name compared across datasets: basename, lower case."""
        return PurePosixPath(self.file_name.replace("\\", "/")).name.lower()


@dataclass(frozen=True, slots=True)
class Source:
    """An input file, its detected kind, its image root and a display name (benchmark)."""

    path: Path
    kind: str
    root: Path | None = None
    benchmark: str = ""


def coco_id_from_name(name: str) -> int | None:
    """``COCO_train2014_000000123456.jpg`` / ``train2017/000000123456.jpg`` → ``123456``."""
    m = _COCO_NAME.search(PurePosixPath(name.replace("\\", "/")).name)
    return int(m.group(1)) if m else None


def split_root(spec: str) -> tuple[Path, Path | None]:
    """``FILE@IMAGE_ROOT`` → ``(FILE, IMAGE_ROOT)``; a path that exists as given is never split."""
    if "@" in spec and not Path(spec).exists():
        file, root = spec.rsplit("@", 1)
        return Path(file), Path(root) if root else None
    return Path(spec), None


def detect_kind(path: Path) -> str:
    """The kind of ``path`` (see the module table); an unknown file is a one-line error."""
    if not path.exists():
        raise OdvgError(f"{path}: no such file")
    if path.is_dir():
        raise OdvgError(f"{path}: is a directory, expected a file")
    name = path.name.lower()
    if name.endswith(".p") or name.endswith(".pkl") or name.endswith(".pickle"):
        return "refs"
    if name.endswith(".parquet"):
        return "odvg"
    try:
        format_of(path)
    except OdvgError:
        raise OdvgError(
            f"{path}: unknown file type (expected ODVG .jsonl/.json/.parquet, a COCO/LVIS/MDETR "
            "json, grefs(unc).json or refs(*).p)"
        ) from None
    with open_binary(path) as fh:
        head = strip_bom(fh.read(_PEEK))
    first, nl, _ = head.partition(b"\n")
    if nl or len(head) < _PEEK:  # a one-record file may lack the final newline
        try:
            obj = orjson.loads(first)
        except orjson.JSONDecodeError:
            obj = None
        if isinstance(obj, dict) and "filename" in obj:
            return "odvg"
    stripped = head.lstrip()
    if stripped.startswith(b"["):
        return "grefs"
    if stripped.startswith(b"{"):
        return "json-object"  # refined by load_document: coco | lvis | mdetr
    raise OdvgError(f"{path}: neither ODVG JSON Lines nor a JSON document")


def load_document(path: Path) -> Any:
    """A whole JSON document (for JSON lists such as ``grefs(unc).json``)."""
    try:
        with open_binary(path) as fh:
            return orjson.loads(strip_bom(fh.read()))
    except orjson.JSONDecodeError as exc:
        raise OdvgError(f"{path}: malformed JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None


def load_images(path: Path) -> dict[str, Any]:
    """``{"images": [...]}`` of a COCO/LVIS/MDETR json object document (other keys skipped).

    Streamed with :func:`odvgkit.io.jsonstream.stream_members`: the annotation polygons that make
    up most of COCO train2017 are skipped without being materialised or held in memory.
    """
    images: list[Any] = []
    found = False
    for _, first, items in stream_members(path, {"images": Any}):
        if first < 0:
            raise OdvgError(f"{path}: unknown benchmark/dataset file: 'images' is not a list")
        found = True
        images.extend(items)
    return {"images": images} if found else {}


def object_kind(path: Path, doc: Any) -> str:
    """Refine a JSON object document into ``coco``, ``lvis`` or ``mdetr``."""
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list):
        raise OdvgError(f"{path}: unknown benchmark/dataset file: a JSON object without an 'images' list")
    images = doc["images"]
    sample = next((im for im in images if isinstance(im, dict)), {})
    if "original_id" in sample:
        return "mdetr"
    if "file_name" not in sample and "coco_url" in sample:
        return "lvis"
    return "coco"


class _SafeUnpickler(pickle.Unpickler):
    """refs(*).p are plain lists of dicts: any class reference means this is not one of them."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refuses to load {module}.{name}")


def load_refs_pickle(path: Path) -> list[dict[str, Any]]:
    try:
        data = _SafeUnpickler(io.BytesIO(path.read_bytes()), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise OdvgError(f"{path}: not a refs(*).p pickle of plain lists/dicts: {exc}") from None
    if not isinstance(data, list):
        raise OdvgError(f"{path}: expected a list of refs, got {type(data).__name__}")
    return data


def benchmark_name(path: Path, kind: str) -> str:
    """A readable benchmark name: ``refcoco+``, ``grefcoco``, ``refcocog(umd)``, ``lvis_v1_val``."""
    name = path.name
    parent = path.parent.name.lower()
    if m := _MDETR_ANY.match(name):
        return m.group(1)
    if m := _GREFS.match(name):
        return parent if parent in _REFEXP_DIRS else "grefcoco"
    if m := _REFS.match(name):
        base = parent if parent in _REFEXP_DIRS else "refcoco"
        return f"{base}({m.group(1)})"
    stem = name
    for ext in (".json.gz", ".jsonl.gz", ".json", ".jsonl", ".parquet", ".p", ".pkl", ".pickle"):
        if stem.lower().endswith(ext):
            stem = stem[: -len(ext)]
            break
    return stem


def mdetr_split(path: Path) -> str | None:
    m = _MDETR_ANY.match(path.name)
    return m.group(2) if m else None


def open_source(spec: str | Path, root: Path | None = None) -> Source:
    """Resolve ``FILE[@ROOT]`` into a :class:`Source` with its detected kind."""
    file, at_root = split_root(str(spec))
    kind = detect_kind(file)
    return Source(file, kind, at_root or root, benchmark_name(file, kind))


def iter_images(
    source: Source,
    problems: ProblemLog | None = None,
    eval_only: bool = False,
) -> Iterator[ImageRef]:
    """Every image ``source`` names, in file order, each image once per record.

    With ``eval_only`` the training refs of grefs/refs files are skipped (their ``split`` field
    says which refs are evaluation data); other kinds are taken whole.
    """
    kind = source.kind
    if kind == "odvg":
        yield from _odvg_images(source, problems)
        return
    if kind == "refs":
        yield from _refs_images(source, load_refs_pickle(source.path), eval_only)
        return
    if kind == "grefs":
        doc = load_document(source.path)
        if not isinstance(doc, list):
            raise OdvgError(f"{source.path}: expected a JSON list of refs")
        yield from _refs_images(source, doc, eval_only)
        return
    doc = load_images(source.path)
    sub = object_kind(source.path, doc)
    yield from _json_images(source, sub, doc["images"])


def _join(root: Path | None, name: str) -> Path | None:
    return root / name if root is not None else None


def _odvg_images(source: Source, problems: ProblemLog | None) -> Iterator[ImageRef]:
    for line, rec in read_records(source.path, problems):
        name = rec.get("filename")
        if not isinstance(name, str) or not name:
            if problems is None:
                raise OdvgError(f"{source.path}:{line}: filename: missing or not a string")
            problems.error("missing-filename", source.path, line, "filename", "missing or not a string")
            continue
        yield ImageRef(line, name, coco_id_from_name(name), _join(source.root, name))


def _json_images(source: Source, sub: str, images: list[Any]) -> Iterator[ImageRef]:
    split = mdetr_split(source.path) if sub == "mdetr" else None
    for i, im in enumerate(images):
        if not isinstance(im, dict):
            raise OdvgError(f"{source.path}: images[{i}]: expected an object")
        where = f"images[{i}]"
        if sub == "lvis":
            url = str(im.get("coco_url", ""))
            name = url.replace("http://images.cocodataset.org/", "").replace(
                "https://images.cocodataset.org/", ""
            )
            coco_id = im.get("id") if _COCO_URL.search(url) else coco_id_from_name(name)
        elif sub == "mdetr":
            name = str(im.get("file_name", ""))
            coco_id = im.get("original_id")
            if not isinstance(coco_id, int):
                coco_id = coco_id_from_name(name)
        else:
            name = str(im.get("file_name", ""))
            named = coco_id_from_name(name)
            url = str(im.get("coco_url", ""))
            # A COCO-format file's ids are COCO ids only when its images are COCO images.
            coco_id = im.get("id") if (named is not None or _COCO_URL.search(url)) else None
            if named is not None and coco_id != named:
                coco_id = named
        if not name:
            raise OdvgError(f"{source.path}: {where}: file_name: missing")
        yield ImageRef(where, name, coco_id if isinstance(coco_id, int) else None,
                       _join(source.root, name), split)


def _refs_images(source: Source, refs: list[Any], eval_only: bool) -> Iterator[ImageRef]:
    for i, ref in enumerate(refs):
        if not isinstance(ref, dict) or not isinstance(ref.get("image_id"), int):
            raise OdvgError(f"{source.path}: refs[{i}]: expected an object with an integer image_id")
        split = str(ref.get("split", ""))
        if eval_only and split not in EVAL_SPLITS:
            continue
        image_id = ref["image_id"]
        name = str(ref.get("file_name") or f"COCO_train2014_{image_id:012d}.jpg")
        # refs file_name is COCO_train2014_<id>_<ann>.jpg: the id is authoritative.
        yield ImageRef(f"refs[{i}]", name, image_id, _join(source.root, name), split or None)


def scan_refexp(paths: list[Path]) -> tuple[list[Source], list[Path]]:
    """RefCOCO-family evaluation files under ``paths`` (files or directories, searched recursively).

    Returns ``(eval sources, skipped files)``. Recognised: MDETR
    ``finetune_{refcoco,refcoco+,refcocog,grefcoco}_{val,testA,testB,test}.json``, official
    ``grefs(*).json`` and ``refs(*).p`` (only their non-train refs count). An explicitly named file
    that is none of these is an error; inside a directory, other files are skipped and listed.
    """
    found: list[Source] = []
    skipped: list[Path] = []
    for p in paths:
        if p.is_dir():
            for f in sorted(x for x in p.rglob("*") if x.is_file()):
                if _MDETR_EVAL.match(f.name) or _GREFS.match(f.name) or _REFS.match(f.name):
                    found.append(Source(f, _refexp_kind(f), None, benchmark_name(f, "")))
                elif f.suffix.lower() in (".json", ".p"):
                    skipped.append(f)
        elif p.is_file():
            if not (_MDETR_EVAL.match(p.name) or _GREFS.match(p.name) or _REFS.match(p.name)):
                raise OdvgError(
                    f"{p}: unknown benchmark file (expected finetune_<refcoco|refcoco+|refcocog|grefcoco>_"
                    "<val|testA|testB|test>.json, grefs(unc).json or refs(<unc|umd|google>).p)"
                )
            found.append(Source(p, _refexp_kind(p), None, benchmark_name(p, "")))
        else:
            raise OdvgError(f"{p}: no such file or directory")
    if not found:
        where = ", ".join(str(p) for p in paths)
        raise OdvgError(
            f"{where}: no RefCOCO/RefCOCO+/RefCOCOg/gRefCOCO evaluation files found "
            "(finetune_*_{val,testA,testB,test}.json, grefs(unc).json, refs(*).p)"
        )
    return found, skipped


def _refexp_kind(path: Path) -> str:
    if _REFS.match(path.name):
        return "refs"
    if _GREFS.match(path.name):
        return "grefs"
    return "json-object"
