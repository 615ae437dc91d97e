"""``odvgkit.images``' own JPEG/PNG header reader against Pillow, the library path.

Whatever the reader answers must be what Pillow answers (size, EXIF orientation 5–8 swapping
width and height, errors): images of many kinds are generated — EXIF-rotated, progressive,
CMYK, big-endian EXIF, ICC, XMP, MPO, PNG of every colour type, with text, eXIf, APNG — and then
truncated and mutated byte by byte.
"""

from __future__ import annotations

import io
import random
import struct
import warnings
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin, TiffImagePlugin

from odvgkit import images
from odvgkit.errors import OdvgError


def _tiff(entries: list[tuple[int, int, int, bytes]], big: bool = False) -> bytes:
    """A TIFF block with one IFD: (tag, type, count, 4-byte value field)."""
    e = ">" if big else "<"
    out = (b"MM\x00*" if big else b"II*\x00") + struct.pack(e + "I", 8) + struct.pack(e + "H", len(entries))
    for tag, typ, count, value in entries:
        out += struct.pack(e + "HHI", tag, typ, count) + value
    return out + b"\x00\x00\x00\x00"


def _short(v: int, big: bool = False) -> bytes:
    return struct.pack(">HH" if big else "<HH", v, 0)


def _app1(tiff: bytes) -> bytes:
    body = b"Exif\x00\x00" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body


def _jpegs() -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    base = Image.new("RGB", (37, 23), (200, 30, 60))
    for mode in ("L", "RGB", "CMYK"):
        for kw in ({}, {"progressive": True}, {"optimize": True, "quality": 40}, {"subsampling": 0}):
            buf = io.BytesIO()
            base.convert(mode).save(buf, "JPEG", **kw)
            out[f"{mode}-{sorted(kw)}"] = buf.getvalue()
    for k in range(0, 10):
        exif = Image.Exif()
        exif[0x0112] = k
        exif[0x010F] = "maker"
        buf = io.BytesIO()
        base.save(buf, "JPEG", exif=exif, dpi=(72, 72) if k % 2 else (0, 0))
        out[f"exif-{k}"] = buf.getvalue()
    plain = out["RGB-[]"]
    odd_tiffs = {
        "be-6": _tiff([(0x0112, 3, 1, _short(6, True))], big=True),
        "le-8": _tiff([(0x0110, 2, 4, b"abc\x00"), (0x0112, 3, 1, _short(8))]),
        "long": _tiff([(0x0112, 4, 1, struct.pack("<I", 6))]),
        "count2": _tiff([(0x0112, 3, 2, _short(6))]),
        "twice": _tiff([(0x0112, 3, 1, _short(6)), (0x0112, 3, 1, _short(1))]),
        "outside": _tiff([(0x010F, 2, 400, struct.pack("<I", 8)), (0x0112, 3, 1, _short(6))]),
        "unknown-type": _tiff([(0x9999, 99, 1, b"\x00" * 4), (0x0112, 3, 1, _short(6))]),
        "no-ifd": b"II*\x00" + struct.pack("<I", 4000),
        "not-tiff": b"XX*\x00\x08\x00\x00\x00",
        "empty": b"",
        "double-prefix": b"Exif\x00\x00" + _tiff([(0x0112, 3, 1, _short(6))]),
    }
    for name, tiff in odd_tiffs.items():
        out[f"tiff-{name}"] = plain[:2] + _app1(tiff) + plain[2:]
    out["two-exif"] = plain[:2] + _app1(odd_tiffs["le-8"]) + _app1(odd_tiffs["be-6"]) + plain[2:]
    xmp = b'http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta><rdf:Description tiff:Orientation="6"/></x:xmpmeta>'
    out["xmp"] = plain[:2] + b"\xff\xe1" + struct.pack(">H", len(xmp) + 2) + xmp + plain[2:]
    out["comment"] = plain[:2] + b"\xff\xfe\x00\x07hello" + plain[2:]
    out["padding"] = plain[:2] + b"\xff\xff" + plain[2:]
    out["junk"] = plain[:2] + b"\x00\x01" + plain[2:]
    out["short-jfif"] = plain[:2] + b"\xff\xe0\x00\x06JFIF" + plain[2:]
    out["short-adobe"] = plain[:2] + b"\xff\xee\x00\x07Adobe" + plain[2:]
    out["photoshop"] = plain[:2] + b"\xff\xed\x00\x10Photoshop 3.0\x00" + plain[2:]
    buf = io.BytesIO()
    base.save(buf, "JPEG", icc_profile=b"\x00" * 300)
    out["icc"] = buf.getvalue()
    buf = io.BytesIO()
    base.save(buf, "MPO", save_all=True, append_images=[base.rotate(90, expand=True)])
    out["mpo"] = buf.getvalue()
    buf = io.BytesIO()
    Image.new("RGB", (3000, 20)).save(buf, "JPEG")
    out["wide"] = buf.getvalue()
    return out


