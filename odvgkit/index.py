"""Byte-offset index of an ODVG JSON Lines file: ``FILE.odvgidx`` (``odvgkit index FILE``).

MMDetection's ``ODVGDataset`` parses the whole file into a list of dicts in every process (and
pickles it once more); at Objects365 scale that is minutes and gigabytes per rank. The trainer's
``IndexedODVGDataset`` (``odvgkit_train/indexed.py``) reads this index instead and decodes one line
per ``__getitem__``.

Why JSON Lines + a byte-offset index, not Parquet/Arrow: the ODVG file stays the single source of
truth (no second copy of every box, nothing to keep in sync but a few numbers per record), a record
is decoded by the same ``json.loads`` ``ODVGDataset`` uses (so every ``data_info`` is equal by
construction, floats and unknown fields included), and the index is a handful of flat numpy arrays
that ``mmap`` shares through the page cache between every rank and data-loader worker on a node:
nothing is private to a process but what it decodes.

Layout (little endian)::

    b"ODVGIDX\\0"  uint32 version  uint32 header_len  header (JSON, UTF-8)  padding to 64
    arrays, each 64-byte aligned, described by the header: name → dtype, offset, count

The header records the source (name, size, ``mtime_ns``, SHA-1 of its first and last 64 KiB), the
record and box counts, the index's own total size (a truncated index is refused) and a CRC-32 of
the array region (a corrupt one too). Arrays, per record ``i`` (line order, no record skipped):

* ``offset`` (uint64), ``length`` (uint32, without the newline), ``crc`` (uint32 CRC-32 of the line):
  a reader checks the CRC of every line it reads, so a record that no longer matches its offset is
  an error, never a wrong sample;
* ``flags`` (uint8): ``1`` the record can be read in OD mode (``detection`` absent or an object),
  ``2`` in VG mode (``grounding`` with ``caption`` and ``regions``);
* ``od_ptr``/``od_labels``: CSR of the distinct labels (first-occurrence order) of the boxes
  ``ODVGDataset`` keeps in OD mode (inside the image, ≥ 1 px); ``vg_ptr``/``vg_labels``: the same for
  VG mode (region indices with a kept box). Class-balanced repeat factors come from these without
  decoding a record.

Built in one streaming pass (msgspec per line, no record kept). A stale index (the ODVG file
changed: size, mtime or the hashed ends differ), one built for another file, a truncated or corrupt
one are refused with one-line :class:`OdvgError` s naming the files.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import time
import zlib
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from odvgkit.errors import OdvgError

MAGIC = b"ODVGIDX\0"
VERSION = 1
SUFFIX = ".odvgidx"
ENDS = 64 * 1024
ALIGN = 64
OD_OK, VG_OK = 1, 2
ARRAYS = ("offset", "length", "crc", "flags", "od_ptr", "od_labels", "vg_ptr", "vg_labels")


def index_path(ann_file: str | Path) -> Path:
    """Where ``odvgkit index`` puts the index of ``ann_file``: beside it, ``FILE.odvgidx``."""
    p = Path(ann_file)
    return p.with_name(p.name + SUFFIX)


def _rebuild_hint(ann_file: Path) -> str:
    return f"rebuild it with `odvgkit index {ann_file} --force`"


def source_stamp(path: Path) -> dict[str, Any]:
    """What identifies the indexed bytes: size, mtime_ns and SHA-1 of the first/last 64 KiB."""
    st = path.stat()
    with path.open("rb") as fh:
        head = hashlib.sha1(fh.read(ENDS)).hexdigest()
        fh.seek(max(0, st.st_size - ENDS))
        tail = hashlib.sha1(fh.read(ENDS)).hexdigest()
    return {"name": path.name, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "head": head, "tail": tail}


def _check_plain(path: Path) -> None:
    name = path.name.lower()
    if not name.endswith((".jsonl", ".json")):
        raise OdvgError(f"{path}: an index is built for plain JSON Lines (.jsonl) only, what mmdet reads; "
                        "`odvgkit train` copies gzip/Parquet sources to .jsonl first", 2)
    if not path.is_file():
        raise OdvgError(f"{path}: no such file")


def _box_kept(box: Any, w: Any, h: Any) -> bool:
    """``ODVGDataset``'s rule, operation for operation."""
    x1, y1, x2, y2 = box
    inter_w = max(0, min(x2, w) - max(x1, 0))
    inter_h = max(0, min(y2, h) - max(y1, 0))
    if inter_w * inter_h == 0:
        return False
    return not ((x2 - x1) < 1 or (y2 - y1) < 1)


@dataclass
class BuildResult:
    index: Path
    records: int
    boxes: int
    seconds: float


