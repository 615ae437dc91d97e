"""Content and perceptual hashes of image files, cached on disk.

* **content**: BLAKE2b-128 of the file bytes — byte-identical copies under any name.
* **phash**: the 64-bit DCT perceptual hash of ``imagehash.phash`` — re-encoded, resized or lightly
  recompressed copies land within a few bits (Hamming distance) of each other.

Decoding dominates the cost; JPEGs are decoded with Pillow's ``draft`` mode at 1/2–1/8 scale (the
hash only looks at a 32×32 grey thumbnail, so the result is stable while decoding is several
times faster). Hashes live in an SQLite cache keyed by absolute path, size and mtime, so a second
audit reads no image at all; the key includes :data:`PHASH_VERSION` so a changed recipe never
mixes with old entries.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from odvgkit.errors import OdvgError

T = TypeVar("T")

PHASH_VERSION = "phash8-draft64-v1"
_DRAFT = (64, 64)


@dataclass(frozen=True, slots=True)
class HashResult:
    path: Path
    content: str | None
    phash: int | None
    error: str | None = None
    cached: bool = False


def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "odvgkit" / "image-hashes.sqlite"


def content_hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def perceptual_hash(data: bytes) -> int:
    """64-bit pHash of an encoded image (raises on undecodable data)."""
    import io

    import imagehash
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        im.draft("L", _DRAFT)
        im = im.convert("L")
        h = imagehash.phash(im)
    bits = h.hash.flatten()
    value = 0
    for b in bits:
        value = (value << 1) | int(b)
    return value


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


class HashCache:
    """SQLite cache ``path → (size, mtime_ns, content, phash)``; safe to share between runs."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._pending: list[tuple[str, int, int, str, str | None]] = []
        self._lock = threading.Lock()
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), check_same_thread=False)
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS hashes (path TEXT, version TEXT, size INTEGER, "
                "mtime_ns INTEGER, content TEXT, phash TEXT, PRIMARY KEY (path, version))"
            )
        except (OSError, sqlite3.Error) as exc:
            raise OdvgError(f"{path}: cannot open the hash cache: {exc}") from None

    def get(self, key: str, size: int, mtime_ns: int) -> tuple[str, int | None] | None:
        if self._db is None:
            return None
        with self._lock:
            row = self._db.execute(
                "SELECT size, mtime_ns, content, phash FROM hashes WHERE path=? AND version=?",
                (key, PHASH_VERSION),
            ).fetchone()
        if row is None or row[0] != size or row[1] != mtime_ns:
            return None
        return row[2], (int(row[3], 16) if row[3] else None)

    def put(self, key: str, size: int, mtime_ns: int, content: str, phash: int | None) -> None:
        if self._db is None:
            return
        self._pending.append((key, size, mtime_ns, content, f"{phash:016x}" if phash is not None else None))
        if len(self._pending) >= 2000:
            self.flush()

    def flush(self) -> None:
        if self._db is None or not self._pending:
            return
        with self._lock:
            self._db.executemany(
                "INSERT OR REPLACE INTO hashes VALUES (?, ?, ?, ?, ?, ?)",
                [(k, PHASH_VERSION, s, m, c, p) for k, s, m, c, p in self._pending],
            )
            self._db.commit()
            self._pending.clear()

    def close(self) -> None:
        if self._db is not None:
            self.flush()
            self._db.close()
            self._db = None


def hash_files(
    items: Iterable[T],
    path_of: Callable[[T], Path],
    cache: HashCache,
    phash: bool = True,
    workers: int = 8,
    advance: Callable[[int], None] | None = None,
) -> Iterator[tuple[T, HashResult]]:
    """Hash the image of every item (threads: decoding releases the GIL), in input order.

    An unreadable or undecodable file yields a result with ``error`` set; it never stops the run.
    Memory stays bounded: the pool sees a window of items at a time.
    """

    def one(item: T) -> tuple[T, HashResult, tuple[str, int, int] | None]:
        p = path_of(item)
        try:
            st = p.stat()
            key = str(p.resolve())
        except OSError as exc:
            return item, HashResult(p, None, None, f"{p}: cannot read image: {exc.strerror}"), None
        hit = cache.get(key, st.st_size, st.st_mtime_ns)
        if hit is not None and (hit[1] is not None or not phash):
            return item, HashResult(p, hit[0], hit[1], cached=True), None
        try:
            data = p.read_bytes()
        except OSError as exc:
            return item, HashResult(p, None, None, f"{p}: cannot read image: {exc.strerror}"), None
        content = content_hash(data)
        ph: int | None = None
        if phash:
            try:
                ph = perceptual_hash(data)
            except Exception as exc:  # any decoder failure is this image's problem
                return item, HashResult(p, content, None, f"{p}: undecodable image: {exc}"), None
        return item, HashResult(p, content, ph), (key, st.st_size, st.st_mtime_ns)

    window = max(1, workers) * 64
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        try:
            batch: list[T] = []
            for item in items:
                batch.append(item)
                if len(batch) >= window:
                    yield from _drain(pool.map(one, batch), cache, advance)
                    batch = []
            if batch:
                yield from _drain(pool.map(one, batch), cache, advance)
        finally:
            with contextlib.suppress(sqlite3.Error):
                cache.flush()


def _drain(
    results: Iterator[tuple[T, HashResult, tuple[str, int, int] | None]],
    cache: HashCache,
    advance: Callable[[int], None] | None,
) -> Iterator[tuple[T, HashResult]]:
    for item, result, meta in results:
        if meta is not None and result.content is not None:
            cache.put(meta[0], meta[1], meta[2], result.content, result.phash)
        if advance is not None:
            advance(1)
        yield item, result


class PhashIndex:
    """Near-duplicate search by Hamming distance ≤ ``threshold`` (multi-index hashing).

    By the pigeonhole principle two 64-bit hashes within distance *t* agree exactly on at least one
    of *t + 1* disjoint bit bands, so candidates come from exact band lookups and are verified with
    a popcount: fast for millions of queries against a large index, exact (no missed pairs).
    """

    def __init__(self, threshold: int) -> None:
        if not 0 <= threshold <= 32:
            raise OdvgError(f"--phash-threshold {threshold}: choose 0..32 bits")
        self.threshold = threshold
        n = threshold + 1
        edges = [round(i * 64 / n) for i in range(n + 1)]
        self._bands = [(edges[i], edges[i + 1] - edges[i]) for i in range(n)]
        self._tables: list[dict[int, list[int]]] = [{} for _ in self._bands]
        self.values: list[int] = []

    def _keys(self, value: int) -> Iterator[int]:
        for shift, width in self._bands:
            yield (value >> shift) & ((1 << width) - 1)

    def add(self, value: int) -> int:
        idx = len(self.values)
        self.values.append(value)
        for table, key in zip(self._tables, self._keys(value), strict=True):
            table.setdefault(key, []).append(idx)
        return idx

    def query(self, value: int) -> list[tuple[int, int]]:
        """``[(index, distance)]`` of stored hashes within the threshold, by index."""
        seen: set[int] = set()
        out: list[tuple[int, int]] = []
        for table, key in zip(self._tables, self._keys(value), strict=True):
            for idx in table.get(key, ()):
                if idx in seen:
                    continue
                seen.add(idx)
                d = hamming(value, self.values[idx])
                if d <= self.threshold:
                    out.append((idx, d))
        out.sort()
        return out