def _pngs() -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    base = Image.new("RGBA", (29, 41), (1, 2, 3, 128))
    for mode in ("1", "L", "LA", "P", "RGB", "RGBA", "I;16"):
        im = base.convert(mode) if mode != "I;16" else Image.new("I;16", (29, 41), 300)
        for kw in ({}, {"transparency": 0} if mode in ("1", "L", "P", "I;16") else {"transparency": (1, 2, 3)} if mode == "RGB" else {},
                   {"dpi": (96, 96)}, {"bits": 4} if mode == "P" else {}):
            buf = io.BytesIO()
            im.save(buf, "PNG", **kw)
            out[f"{mode}-{sorted(kw)}"] = buf.getvalue()
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", "odvgkit")
    info.add_text("Comment", "x" * 2000, zip=True)
    info.add_itxt("Title", "titre", lang="fr")
    plain_text = PngImagePlugin.PngInfo()
    plain_text.add_text("Software", "odvgkit")
    for name, kw in {"text": {"pnginfo": info}, "tEXt": {"pnginfo": plain_text}, "icc.png": {"icc_profile": b"\x00" * 200},
                     "exif-6.png": {"exif": _tiff([(0x0112, 3, 1, _short(6))])}}.items():
        buf = io.BytesIO()
        base.save(buf, "PNG", **kw)
        out[name] = buf.getvalue()
    exif_text = PngImagePlugin.PngInfo()
    exif_text.add_text("exif", "not exif")
    buf = io.BytesIO()
    base.save(buf, "PNG", pnginfo=exif_text)
    out["text-exif"] = buf.getvalue()
    buf = io.BytesIO()
    base.save(buf, "PNG", save_all=True, append_images=[base.rotate(90)])
    out["apng"] = buf.getvalue()
    return out


def _others() -> dict[str, bytes]:
    out = {}
    for fmt in ("BMP", "GIF", "WEBP", "TIFF"):
        buf = io.BytesIO()
        Image.new("RGB", (13, 17)).save(buf, fmt)
        out[fmt] = buf.getvalue()
    out["empty"] = b""
    out["text"] = b"not an image"
    return out


def _answer(path: Path, exif: bool, reader: bool) -> tuple[int, int] | str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return images.image_size(path, exif) if reader else images._pillow_size(path, exif)
        except OdvgError as exc:
            return str(exc)


def _check(tmp_path: Path, name: str, data: bytes) -> bool:
    """Same answer both ways; True when the reader answered by itself (EXIF applied)."""
    p = tmp_path / name
    p.write_bytes(data)
    for exif in (True, False):
        assert _answer(p, exif, True) == _answer(p, exif, False), (name, exif)
    with open(p, "rb") as fh:
        return images.header_size(fh) is not None


def test_reader_answers_as_pillow_on_generated_images(tmp_path: Path) -> None:
    answered = {name: _check(tmp_path, name, data) for name, data in {**_jpegs(), **_pngs(), **_others()}.items()}
    # the reader must do the usual work itself (else it is no faster)
    for name in ("RGB-[]", "RGB-['progressive']", "CMYK-[]", "exif-6", "exif-8", "tiff-be-6", "tiff-le-8", "comment", "icc",
                 "wide", "RGB-['dpi']", "P-['transparency']", "I;16-[]", "tEXt", "LA-[]"):
        assert answered[name], name
    for name in ("xmp", "mpo", "two-exif", "tiff-long", "tiff-twice", "apng", "BMP", "exif-6.png", "text"):
        assert not answered[name], name


def test_orientation_swaps_width_and_height(tmp_path: Path) -> None:
    jpegs = _jpegs()
    for k in range(10):
        p = tmp_path / f"o{k}.jpg"
        p.write_bytes(jpegs[f"exif-{k}"])
        assert images.image_size(p) == ((23, 37) if k in (5, 6, 7, 8) else (37, 23))
        assert images.image_size(p, exif=False) == (37, 23)
    p = tmp_path / "be.jpg"
    p.write_bytes(jpegs["tiff-be-6"])
    assert images.image_size(p) == (23, 37)


@pytest.mark.parametrize("seed", range(4))
def test_reader_answers_as_pillow_on_damaged_images(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    bases = {**_jpegs(), **_pngs()}
    names = sorted(bases)
    for k in range(150):
        data = bytearray(bases[rng.choice(names)])
        how = rng.random()
        if how < 0.3:
            data = data[: rng.randrange(len(data))]
        elif how < 0.8:
            for _ in range(rng.randint(1, 3)):
                data[rng.randrange(min(len(data), 400))] = rng.choice([0, 1, 2, 0xFF, 0xD8, 0xDA, 0xE1, rng.randrange(256)])
        else:
            at = rng.randrange(min(len(data), 400))
            data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
        _check(tmp_path, f"d{k}", bytes(data))


def test_tables_mirror_pillow() -> None:
    assert {k: v[0] for k, v in TiffImagePlugin.ImageFileDirectory_v2._load_dispatch.items()} == images._TIFF_UNITS
    assert {b"IHDR", b"IDAT", b"PLTE", b"tRNS", b"tEXt", b"eXIf", *images._PNG_MIN} <= images._PNG_HANDLED


def test_bomb_limit_and_truncated_switch_go_to_pillow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import ImageFile

    p = tmp_path / "a.jpg"
    p.write_bytes(_jpegs()["wide"])
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with open(p, "rb") as fh:
        assert images.header_size(fh) is None
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    with open(p, "rb") as fh:
        assert images.header_size(fh) == (3000, 20)
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    monkeypatch.setattr(images, "_pillow_size", lambda path, exif: (1, 1))
    assert images.image_size(p) == (1, 1)
