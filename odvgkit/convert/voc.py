"""Pascal VOC XML (one file per image) → ODVG OD records + label map.

Reads the VOC layout (``Annotations/*.xml``, ``JPEGImages/``, ``ImageSets/Main/<split>.txt``) and
flat folders of XML files with their images beside them (labelImg, Roboflow "Pascal VOC" exports).

**Pixel convention — the same boxes MMDetection gives.** VOC coordinates are 1-based pixel
indices. MMDetection's own VOC paths — ``tools/dataset_converters/pascal_voc.py`` (then
``coco2odvg.py``) and ``XMLDataset`` (``minus_one=True``) — both subtract 1 from all four values:
``[xmin - 1, ymin - 1, xmax - 1, ymax - 1]``; so does this importer. A box whose width or height is
under 1 px (``xmin == xmax``) is what ``coco2odvg.py`` drops after ``pascal_voc.py`` (``area <= 0``);
it is dropped here too and counted as ``degenerate``.

Where upstream is silent or crashes, odvgkit decides (docs/deviations.md):

* class order from ``classes`` (a file or a list), else the sorted set of names found — upstream
  hard-codes the 20 VOC classes and crashes (``KeyError``) on any other name;
* ``difficult``/``truncated`` are kept per instance (booleans, only when the XML has them);
  difficult boxes are kept unless ``drop_difficult`` (``pascal_voc.py`` marks them crowd, which
  ``coco2odvg.py`` then drops);
* fractional coordinates are kept (``pascal_voc.py`` crashes on them, ``XMLDataset`` truncates);
* the image size comes from ``<size>``; only when it is absent or 0 is the image header read
  (``XMLDataset`` decodes the whole image then); ``check_sizes`` reads every header and warns on
  a mismatch;
* a box outside the image, a negative/NaN coordinate, an unknown class, malformed XML, a missing
  image are one-line problems naming file, object and field — never a crash, never silent.

Speed (issue #13): files are read in forked workers (:mod:`odvgkit.convert._perfile`), each chunk
formatted to JSON Lines bytes in the worker. A file of the usual shape is read by one regex
``split`` (:func:`scan`) rather than by building an ``ElementTree`` — only when the whole file
provably means the same to ElementTree, which reads every other file, errors included (see the
comment above :data:`_NAME`; tests/convert/test_voc_scanner.py compares the two); a clean box is
checked and formatted inline, anything else goes through the same checks as before. When the
class order is not given, a label is a name's rank among all names, known only after the last
file: workers label with the names of a sample of files (a guess), names outside it get
chunk-local placeholders, chunks are spooled to a temporary file, and only when the guess was
wrong are the labels rewritten (one regex pass a chunk) — memory stays bounded either way.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import orjson

from odvgkit.convert._perfile import Chunk, FileConversion, as_number, listing, map_chunks, read_file, replay
from odvgkit.errors import OdvgError, ProblemLog
from odvgkit.images import image_size

SPLITS = ("train", "val", "test", "trainval")

# one unit of work: (xml path, image folder, stem, where a missing file is reported: (path, line))
Item = tuple[str, str, str, tuple[str, int | None]]


def parse_classes(value: str | Path | Sequence[str]) -> list[str]:
    """``--classes``: a file with one name per line, or ``a,b,c``; duplicates are an error."""
    if isinstance(value, (list, tuple)):
        names, origin = [str(v).strip() for v in value], "--classes"
    else:
        text = str(value)
        p = Path(text)
        if p.is_file():
            names = [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines()]
            names, origin = [n for n in names if n], str(p)
        elif "," in text or (text and not p.suffix):
            names, origin = [n.strip() for n in text.split(",")], "--classes"
        else:
            raise OdvgError(f"--classes {text}: no such file (give a file or a comma-separated list)")
    if not names or any(not n for n in names):
        raise OdvgError(f"{origin}: empty class name")
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise OdvgError(f"{origin}: class {n!r} listed twice")
        seen.add(n)
    return names


def _text(el: ET.Element | None, tag: str) -> str | None:
    child = None if el is None else el.find(tag)
    if child is None or child.text is None:
        return None
    return child.text.strip()


def _flag(chunk: Chunk, path: str, where: str, tag: str, text: str | None) -> bool | None:
    if text is None:
        return None
    if text == "0" or text == "1":
        return text == "1"
    text = text.strip()
    if text == "":
        return None
    if text in ("0", "1"):
        return text == "1"
    chunk.warn("bad-value", path, where, tag, f"expected 0 or 1, got {text!r} (field left out)")
    return None


def _coord(text: str | None) -> tuple[float | None, str | None]:
    """A coordinate and, when it is unusable, why."""
    if text is None or text == "":
        return None, "missing"
    try:
        v = float(text)
    except ValueError:
        return None, f"not a number: {text!r}"
    if not math.isfinite(v):
        return None, f"not a finite number: {text!r}"
    if v < 0:
        return None, f"negative coordinate {text}"
    return v, None


# ------------------------------------------------------------------------------------- the scanner
# Why not always ElementTree: building a tree of ~100 elements per file and walking it with
# find/findtext was two thirds of the run time. Files of the usual shape (labelImg, VOC 2007,
# Roboflow exports) are read by one regex ``split`` instead — but only when the whole file
# provably means the same to ElementTree: the grammar below accepts a subset of well-formed XML
# (no comments, CDATA, entities, namespaces, processing instructions; every tag closed by its own
# name; at most one attribute per tag; objects of the usual element order, directly under
# <annotation>). Anything else goes through ElementTree exactly as before, errors included.
_NAME = rb"(?!object(?![\w.\-]))[A-Za-z_][\w.\-]*+"  # an unmatched <object> must fail the grammar
_ATTR = rb"""(?:\s++(?!xmlns)[A-Za-z_][\w.\-]*+\s*+=\s*+(?:"[^"<&]*+"|'[^'<&]*+'))?\s*+"""
_DECL = (rb"""(?:<\?xml\s++version\s*+=\s*+(?:"1\.0"|'1\.0')(?:\s++encoding\s*+=\s*+(?:"(?i:utf-8)"|'(?i:utf-8)'))?"""
         rb"""(?:\s++standalone\s*+=\s*+(?:"(?:yes|no)"|'(?:yes|no)'))?\s*+\?>)?""")
_LEAF = rb"<(?P<%s>" + _NAME + rb")" + _ATTR + rb"(?:/>|>[^<]*+</(?P=%s)>)"
# the children of <annotation> other than its objects: text, leaves, and groups of leaves — where
# neither <filename> nor <size> can be, so that any <filename>/<size> is a child of the root
_INNER = rb"(?!(?:filename|size)(?![\w.\-]))"
_BODY = (rb"(?:[^<]++|" + _LEAF % (b"a", b"a") + rb"|<(?P<b>" + _NAME + rb")" + _ATTR
         + rb">(?:[^<]++|(?=<" + _INNER + rb")" + _LEAF % (b"c", b"c") + rb")*+</(?P=b)>)*+")
_ROOT = _DECL + rb"\s*+<annotation" + _ATTR + rb">" + _BODY
_HEAD = re.compile(_ROOT)
_TAIL = re.compile(_BODY + rb"</annotation>\s*+")
_WHOLE = re.compile(_ROOT + rb"</annotation>\s*+")
# (no captures inside the repeated groups above: re may keep one from a branch that then failed)
_FILENAME = re.compile(rb"<filename>([^<]*+)</filename>")
_SIZE = re.compile(rb"<size>\s*+<width>([^<]*+)</width>\s*+<height>([^<]*+)</height>\s*+(?:<depth>[^<]*+</depth>\s*+)?</size>")
# one <object> of the usual shape; 7 groups: name, truncated, difficult, xmin, ymin, xmax, ymax
_OBJECT = re.compile(
    rb"<object>\s*+<name>([^<]*+)</name>\s*+(?:<pose>[^<]*+</pose>\s*+)?(?:<truncated>([^<]*+)</truncated>\s*+)?"
    rb"(?:<difficult>([^<]*+)</difficult>\s*+)?(?:<occluded>[^<]*+</occluded>\s*+)?"
    rb"<bndbox>\s*+<xmin>([^<]*+)</xmin>\s*+<ymin>([^<]*+)</ymin>\s*+<xmax>([^<]*+)</xmax>\s*+<ymax>([^<]*+)</ymax>"
    rb"\s*+</bndbox>\s*+</object>")
_CONTROL = bytes([*range(9), 11, 12, *range(14, 32)])  # not XML characters: expat rejects them
_FLAGS: dict[bytes | None, bool | None] = {None: None, b"0": False, b"1": True}

# what both readers give: filename text, whether <size> exists, its width and height texts
Header = tuple[str | None, bool, str | None, str | None]


def scan(data: bytes) -> tuple[Header, list[bytes]] | None:
    """The header and ``_OBJECT.split`` parts of a file of the usual shape; None: use ElementTree."""
    if b"&" in data or len(data.translate(None, _CONTROL)) != len(data):
        return None
    if not data.isascii():
        try:
            data.decode()
        except UnicodeDecodeError:
            return None
        if b"\xef\xbf\xbe" in data or b"\xef\xbf\xbf" in data:  # U+FFFE, U+FFFF
            return None
    if b"]" in data and b"]]>" in data:
        return None
    if b"\r" in data:  # the XML end-of-line normalisation expat applies
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    parts = _OBJECT.split(data)
    if len(parts) == 1:
        if _WHOLE.fullmatch(data) is None:
            return None
        outside = [data]
    else:
        if (_HEAD.fullmatch(parts[0]) is None or _TAIL.fullmatch(parts[-1]) is None
                or b"".join(parts[8:-1:8]).strip()):
            return None
        outside = [parts[0], parts[-1]]
    # ElementTree reads the first <size>/<filename> child of the root; the grammar put every
    # element of those names directly under the root, so a single one is that first one
    fn = w = h = None
    n_size = n_fn = 0
    for text in outside:
        if b"<filename" in text:
            n_fn += text.count(b"<filename")
            m = _FILENAME.search(text)
            fn = m[1] if m is not None else fn
        if b"<size" in text:
            n_size += text.count(b"<size")
            m = _SIZE.search(text)
            w, h = (m[1], m[2]) if m is not None else (w, h)
    if n_size > 1 or n_fn > 1 or (n_size == 1 and w is None) or (n_fn == 1 and fn is None):
        return None
    return (fn.decode().strip() if fn else None, n_size == 1,
            None if w is None else w.decode(), None if h is None else h.decode()), parts


def names_in(data: bytes) -> list[str]:
    """The class names of one file (a sample for the label guess; nothing is checked)."""
    found = scan(data)
    if found is not None:
        return [nm.decode().strip() for nm in found[1][1::8]]
    try:
        root = ET.fromstring(data)
    except Exception:  # a guess only: the file is read (and reported) again later
        return []
    return [(obj.findtext("name") or "").strip() for obj in root.iterfind("object")]


class _Parser:
    """Everything a worker needs, set up before the fork (inherited, never pickled)."""

    def __init__(self, root: Path, label_of: dict[str, int] | None, drop_difficult: bool,
                 check_sizes: bool, folders: Sequence[str], guess: dict[str, int]) -> None:
        self.root = root
        self.label_of = label_of
        self.guess = guess  # without --classes: the labels expected (see voc_to_odvg)
        self.drop_difficult = drop_difficult
        self.check_sizes = check_sizes
        self.files = {f: _names(f) for f in folders}  # image folder → the names in it
        self.images: dict[str, dict[str, list[str]]] = {}  # image folder → its listing by stem, when needed
        self.prefix = {}  # image folder → its path relative to the root, as a filename prefix
        for folder in folders:
            rel = os.path.relpath(folder, root).replace(os.sep, "/")
            self.prefix[folder] = "" if rel == "." else rel + "/"

    def __call__(self, items: Sequence[Item]) -> Chunk:
        chunk = Chunk()
        lines: list[bytes] = []
        local: dict[str, int] = {}  # placeholder labels of names not in the guess
        seen: dict[str, None] = {}  # names of the boxes kept
        known: dict[bytes, tuple[str, int | None] | None] = {}  # raw <name> → (name, label), None: check it
        dumps = orjson.dumps
        for item in items:
            rec = self.one(chunk, item, local, seen, known)
            if rec is not None:
                lines.append(dumps(rec))
        chunk.names = list(local)
        chunk.seen = list(seen)
        chunk.files = len(items)
        chunk.count = len(lines)
        chunk.data = b"\n".join(lines) + b"\n" if lines else b""
        return chunk

    def _image(self, folder: str, stem: str, declared: str | None) -> str | None:
        jpg = stem + ".jpg"
        if jpg in self.files.get(folder, ()) and stem.strip("."):  # the usual case, without the listing
            return jpg
        names = self.images.get(folder)
        if names is None:
            names = self.images[folder] = listing(folder)
        found = names.get(stem)
        if found and jpg in found:  # what pascal_voc.py and XMLDataset open
            return jpg
        if declared:
            base = os.path.basename(declared.replace("\\", "/"))
            if base in names.get(os.path.splitext(base)[0], ()):
                return base
        return found[0] if found else None

    def _tree(self, chunk: Chunk, xml_path: str, data: bytes) -> tuple[Header, list[tuple]] | None:
        """What :func:`scan` gives, from ElementTree (any XML; errors reported)."""
        try:
            root = ET.fromstring(data)
        except ET.ParseError as exc:
            line, col = exc.position
            msg = str(exc).split(":", 1)[0]
            chunk.error("malformed-xml", xml_path, line, None, f"malformed XML: {msg} (column {col + 1})")
            return None
        if root.tag != "annotation":
            hint = " (a CVAT XML export; export as Pascal VOC instead)" if root.tag == "annotations" else ""
            chunk.error("not-voc", xml_path, None, None,
                        f"not a Pascal VOC annotation: root element <{root.tag}>, expected <annotation>{hint}")
            return None
        size = root.find("size")
        header = (_text(root, "filename"), size is not None,
                  None if size is None else size.findtext("width"), None if size is None else size.findtext("height"))
        objects = []
        for obj in root.iterfind("object"):
            bnd = obj.find("bndbox")
            coords = None if bnd is None else tuple(bnd.findtext(t) for t in ("xmin", "ymin", "xmax", "ymax"))
            objects.append((obj.findtext("name"), coords, obj.findtext("difficult"), obj.findtext("truncated")))
        return header, objects

    def one(self, chunk: Chunk, item: Item, local: dict[str, int], seen: dict[str, None],
            known: dict[bytes, tuple[str, int | None] | None]) -> dict[str, Any] | None:
        xml_path, folder, stem, (list_path, list_line) = item
        try:
            data = read_file(xml_path)
        except FileNotFoundError:
            chunk.error("annotation-missing", list_path, list_line, "xml", f"{xml_path}: no such file")
            return None
        except OSError as exc:
            chunk.error("annotation-unreadable", xml_path, None, None, f"cannot read: {exc.strerror}")
            return None
        parts: list[bytes] | None = None
        objects: list[tuple] = []
        fast = scan(data)
        if fast is not None:
            header, parts = fast
        else:
            tree = self._tree(chunk, xml_path, data)
            if tree is None:
                return None
            header, objects = tree
        declared, has_size, wtext, htext = header

        image = self._image(folder, stem, declared)
        if image is None:
            chunk.error("image-missing", list_path, list_line, "image",
                        f"no image named {stem}.* in {folder}")
            return None
        rel = self.prefix[folder] + image

        try:  # the common case
            width, height = int(wtext), int(htext)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            width = height = 0
        if width <= 0 or height <= 0:
            width, height = self._size(chunk, xml_path, has_size, wtext, htext)
        if width == 0 or height == 0 or self.check_sizes:
            try:
                hw, hh = image_size(os.path.join(folder, image))
            except OdvgError as exc:
                chunk.error("image-unreadable", os.path.join(folder, image), None, None,
                            str(exc).split(": ", 1)[-1])
                return None
            if width and height and (hw, hh) != (width, height):
                chunk.warn("size-mismatch", xml_path, "size", None,
                           f"<size> {width}x{height} but the image header says {hw}x{hh} (header used)")
            if width == 0 or height == 0:
                chunk.stats["sizes_from_header"] += 1
            width, height = hw, hh

        if parts is not None:
            instances = self._fast_objects(chunk, xml_path, parts, width, height, local, seen, known)
        else:
            instances = []
            for i, (name, coords, diff, trunc) in enumerate(objects):
                inst = self._object(chunk, xml_path, f"object[{i}]", name, coords, diff, trunc, width, height,
                                    local, seen)
                if inst is not None:
                    instances.append(inst)
        stats = chunk.stats
        stats["images"] += 1
        stats["boxes"] += len(instances)
        if not instances:
            stats["images_without_boxes"] += 1
        return {"filename": rel, "height": height, "width": width, "detection": {"instances": instances}}

    def _size(self, chunk: Chunk, xml_path: str, has_size: bool, wtext: str | None,
              htext: str | None) -> tuple[int, int]:
        """<size> that is not two positive integers: 0 (read the header), with a warning if not a number."""
        out = []
        for tag, raw in (("width", wtext), ("height", htext)):
            text = raw.strip() if has_size and raw else None
            try:
                value = int(float(text)) if text else 0
            except ValueError:
                chunk.warn("bad-value", xml_path, "size", tag, f"not a number: {text!r} (reading the image header)")
                value = 0
            out.append(max(value, 0))
        return out[0], out[1]

    def _fast_objects(self, chunk: Chunk, path: str, parts: list[bytes], width: int, height: int,
                      local: dict[str, int], seen: dict[str, None],
                      known: dict[bytes, tuple[str, int | None] | None]) -> list[dict[str, Any]]:
        """The objects :func:`scan` split out; anything but a clean box goes through :meth:`_object`."""
        instances: list[dict[str, Any]] = []
        flags = _FLAGS
        drop = self.drop_difficult
        n_difficult = n_flagged = n_dropped = 0
        it = iter(parts)
        next(it)
        for i, (nm, tr, df, a, b, c, d, _) in enumerate(zip(it, it, it, it, it, it, it, it, strict=True)):
            got = known.get(nm, False)
            if got is False:
                got = known[nm] = self._known(nm)
            try:
                x1, y1, x2, y2 = int(a), int(b), int(c), int(d)
            except ValueError:
                got = None
            if (got is not None and x1 >= 0 and y1 >= 0 and x2 - x1 >= 1 and y2 - y1 >= 1 and x2 <= width
                    and y2 <= height and df in flags and tr in flags):
                difficult = flags[df]
                if difficult and drop:
                    n_dropped += 1
                    continue
                name, label = got
                if label is None:
                    label = -(local.setdefault(name, len(local)) + 1)  # placeholder, renumbered at the end
                seen[name] = None
                truncated = flags[tr]
                if difficult is not None and truncated is not None:  # labelImg, VOC: one dict literal
                    instances.append({"bbox": [x1 - 1, y1 - 1, x2 - 1, y2 - 1], "label": label, "category": name,
                                      "difficult": difficult, "truncated": truncated})
                    n_difficult += difficult
                    n_flagged += 1
                    continue
                inst: dict[str, Any] = {"bbox": [x1 - 1, y1 - 1, x2 - 1, y2 - 1], "label": label, "category": name}
                if difficult is not None:
                    inst["difficult"] = difficult
                    n_difficult += difficult
                    n_flagged += 1
                if truncated is not None:
                    inst["truncated"] = truncated
                instances.append(inst)
                continue
            inst = self._object(chunk, path, f"object[{i}]", nm.decode(), (a.decode(), b.decode(), c.decode(), d.decode()),
                                None if df is None else df.decode(), None if tr is None else tr.decode(),
                                width, height, local, seen)
            if inst is not None:
                instances.append(inst)
        if n_flagged:  # as _object: the counter appears (maybe 0) once a box has <difficult>
            chunk.stats["boxes_difficult"] += n_difficult
        if n_dropped:
            chunk.stats["dropped:difficult"] += n_dropped
        return instances

    def _known(self, raw: bytes) -> tuple[str, int | None] | None:
        """A class name and its label (None: a placeholder); None when :meth:`_object` must report it."""
        name = raw.decode().strip()
        if not name:
            return None
        if self.label_of is not None:
            label = self.label_of.get(name)
            return None if label is None else (name, label)
        return name, self.guess.get(name)

    def _object(self, chunk: Chunk, path: str, where: str, name_text: str | None, coords: tuple | None,
                diff_text: str | None, trunc_text: str | None, width: int, height: int,
                local: dict[str, int], seen: dict[str, None]) -> dict[str, Any] | None:
        # int()/float() accept the surrounding whitespace
        name = (name_text or "").strip()
        if not name:
            chunk.error("missing-value", path, where, "name", "missing or empty")
            return None
        label = 0
        if self.label_of is not None:
            label = self.label_of.get(name, -1)
            if label < 0:
                chunk.error("unknown-class", path, where, "name", f"{name!r} is not in --classes")
                return None
        if coords is None:
            chunk.error("missing-value", path, where, "bndbox", "missing")
            return None
        texts = coords
        try:  # the common case: four non-negative integers
            x1, y1, x2, y2 = int(texts[0]), int(texts[1]), int(texts[2]), int(texts[3])
            exact = x1 >= 0 and y1 >= 0
        except (TypeError, ValueError):
            exact = False
        if not exact:
            box: list[float] = []
            for tag, text in zip(("xmin", "ymin", "xmax", "ymax"), texts, strict=True):
                v, why = _coord(None if text is None else text.strip())
                if why is not None:
                    code = "negative-coordinate" if why.startswith("negative") else "bad-value"
                    chunk.error(code if why != "missing" else "missing-value", path, where, f"bndbox.{tag}", why)
                    return None
                box.append(v)  # type: ignore[arg-type]
            x1, y1, x2, y2 = box  # type: ignore[assignment]
        if x2 < x1 or y2 < y1:
            fld = "bndbox.xmax" if x2 < x1 else "bndbox.ymax"
            chunk.error("inverted-box", path, where, fld, f"max < min ({x1:g}, {y1:g}, {x2:g}, {y2:g})")
            return None
        if x2 > width or y2 > height:
            tag, v, limit, dim = ("xmax", x2, width, "width") if x2 > width else ("ymax", y2, height, "height")
            chunk.error("outside-image", path, where, f"bndbox.{tag}", f"{v:g} is outside the image ({dim} {limit})")
            return None
        if x2 - x1 < 1 or y2 - y1 < 1:
            chunk.stats["dropped:degenerate"] += 1
            chunk.warn("degenerate", path, where, "bndbox", f"zero-size box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) dropped")
            return None
        difficult = _flag(chunk, path, where, "difficult", diff_text)
        if difficult and self.drop_difficult:
            chunk.stats["dropped:difficult"] += 1
            return None
        truncated = _flag(chunk, path, where, "truncated", trunc_text)
        if self.label_of is None:
            guessed = self.guess.get(name)
            label = guessed if guessed is not None else -(local.setdefault(name, len(local)) + 1)
        seen[name] = None
        if exact:
            bbox: list[Any] = [x1 - 1, y1 - 1, x2 - 1, y2 - 1]
        else:
            bbox = [as_number(x1 - 1), as_number(y1 - 1), as_number(x2 - 1), as_number(y2 - 1)]
        inst: dict[str, Any] = {"bbox": bbox, "label": label, "category": name}
        if difficult is not None:
            inst["difficult"] = difficult
            chunk.stats["boxes_difficult"] += difficult
        if truncated is not None:
            inst["truncated"] = truncated
        return inst


def _split_ids(split_file: Path) -> list[tuple[str, int]]:
    """Image ids of an ``ImageSets`` list (first column, as ``<class>_train.txt`` has two)."""
    try:
        text = split_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise OdvgError(f"{split_file}: no such split file") from None
    return [(ln.split()[0], n) for n, ln in enumerate(text.splitlines(), 1) if ln.strip()]


def voc_items(root: Path, split: str | None, problems: ProblemLog) -> tuple[list[Item], str]:
    """The files to read, in order, and a description of the layout (for the summary)."""
    if root.is_file():
        if root.suffix.lower() == ".json":
            raise OdvgError(f"{root}: a JSON file, not Pascal VOC XML; COCO-style json: 'odvgkit convert coco2odvg'")
        if root.suffix.lower() != ".xml":
            raise OdvgError(f"{root}: not a folder or an .xml file (give a Pascal VOC root, a folder of XML files or one XML)")
        return [(str(root), str(root.parent), root.stem, (str(root), None))], "one XML file"
    if not root.is_dir():
        raise OdvgError(f"{root}: no such file or folder")
    ann = root / "Annotations"
    if ann.is_dir():
        img_dir = root / "JPEGImages"
        if not img_dir.is_dir():
            raise OdvgError(f"{img_dir}: no such folder (the VOC layout keeps images there)")
        a, d = str(ann) + os.sep, str(img_dir)  # strings: 10⁵ Path objects cost a second
        if split is None:
            items = [(a + n, d, n[:-4], (a + n, None)) for n in sorted(os.listdir(ann)) if n.lower().endswith(".xml")]
            return items, "VOC layout, every file in Annotations/"
        if split in SPLITS:
            split_file = root / "ImageSets" / "Main" / f"{split}.txt"
            if not split_file.is_file():
                raise OdvgError(f"{split_file}: no such split file (--split train|val|test|trainval|FILE)")
        else:
            split_file = Path(split)
            if not split_file.is_file():
                raise OdvgError(f"--split {split}: not train|val|test|trainval and no such file")
        items, seen = [], set()
        listed = str(split_file)
        for stem, line in _split_ids(split_file):
            if stem in seen:
                problems.warn("duplicate-id", split_file, line, None, f"{stem} listed twice (kept once)")
                continue
            seen.add(stem)
            xml = a + stem + ".xml" if "/" not in stem and os.sep not in stem else str(ann / f"{stem}.xml")
            items.append((xml, d, stem, (listed, line)))
        return items, f"VOC layout, split {split_file}"
    if split is not None:
        raise OdvgError(f"{root}: --split needs the VOC layout (Annotations/, ImageSets/Main/)")
    for sub in ("VOC2007", "VOC2012"):
        if (root / sub / "Annotations").is_dir():
            raise OdvgError(f"{root}: a VOCdevkit folder; give one dataset, e.g. {root / sub}")
    names = sorted(n for n in os.listdir(root) if n.lower().endswith(".xml"))
    if not names:
        if (root / "labels").is_dir() or (root / "data.yaml").is_file() or (root / "classes.txt").is_file():
            raise OdvgError(f"{root}: a YOLO dataset (labels/, data.yaml or classes.txt), not Pascal VOC; "
                            "use 'odvgkit convert yolo2odvg'")
        raise OdvgError(f"{root}: no Pascal VOC XML files (looked in {ann} and {root})")
    r = str(root)
    return [(os.path.join(r, n), r, n[:-4], (os.path.join(r, n), None)) for n in names], "flat folder of XML files"


def voc_to_odvg(
    root: str | Path,
    *,
    split: str | None = None,
    classes: Sequence[str] | None = None,
    drop_difficult: bool = False,
    check_sizes: bool = False,
    problems: ProblemLog | None = None,
    on_files: Callable[[int], None] | None = None,
    workers: int | None = None,
) -> FileConversion:
    """Convert a Pascal VOC dataset; see the module docstring for the rules.

    Filenames in the records are relative to ``root`` (``JPEGImages/x.jpg``), so ``root`` is the
    image root for ``validate --images-root`` and training.
    """
    root = Path(root)
    problems = problems if problems is not None else ProblemLog()
    items, layout = voc_items(root, split, problems)
    images_root = root.parent if root.is_file() else root
    folders = sorted({it[1] for it in items})
    label_of = None if classes is None else {n: i for i, n in enumerate(classes)}
    guess = {} if classes is not None else {n: i for i, n in enumerate(_guess_names(items))}
    parser = _Parser(images_root, label_of, drop_difficult, check_sizes, folders, guess)
    stats: Counter[str] = Counter()
    info = {"layout": layout}
    chunks = map_chunks(parser, items, workers)
    if classes is not None:
        info["class_order"] = "as given by --classes"
        label_map = {str(i): n for i, n in enumerate(classes)}
        return FileConversion(info=info, records=_records(_direct(chunks, problems, stats, on_files)), label_map=label_map,
                          stats=stats, jsonl_chunks=_direct(chunks, problems, stats, on_files), total=len(items))
    # Labels are only known once every name was seen: parse everything now, spool the bytes.
    spool: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed by the generator below
    index: list[tuple[int, int, list[str]]] = []
    names: set[str] = set()
    try:
        for chunk in chunks:
            replay(chunk, problems, stats)
            spool.write(chunk.data)
            index.append((len(chunk.data), chunk.count, chunk.names))
            names.update(chunk.seen)
            if on_files is not None:
                on_files(chunk.files)
    except BaseException:  # --strict stopped, Ctrl-C: the spool goes now, not at garbage collection
        spool.close()
        raise
    ordered = sorted(names)
    info["class_order"] = "sorted names found (no --classes)"
    label_map = {str(i): n for i, n in enumerate(ordered)}
    final = {n: i for i, n in enumerate(ordered)}
    gen = _renumbered(spool, index, final, None if final == guess else guess)
    return FileConversion(info=info, records=_records(gen), label_map=label_map, stats=stats, jsonl_chunks=gen, total=len(items))


GUESS_SAMPLE = 64


def _names(folder: str) -> frozenset[str]:
    try:
        return frozenset(os.listdir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return frozenset()


def _guess_names(items: Sequence[Item]) -> list[str]:
    """The sorted class names of a few files spread over the dataset: the label map expected.

    Without ``--classes`` a label is a name's rank among all names, known only after the last
    file. Workers label with this guess (names outside it get chunk-local placeholders); when the
    names found are exactly the guess — a sample of a dataset usually shows all its classes —
    the output needs no renumbering pass."""
    step = max(1, len(items) // GUESS_SAMPLE)
    names: set[str] = set()
    for item in items[::step]:
        try:
            with open(item[0], "rb") as fh:
                names.update(n for n in names_in(fh.read()) if n)
        except OSError:
            continue
    return sorted(names)


def _direct(chunks: Iterator[Chunk], problems: ProblemLog, stats: Counter[str],
            on_files: Callable[[int], None] | None) -> Iterator[tuple[bytes, int]]:
    for chunk in chunks:
        replay(chunk, problems, stats)
        if on_files is not None:
            on_files(chunk.files)
        if chunk.count:
            yield chunk.data, chunk.count


_LABEL = re.compile(rb'"label":-?\d+,')


def _renumbered(spool: IO[bytes], index: list[tuple[int, int, list[str]]], label_of: dict[str, int],
                guess: dict[str, int] | None) -> Iterator[tuple[bytes, int]]:
    """The spooled chunks; when the guess was wrong, every label rewritten (one regex pass a chunk)."""
    with spool:
        spool.seek(0)
        common: dict[bytes, bytes] = {}
        for name, old in (guess or {}).items():
            if name in label_of:
                common[b'"label":%d,' % old] = b'"label":%d,' % label_of[name]
        for size, count, local in index:
            data = spool.read(size)
            if not count:
                continue
            if guess is not None:
                # the trailing comma keeps -1 apart from -12
                table = {**common, **{b'"label":-%d,' % k: b'"label":%d,' % label_of[n] for k, n in enumerate(local, 1)}}
                data = _LABEL.sub(lambda m, t=table: t[m[0]], data)  # type: ignore[misc]
            yield data, count


def _records(chunks: Iterator[tuple[bytes, int]]) -> Iterator[dict[str, Any]]:
    """The same records as dicts, for outputs other than JSON Lines (Parquet)."""
    for data, _ in chunks:
        for line in data.splitlines():
            yield orjson.loads(line)
