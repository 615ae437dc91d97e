"""Pixels: draw a :class:`~odvgkit.browse.scene.Scene` on an image with Pillow alone.

Layout of one panel (top to bottom): the image at its own size (so box pixels sit exactly at the
record's coordinates, unless ``max_side`` shrinks it), then a white strip with a title line and
the caption, wrapped to the image width, each ``tokens_positive`` span on a background of its
region's colour. Two panels side by side (ground truth | predictions) are joined with a gap.
The font is Pillow's built-in scalable default font, so no system font is needed.
"""

from __future__ import annotations

import itertools
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

from odvgkit.browse.scene import RGB, DrawSpan, Scene

BACKGROUND: RGB = (255, 255, 255)
TEXT: RGB = (0, 0, 0)
MUTED: RGB = (90, 90, 90)
PLACEHOLDER: RGB = (200, 200, 200)
GAP = 16  # pixels between side-by-side panels
GAP_COLOR: RGB = (255, 255, 255)

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@lru_cache(maxsize=16)
def font(size: int) -> Font:
    return ImageFont.load_default(size=size)


def sizes_for(width: int, height: int) -> tuple[int, int]:
    """``(font size, line width)`` that read well at this image size."""
    side = max(width, height)
    return max(12, min(28, round(side / 45))), max(2, round(side / 320))


def text_color_on(bg: RGB) -> RGB:
    """Black on light colours, white on dark ones (relative luminance)."""
    r, g, b = bg
    return TEXT if 0.299 * r + 0.587 * g + 0.114 * b > 140 else (255, 255, 255)


def placeholder(width: int, height: int, message: str) -> Image.Image:
    """A grey canvas of the record's size, so boxes still show when the image cannot be read."""
    im = Image.new("RGB", (max(1, width), max(1, height)), PLACEHOLDER)
    size, _ = sizes_for(width, height)
    ImageDraw.Draw(im).text((8, 8), message, fill=TEXT, font=font(size))
    return im


def draw_boxes(image: Image.Image, scene: Scene, scale: float = 1.0) -> Image.Image:
    """Draw each box's outline and a filled label tab at its top-left corner (in place)."""
    draw = ImageDraw.Draw(image)
    size, width = sizes_for(*image.size)
    f = font(size)
    # Pillow's drawing code overflows (SystemError) on coordinates far beyond C ints; anything
    # further out than this is off the picture anyway, so clamping changes no visible pixel.
    limit = 4.0 * max(image.size) + 1024.0
    for box in scene.boxes:
        x1, y1, x2, y2 = (min(max(v * scale, -limit), limit) for v in box.xyxy)
        x1, x2 = min(x1, x2), max(x1, x2)
        y1, y2 = min(y1, y2), max(y1, y2)
        draw.rectangle((x1, y1, x2, y2), outline=box.color, width=width)
    for box in scene.boxes:  # labels after all outlines so no outline crosses a label
        if not box.text:
            continue
        x1, y1 = (min(max(min(a, b) * scale, -limit), limit) for a, b in ((box.xyxy[0], box.xyxy[2]), (box.xyxy[1], box.xyxy[3])))
        _left, _top, right, bottom = f.getbbox(box.text)
        tab_h = bottom + 4
        tab_w = right + 6
        ty = y1 - tab_h if y1 - tab_h >= 0 else y1  # above the box, or inside when at the top edge
        tx = min(max(0.0, x1), max(0.0, image.width - tab_w))
        draw.rectangle((tx, ty, tx + tab_w, ty + tab_h), fill=box.color)
        draw.text((tx + 3, ty + 2), box.text, fill=text_color_on(box.color), font=f)
    return image