def build_index(ann_file: str | Path, out: str | Path | None = None, force: bool | None = None,
                progress: Any = None) -> BuildResult:
    """Write the index of ``ann_file`` (default ``FILE.odvgidx``) atomically; ``force`` as ``--force``."""
    import msgspec

    t0 = time.perf_counter()
    src = Path(ann_file)
    _check_plain(src)
    target = Path(out) if out is not None else index_path(src)
    stamp = source_stamp(src)
    offset, length, crc = array("Q"), array("I"), array("I")
    flags = array("B")
    od_ptr, od_labels, vg_ptr, vg_labels = array("q", [0]), array("q"), array("q", [0]), array("q")
    decode = msgspec.json.Decoder().decode
    boxes = 0
    pos = 0
    with src.open("rb") as fh:
        for lineno, line in enumerate(fh, 1):
            content = line[:-1] if line.endswith(b"\n") else line
            where = f"{src}:{lineno}"
            if not content.strip():
                raise OdvgError(f"{where}: blank line (ODVGDataset fails on it)")
            try:
                rec = decode(content)
            except msgspec.DecodeError:
                try:
                    rec = json.loads(content)
                except ValueError as exc:
                    raise OdvgError(f"{where}: not JSON: {exc}") from None
            if not isinstance(rec, dict):
                raise OdvgError(f"{where}: a record must be a JSON object")
            try:
                boxes += _labels(rec, flags, od_labels, vg_labels)
            except (KeyError, TypeError, ValueError) as exc:
                raise OdvgError(f"{where}: record ODVGDataset cannot read ({type(exc).__name__}: {exc})") from None
            od_ptr.append(len(od_labels))
            vg_ptr.append(len(vg_labels))
            offset.append(pos)
            length.append(len(content))
            crc.append(zlib.crc32(content))
            pos += len(line)
            if progress is not None:
                progress(len(line))
    if pos != stamp["size"] or src.stat().st_mtime_ns != stamp["mtime_ns"]:
        raise OdvgError(f"{src}: changed while it was indexed; run `odvgkit index` again")
    arrays = {
        "offset": np.frombuffer(offset, dtype="<u8") if len(offset) else np.zeros(0, "<u8"),
        "length": np.frombuffer(length, dtype="<u4") if len(length) else np.zeros(0, "<u4"),
        "crc": np.frombuffer(crc, dtype="<u4") if len(crc) else np.zeros(0, "<u4"),
        "flags": np.frombuffer(flags, dtype="u1") if len(flags) else np.zeros(0, "u1"),
        "od_ptr": np.frombuffer(od_ptr, dtype="<i8"),
        "od_labels": _narrow(od_labels),
        "vg_ptr": np.frombuffer(vg_ptr, dtype="<i8"),
        "vg_labels": _narrow(vg_labels),
    }
    _write(target, stamp, arrays, boxes, force)
    return BuildResult(target, len(offset), boxes, time.perf_counter() - t0)


def _narrow(values: array) -> np.ndarray:
    a = np.frombuffer(values, dtype="<i8") if len(values) else np.zeros(0, "<i8")
    if not len(a) or (a.min() >= -(2**31) and a.max() < 2**31):
        return a.astype("<i4")
    return a


def _labels(rec: dict, flags: array, od_labels: array, vg_labels: array) -> int:
    """Append the record's flags and kept distinct labels (OD and VG reading); returns its box count."""
    w, h = rec["width"], rec["height"]
    f = 0
    n = 0
    det = rec.get("detection", {})
    if isinstance(det, dict):
        f |= OD_OK
        seen: list[int] = []
        for inst in det.get("instances", []):
            n += 1
            if _box_kept(inst["bbox"], w, h):
                lab = int(str(inst["label"]))
                if lab not in seen:
                    seen.append(lab)
        od_labels.extend(seen)
    grd = rec.get("grounding")
    if isinstance(grd, dict) and "caption" in grd and "regions" in grd:
        f |= VG_OK
        for i, region in enumerate(grd["regions"]):
            bbox = region["bbox"]
            if not isinstance(bbox[0], list):
                bbox = [bbox]
            n += len(bbox)
            if any(_box_kept(b, w, h) for b in bbox):
                vg_labels.append(i)
    flags.append(f)
    return n


def _write(target: Path, stamp: dict[str, Any], arrays: dict[str, np.ndarray], boxes: int, force: bool | None) -> None:
    from odvgkit.io import atomic_path

    layout: dict[str, dict[str, Any]] = {}
    pos = 0
    for name in ARRAYS:
        a = arrays[name]
        layout[name] = {"dtype": a.dtype.str, "offset": pos, "count": int(a.size)}
        pos += -(-a.nbytes // ALIGN) * ALIGN
    body_size = pos
    crc = 0
    header: dict[str, Any] = {"version": VERSION, "source": stamp, "records": int(arrays["offset"].size),
                              "boxes": boxes, "arrays": layout, "body_size": body_size}
    body = bytearray(body_size)
    for name in ARRAYS:
        a = arrays[name]
        o = layout[name]["offset"]
        body[o:o + a.nbytes] = a.tobytes()
    crc = zlib.crc32(body)
    header["body_crc"] = crc
    head = json.dumps(header, sort_keys=True).encode()
    prefix = MAGIC + np.array([VERSION, len(head)], dtype="<u4").tobytes() + head
    prefix += b"\0" * (-len(prefix) % ALIGN)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target, force=force) as tmp, open(tmp, "wb") as fh:
        fh.write(prefix)
        fh.write(body)


