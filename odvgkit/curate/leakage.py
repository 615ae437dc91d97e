"""Which training images also occur in an evaluation set.

An evaluation set is indexed once (:func:`index_eval`), then every training source is streamed
against it (:func:`audit_source`). Four independent tests, chosen with ``methods``:

========== =================================================================================
``id``     the same COCO image id (COCO 2014/2017 file names, MDETR ``original_id``, LVIS ids)
``name``   the same file basename, lower case (catches renamed roots / prefixes)
``content`` byte-identical files (BLAKE2b of the bytes; needs image roots)
``phash``  perceptual hashes within ``threshold`` bits (re-encoded / resized copies; needs roots)
========== =================================================================================

A training image leaks when any chosen test matches any evaluation image; every match keeps its
cause (benchmark, split, test, the evaluation file name, the Hamming distance) so the removal
manifest says exactly why an image went.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from odvgkit.curate.hashes import HashCache, PhashIndex, hash_files
from odvgkit.curate.sources import ImageRef, Source, iter_images
from odvgkit.errors import OdvgError, ProblemLog

METHODS = ("id", "name", "content", "phash")
HASH_METHODS = ("content", "phash")


@dataclass(frozen=True, slots=True)
class EvalImage:
    benchmark: str
    split: str
    file: str
    file_name: str


@dataclass(frozen=True, slots=True)
class Cause:
    """Why one training image leaks: which evaluation image, by which test."""

    benchmark: str
    split: str
    method: str
    eval_file_name: str
    distance: int | None = None

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"benchmark": self.benchmark, "split": self.split, "method": self.method,
                             "eval_file_name": self.eval_file_name}
        if self.distance is not None:
            d["distance"] = self.distance
        return d


@dataclass
class EvalIndex:
    methods: tuple[str, ...]
    threshold: int = 4
    images: list[EvalImage] = field(default_factory=list)
    by_id: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    by_name: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    by_content: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    phash: PhashIndex | None = None
    phash_owner: list[int] = field(default_factory=list)
    unreadable: int = 0
    sources: list[Source] = field(default_factory=list)


def parse_methods(text: str) -> tuple[str, ...]:
    methods = tuple(dict.fromkeys(m.strip() for m in text.split(",") if m.strip()))
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise OdvgError(f"--by {text!r}: choose from {', '.join(METHODS)} (comma separated)")
    return methods


def _hashing(methods: Iterable[str]) -> bool:
    return any(m in HASH_METHODS for m in methods)


def index_eval(
    sources: list[Source],
    methods: tuple[str, ...],
    threshold: int = 4,
    cache: HashCache | None = None,
    workers: int = 8,
    problems: ProblemLog | None = None,
    advance: Callable[[int], None] | None = None,
) -> EvalIndex:
    """Index every image of the evaluation ``sources`` (only their evaluation refs for refs files)."""
    index = EvalIndex(methods, threshold, sources=list(sources))
    if "phash" in methods:
        index.phash = PhashIndex(threshold)
    for src in sources:
        if _hashing(methods) and src.root is None:
            raise OdvgError(f"{src.path}: --by content/phash needs its image root: give it as FILE@IMAGE_ROOT")
        seen: set[tuple[int | str, str | None]] = set()
        refs: list[tuple[int, ImageRef]] = []
        for ref in iter_images(src, problems, eval_only=True):
            key = (ref.coco_id if ref.coco_id is not None else ref.name_key, ref.split)
            if key in seen:  # MDETR files hold one "image" per expression
                continue
            seen.add(key)
            idx = len(index.images)
            index.images.append(EvalImage(src.benchmark, ref.split or "-", str(src.path), ref.file_name))
            if "id" in methods and ref.coco_id is not None:
                index.by_id[ref.coco_id].append(idx)
            if "name" in methods:
                index.by_name[ref.name_key].append(idx)
            if ref.path is not None and _hashing(methods):
                refs.append((idx, ref))
        if refs:
            for (idx, _ref), res in hash_files(refs, lambda item: item[1].path, cache or HashCache(None),
                                               phash="phash" in methods, workers=workers, advance=advance):
                if res.error is not None:
                    index.unreadable += 1
                    if problems is not None:
                        problems.warn("unreadable-image", src.path, _ref.where, "image", res.error)
                    continue
                if "content" in methods and res.content is not None:
                    index.by_content[res.content].append(idx)
                if index.phash is not None and res.phash is not None:
                    index.phash.add(res.phash)
                    index.phash_owner.append(idx)
    return index


@dataclass
class SourceAudit:
    """The leaks of one training source against the evaluation index."""

    source: Source
    images: int = 0
    unreadable: int = 0
    leaks: dict[int | str, list[Cause]] = field(default_factory=dict)
    file_names: dict[int | str, str] = field(default_factory=dict)
    coco_ids: dict[int | str, int | None] = field(default_factory=dict)

    def pairs(self) -> list[dict[str, Any]]:
        """One row per (benchmark, split): distinct leaking images per test and in total."""
        per: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
        examples: dict[tuple[str, str], list[str]] = defaultdict(list)
        for where, causes in self.leaks.items():
            keys: dict[tuple[str, str], set[str]] = defaultdict(set)
            for c in causes:
                keys[(c.benchmark, c.split)].add(c.method)
            for key, methods in keys.items():
                per[key]["images"] += 1
                for m in methods:
                    per[key][m] += 1
                if len(examples[key]) < 3:
                    examples[key].append(self.file_names.get(where, str(where)))
        rows = []
        for (bench, split), counts in sorted(per.items()):
            row: dict[str, Any] = {"train": self.source.path.name, "eval": bench, "split": split,
                                   "images": counts["images"]}
            for m in METHODS:
                if m in counts:
                    row[f"by_{m}"] = counts[m]
            row["examples"] = ", ".join(examples[(bench, split)])
            rows.append(row)
        return rows


def _causes(index: EvalIndex, ids: Iterable[int], method: str, distance: int | None = None) -> Iterator[Cause]:
    for i in ids:
        im = index.images[i]
        yield Cause(im.benchmark, im.split, method, im.file_name, distance)


def audit_source(
    source: Source,
    index: EvalIndex,
    cache: HashCache | None = None,
    workers: int = 8,
    problems: ProblemLog | None = None,
    advance: Callable[[int], None] | None = None,
) -> SourceAudit:
    """Stream the training ``source`` against ``index``; bounded memory except for the leaks."""
    methods = index.methods
    result = SourceAudit(source)
    if _hashing(methods) and source.root is None:
        raise OdvgError(f"{source.path}: --by content/phash needs its image root: give it as FILE@IMAGE_ROOT")
    refs: Iterable[ImageRef] = iter_images(source, problems)

    def match_keys(ref: ImageRef) -> list[Cause]:
        found: list[Cause] = []
        if "id" in methods and ref.coco_id is not None and ref.coco_id in index.by_id:
            found.extend(_causes(index, index.by_id[ref.coco_id], "id"))
        if "name" in methods and (hits := index.by_name.get(ref.name_key)):
            found.extend(_causes(index, hits, "name"))
        return found

    def record(ref: ImageRef, found: list[Cause]) -> None:
        if found:
            result.leaks.setdefault(ref.where, []).extend(found)
            result.file_names[ref.where] = ref.file_name
            result.coco_ids[ref.where] = ref.coco_id

    def counted(it: Iterable[ImageRef]) -> Iterator[ImageRef]:
        for ref in it:
            result.images += 1
            if advance is not None and not _hashing(methods):
                advance(1)
            yield ref

    if not _hashing(methods):
        for ref in counted(refs):
            record(ref, match_keys(ref))
        return result
    for ref, res in hash_files(counted(refs), lambda r: r.path, cache or HashCache(None),  # type: ignore[arg-type, return-value]
                               phash="phash" in methods, workers=workers, advance=advance):
        found = match_keys(ref)
        if res.error is not None:
            result.unreadable += 1
            if problems is not None:
                problems.warn("unreadable-image", source.path, ref.where, "image", res.error)
        else:
            if "content" in methods and (hits := index.by_content.get(res.content or "")):
                found.extend(_causes(index, hits, "content"))
            if index.phash is not None and res.phash is not None:
                for j, dist in index.phash.query(res.phash):
                    found.extend(_causes(index, [index.phash_owner[j]], "phash", dist))
        record(ref, found)
    return result


def removal_rows(audit: SourceAudit) -> list[dict[str, Any]]:
    """The removal manifest: one row per removed image, causes deduplicated, file order."""
    rows = []
    for where, causes in audit.leaks.items():
        uniq = list(dict.fromkeys(causes))
        rows.append({
            "where": where,
            "image_id": audit.coco_ids.get(where),
            "file_name": audit.file_names.get(where),
            "causes": [c.as_dict() for c in uniq],
        })
    return rows
