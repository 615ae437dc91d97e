"""Objects365 maintenance: category-name fixes, true image sizes, size fixes (§3.4–3.6).

* :func:`fix_names` applies the v2 name corrections table that ships in the package
  (``odvgkit/data/objects365_v2_names_fix.csv``; upstream's default path to it does not exist).
* :func:`image_info` measures every image from its header (EXIF aware, threads) and writes a TSV
  ``id  file_name  height  width`` in ``images[]`` order (upstream's script crashes on every image
  and writes an empty file, and its thread-completion order is not deterministic).
* :func:`fix_wh` rewrites (or drops) images whose stored size disagrees with the measured one and
  drops images missing from the table with their annotations; the output is named after *its*
  input (``…_val_fixwh.json`` for val), so val never overwrites train.

All three stream the document: images and annotations are copied byte for byte unless changed.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any

import msgspec

from odvgkit.convert._stream import OnBytes, copy_document, decode_raw
from odvgkit.errors import OdvgError, ProblemLog
from odvgkit.images import image_sizes
from odvgkit.io import atomic_write, check_distinct
from odvgkit.io.jsonstream import stream_members
from odvgkit.io.text import read_text


def read_name_table(path: str | Path | None = None) -> dict[int, tuple[str, str]]:
    """``id → (original name, corrected name)`` from the CSV (packaged table by default)."""
    if path is None:
        text = resources.files("odvgkit.data").joinpath("objects365_v2_names_fix.csv").read_text("utf-8")
        where = "objects365_v2_names_fix.csv (packaged)"
    else:
        text = read_text(path, "name table")
        where = str(path)
    table: dict[int, tuple[str, str]] = {}
    for lineno, row in enumerate(csv.reader(io.StringIO(text)), 1):
        if not row:
            continue
        if len(row) != 3:
            raise OdvgError(f"{where}:{lineno}: expected 'id,original name,corrected name', got {len(row)} fields")
        try:
            table[int(row[0])] = (row[1], row[2])
        except ValueError:
            raise OdvgError(f"{where}:{lineno}: id {row[0]!r} is not an integer") from None
    return table


class _Cat(msgspec.Struct, gc=False):
    id: int
    name: str


def fix_names(
    path: str | Path, output: str | Path, table_path: str | Path | None = None,
    problems: ProblemLog | None = None, on_bytes: OnBytes = None,
) -> Counter[str]:
    """Rename the categories whose corrected name differs from the original (by id, as upstream)."""
    path, output = Path(path), Path(output)
    check_distinct(output, [path])
    problems = problems if problems is not None else ProblemLog()
    table = read_name_table(table_path)
    stats: Counter[str] = Counter()

    def rewrite(key: str, i: int, raw: msgspec.Raw) -> Any:
        if key != "categories":
            return raw
        cat = msgspec.json.decode(raw)
        cid = cat.get("id") if isinstance(cat, dict) else None
        entry = table.get(cid) if type(cid) is int else None
        if entry is None:
            problems.warn("not-in-table", path, f"categories[{i}]", "id", f"id {cid!r} is not in the name table; kept as is")
            return raw
        old, new = entry
        if old != new and cat.get("name") != new:
            stats["renamed"] += 1
            return {**cat, "name": new}
        return raw

    copy_document(path, output, rewrite, problems, on_bytes)
    return stats


class _Img(msgspec.Struct, gc=False):
    id: int
    file_name: str
    height: int | None = None
    width: int | None = None


def image_info(
    path: str | Path, image_dir: str | Path, output: str | Path, *, exif: bool = True, workers: int = 16,
    problems: ProblemLog | None = None, on_image: OnBytes = None,
) -> Counter[str]:
    """Measure every image of ``images[]``; write ``id\\tfile_name\\theight\\twidth`` (with header)."""
    path, output, image_dir = Path(path), Path(output), Path(image_dir)
    check_distinct(output, [path])
    problems = problems if problems is not None else ProblemLog()
    stats: Counter[str] = Counter()
    with atomic_write(output, "w") as fh:
        fh.write("id\tfile_name\theight\twidth\n")
        for _key, first, items in stream_members(path, {"images": _Img}, problems=problems):
            if first < 0:
                raise OdvgError(f"{path}: images: must be a JSON array")
            paths = [image_dir / im.file_name for im in items]
            for im, (p, size, err) in zip(items, image_sizes(paths, exif=exif, workers=workers), strict=True):
                if size is None:
                    problems.error("image-unreadable", p, None, None, str(err).split(": ", 1)[-1])
                    stats["unreadable"] += 1
                    continue
                if "\t" in im.file_name or "\n" in im.file_name:
                    problems.error("bad-file-name", path, f"images (id {im.id})", "file_name", "contains a tab or newline")
                    continue
                fh.write(f"{im.id}\t{im.file_name}\t{size[1]}\t{size[0]}\n")
                stats["measured"] += 1
                if im.height is not None and (im.height, im.width) != (size[1], size[0]):
                    stats["size-differs"] += 1
            if on_image is not None:
                on_image(len(items))
    return stats


def read_image_info(path: str | Path) -> dict[int, tuple[str, int, int]]:
    """``id → (file_name, height, width)`` from :func:`image_info`'s TSV or upstream's
    ``id file_name height width channel`` lines."""
    out: dict[int, tuple[str, int, int]] = {}
    if not Path(path).exists():
        raise OdvgError(f"{path}: no such image-info file (make one with 'odvgkit o365 image-info')")
    lines = read_text(path, "image-info file").splitlines()
    for lineno, line in enumerate(lines, 1):
        if not line.strip() or (lineno == 1 and line.startswith("id\t")):
            continue
        parts = line.split("\t") if "\t" in line else line.split()
        if "\t" not in line and len(parts) == 5:
            parts = parts[:4]
        if len(parts) != 4:
            raise OdvgError(f"{path}:{lineno}: expected 'id file_name height width', got {line!r}")
        try:
            out[int(parts[0])] = (parts[1], int(parts[2]), int(parts[3]))
        except ValueError:
            raise OdvgError(f"{path}:{lineno}: id/height/width must be integers: {line!r}") from None
    return out


class _AnnImg(msgspec.Struct, gc=False):
    image_id: int


def fix_wh(
    path: str | Path, info_path: str | Path, output: str | Path, *, mode: str = "fix",
    problems: ProblemLog | None = None, on_bytes: OnBytes = None,
) -> Counter[str]:
    """``mode="fix"``: stored sizes replaced by measured ones; ``"drop"``: such images removed.

    Images missing from the table are removed in both modes; annotations of removed images too.
    """
    if mode not in ("fix", "drop"):
        raise OdvgError(f"--mode {mode!r}: choose fix or drop")
    path, output = Path(path), Path(output)
    check_distinct(output, [path, info_path])
    problems = problems if problems is not None else ProblemLog()
    info = read_image_info(info_path)
    stats: Counter[str] = Counter()
    dropped: set[int] = set()
    # the copy below names every malformed element; this pass only collects ids (a malformed
    # image reported here too would be counted twice)
    for _, _, items in stream_members(path, {"images": _Img}, problems=ProblemLog()):
        for im in items:
            measured = info.get(im.id)
            if measured is None or (mode == "drop" and (im.height, im.width) != measured[1:]):
                dropped.add(im.id)

    def rewrite(key: str, i: int, raw: msgspec.Raw) -> Any:
        if key == "images":
            im = decode_raw(raw, _Img)
            if im.id in dropped:
                stats["dropped:not-measured" if im.id not in info else "dropped:size-differs"] += 1
                return None
            file_name, h, w = info[im.id]
            if file_name != im.file_name:
                problems.error("file-name-mismatch", path, f"images[{i}]", "file_name",
                               f"{im.file_name!r} but the image-info table says {file_name!r}")
            stats["images"] += 1  # every image written, resized ones included
            if (im.height, im.width) != (h, w):
                stats["resized"] += 1
                return {**msgspec.json.decode(raw), "height": h, "width": w}
            return raw
        if key == "annotations":
            if decode_raw(raw, _AnnImg).image_id in dropped:
                stats["dropped:annotations"] += 1
                return None
            stats["annotations"] += 1
        return raw

    copy_document(path, output, rewrite, problems, on_bytes)
    return stats