def wrap(text: str, f: Font, width: float) -> list[tuple[int, int]]:
    """Greedy word wrap; returns ``[start, end)`` character ranges of ``text``, one per line.

    Ranges index the original string (spaces at a break stay at the end of the line), so caption
    spans can be mapped onto lines exactly. A word wider than the line is cut by characters.
    """
    lines: list[tuple[int, int]] = []
    for para_start, para in _paragraphs(text):
        stop = para_start + len(para)
        if para_start == stop:
            lines.append((para_start, stop))  # an empty line keeps its place
            continue
        start = end = i = para_start
        while i < stop:
            j = i
            while j < stop and text[j] != " ":
                j += 1
            while j < stop and text[j] == " ":
                j += 1  # the word plus its trailing spaces
            if f.getlength(text[start:j].rstrip(" ")) <= width:
                end = i = j
            elif end > start:  # the line has words: break before this one
                lines.append((start, end))
                start = end
            else:  # one word wider than the line: cut it
                cut = _cut(text, f, width, start, j)
                lines.append((start, cut))
                start = end = i = cut
        if end > start:
            lines.append((start, end))
    return lines


def _paragraphs(text: str) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    pos = 0
    for part in text.split("\n"):
        out.append((pos, part))
        pos += len(part) + 1
    return out


def _cut(text: str, f: Font, width: float, start: int, stop: int) -> int:
    """The longest prefix of ``text[start:stop]`` that fits (at least one character)."""
    j = start + 1
    while j < stop and f.getlength(text[start : j + 1]) <= width:
        j += 1
    return j


def caption_strip(
    width: int, title: str, caption: str | None, spans: list[DrawSpan], size: int, note: str = ""
) -> Image.Image:
    """The white strip under an image: title (+ note) line, then the wrapped, highlighted caption."""
    f = font(size)
    margin = max(4, size // 2)
    line_h = size + max(4, size // 3)
    usable = max(1, width - 2 * margin)
    lines = wrap(caption, f, usable) if caption else []
    height = margin + line_h * (1 + len(lines)) + margin
    strip = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(strip)
    draw.text((margin, margin), title + (f"   {note}" if note else ""), fill=MUTED, font=f)
    y = margin + line_h
    for start, end in lines:
        for span in spans:
            a, b = max(span.start, start), min(span.end, end)
            if a >= b:
                continue
            x0 = margin + f.getlength(caption[start:a])  # type: ignore[index]
            x1 = margin + f.getlength(caption[start:b])  # type: ignore[index]
            draw.rectangle((x0, y - 1, x1, y + line_h - 3), fill=span.color)
        for a, b, color in _segments(start, end, spans):  # text contrasts with its span colour
            x = margin + f.getlength(caption[start:a])  # type: ignore[index]
            draw.text((x, y), caption[a:b], fill=text_color_on(color) if color else TEXT, font=f)  # type: ignore[index]
        y += line_h
    return strip


def _segments(start: int, end: int, spans: list[DrawSpan]) -> list[tuple[int, int, RGB | None]]:
    """Cut ``[start, end)`` at span borders; each piece with the colour drawn last under it."""
    cuts = sorted({start, end} | {p for s in spans for p in (s.start, s.end) if start < p < end})
    out: list[tuple[int, int, RGB | None]] = []
    for a, b in itertools.pairwise(cuts):
        color = None
        for span in spans:
            if span.start <= a and b <= span.end:
                color = span.color
        out.append((a, b, color))
    return out


def panel(image: Image.Image, scene: Scene, title: str, max_side: int | None = None, note: str = "") -> Image.Image:
    """One image with its boxes and, underneath, its title and highlighted caption."""
    image = image.convert("RGB")
    scale = 1.0
    if max_side and max(image.size) > max_side:
        scale = max_side / max(image.size)
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
    else:
        image = image.copy()
    draw_boxes(image, scene, scale)
    size, _ = sizes_for(*image.size)
    strip = caption_strip(image.width, title, scene.caption, scene.spans, size, note)
    out = Image.new("RGB", (image.width, image.height + strip.height), BACKGROUND)
    out.paste(image, (0, 0))
    out.paste(strip, (0, image.height))
    return out


def side_by_side(left: Image.Image, right: Image.Image) -> Image.Image:
    """Join two panels left to right, top-aligned, with a white gap of :data:`GAP` pixels."""
    out = Image.new("RGB", (left.width + GAP + right.width, max(left.height, right.height)), GAP_COLOR)
    out.paste(left, (0, 0))
    out.paste(right, (left.width + GAP, 0))
    return out