class OdvgIndex:
    """A memory-mapped index, checked against its ODVG file; :meth:`read` returns one checked line."""

    def __init__(self, ann_file: str | Path, index_file: str | Path | None = None) -> None:
        self.ann_file = Path(ann_file)
        self.path = Path(index_file) if index_file else index_path(self.ann_file)
        if not self.path.is_file():
            raise OdvgError(f"{self.ann_file}: no index {self.path}; build it with `odvgkit index {self.ann_file}`")
        with self.path.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size < 16:
                raise OdvgError(f"{self.path}: truncated index ({size} bytes); {_rebuild_hint(self.ann_file)}")
            self._mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        mm = self._mm
        if mm[:8] != MAGIC:
            raise OdvgError(f"{self.path}: not an odvgkit index; {_rebuild_hint(self.ann_file)}")
        version, hlen = np.frombuffer(mm, dtype="<u4", count=2, offset=8).tolist()
        if version != VERSION:
            raise OdvgError(f"{self.path}: index version {version}, this odvgkit reads {VERSION}; {_rebuild_hint(self.ann_file)}")
        if 16 + hlen > size:
            raise OdvgError(f"{self.path}: truncated index ({size} bytes); {_rebuild_hint(self.ann_file)}")
        try:
            header = json.loads(bytes(mm[16:16 + hlen]))
        except ValueError:
            raise OdvgError(f"{self.path}: corrupt index header; {_rebuild_hint(self.ann_file)}") from None
        start = 16 + hlen + (-(16 + hlen) % ALIGN)
        expected = start + int(header["body_size"])
        if size != expected:
            raise OdvgError(f"{self.path}: truncated index ({size} of {expected} bytes); {_rebuild_hint(self.ann_file)}")
        body = memoryview(mm)[start:expected]
        if zlib.crc32(body) != header["body_crc"]:
            body.release()
            raise OdvgError(f"{self.path}: corrupt index (checksum mismatch); {_rebuild_hint(self.ann_file)}")
        self.header = header
        self._check_source(header["source"])
        self.records = int(header["records"])
        self.boxes = int(header["boxes"])
        for name, spec in header["arrays"].items():
            setattr(self, name, np.frombuffer(mm, dtype=spec["dtype"], count=spec["count"], offset=start + spec["offset"]))
        body.release()
        self._fd: int | None = None
        self._pid = -1

    def _check_source(self, src: dict[str, Any]) -> None:
        if not self.ann_file.is_file():
            raise OdvgError(f"{self.ann_file}: no such file (indexed by {self.path})")
        st = self.ann_file.stat()
        if st.st_size == src["size"] and st.st_mtime_ns == src["mtime_ns"]:
            now = source_stamp(self.ann_file)
            if now["head"] == src["head"] and now["tail"] == src["tail"]:
                return
        if src["name"] != self.ann_file.name:
            raise OdvgError(f"{self.path}: index of another file ({src['name']}), not of {self.ann_file}; "
                            f"{_rebuild_hint(self.ann_file)}")
        raise OdvgError(f"{self.ann_file}: changed after it was indexed (stale index {self.path}); "
                        f"{_rebuild_hint(self.ann_file)}")

    def __getstate__(self) -> dict[str, Any]:  # spawned workers re-open and re-check the index
        return {"ann_file": self.ann_file, "path": self.path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["ann_file"], state["path"])  # type: ignore[misc]

    def read(self, i: int) -> dict[str, Any]:
        """Record ``i`` (0-based line), decoded with ``json.loads`` after its CRC matched the index."""
        if self._pid != os.getpid():  # one descriptor per process (pread: no shared file position)
            self._fd = os.open(self.ann_file, os.O_RDONLY)
            self._pid = os.getpid()
        n = int(self.length[i])
        data = os.pread(self._fd, n, int(self.offset[i]))  # type: ignore[arg-type]
        if len(data) != n or zlib.crc32(data) != int(self.crc[i]):
            raise OdvgError(f"{self.ann_file}:{i + 1}: record does not match its index entry (the file changed after "
                            f"indexing); {_rebuild_hint(self.ann_file)}")
        return json.loads(data)

    def label_csr(self, mode: str) -> tuple[np.ndarray, np.ndarray]:
        """(indptr, labels) of the distinct kept labels per record in ``OD`` or ``VG`` reading."""
        return (self.od_ptr, self.od_labels) if mode == "OD" else (self.vg_ptr, self.vg_labels)  # type: ignore[attr-defined]

    def first_unreadable(self, mode: str) -> int | None:
        """0-based line of the first record ``ODVGDataset`` cannot read in ``mode``, else None."""
        bit = OD_OK if mode == "OD" else VG_OK
        bad = np.flatnonzero((self.flags & bit) == 0)  # type: ignore[attr-defined]
        return int(bad[0]) if bad.size else None


def fresh_index(ann_file: str | Path, index_file: str | Path | None = None) -> bool:
    """True when ``index_file`` exists and is a valid, current index of ``ann_file``."""
    try:
        OdvgIndex(ann_file, index_file)
    except OdvgError:
        return False
    return True
