"""voc2odvg's regex scanner (``odvgkit.convert.voc.scan``) against ElementTree, the library path.

The scanner reads files of the usual shape without building a tree; whenever it accepts a file,
what it reads must be exactly what ElementTree reads, and everything else must be left to
ElementTree (malformed XML included). Documents are assembled from real-world and hostile pieces
(hypothesis), then mutated byte by byte.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SHARED_FIXTURES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from odvgkit.convert import voc
from odvgkit.convert._perfile import Chunk

DECLS = [b"", b'<?xml version="1.0"?>\n', b'<?xml version="1.0" encoding="UTF-8"?>\n', b"<?xml version='1.0' encoding='utf-8' standalone='no'?>",
         b'<?xml version="1.0" encoding="ISO-8859-1"?>\n', b' <?xml version="1.0"?>', b"\xef\xbb\xbf", b'<?xml version="1.1"?>']
ROOTS = [b"<annotation>", b'<annotation verified="yes">', b"<annotation >", b'<annotation xmlns="http://x">',
         b"<annotations>", b'<annotation a="1" b="2">', b"<annotation a='>'>", b"<Annotation>"]
HEADS = [b"\n\t<folder>VOC2007</folder>", b"\n\t<filename>x.jpg</filename>", b"<filename> y.png </filename>",
         b"<filename></filename>", b"<filename/>", b"<filename>a&amp;b.jpg</filename>", b'<filename id="1">x.jpg</filename>',
         b"\n\t<size>\n\t\t<width>64</width>\n\t\t<height>48</height>\n\t\t<depth>3</depth>\n\t</size>",
         b"<size><width>64</width><height>48</height></size>", b"<size><height>48</height><width>64</width></size>",
         b"<size><width> 64 </width><height>4x8</height></size>", b"<size><width></width><height>48</height></size>",
         b"<size><width>64.0</width><height>48</height></size>", b"<size/>", b"<size>64</size>",
         b"<source><database>db</database><size><width>1</width><height>1</height></size></source>",
         b"<source><database>The VOC2007 Database</database><annotation>PASCAL VOC2007</annotation></source>",
         b"<source><filename>z.jpg</filename></source>", b"<segmented>0</segmented>", b"<!-- comment -->",
         b"<owner><flickrid>x</flickrid><name>?</name></owner>", b"<path>C:\\data\\x.jpg</path>", b"junk text",
         b"<![CDATA[x]]>", b"<empty/>", b"<a><b><c>deep</c></b></a>", b"<object><name>cat</name></object>"]
OBJECTS = [
    b"\n\t<object>\n\t\t<name>cat</name>\n\t\t<pose>Unspecified</pose>\n\t\t<truncated>0</truncated>\n\t\t<difficult>0</difficult>"
    b"\n\t\t<bndbox>\n\t\t\t<xmin>1</xmin>\n\t\t\t<ymin>2</ymin>\n\t\t\t<xmax>30</xmax>\n\t\t\t<ymax>40</ymax>\n\t\t</bndbox>\n\t</object>",
    b"<object><name>dog</name><bndbox><xmin>5</xmin><ymin>5</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object>",
    b"<object><name>dog</name><difficult>1</difficult><bndbox><xmin>5</xmin><ymin>5</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object>",
    b"<object><name>dog</name><pose>Left</pose><truncated>1</truncated><difficult>0</difficult><occluded>0</occluded>"
    b"<bndbox><xmin>1.5</xmin><ymin>2</ymin><xmax>9.25</xmax><ymax>40</ymax></bndbox></object>",
    b"<object><bndbox><xmin>5</xmin><ymin>5</ymin><xmax>9</xmax><ymax>9</ymax></bndbox><name>cow</name></object>",
    b"<object><name> cat </name><difficult> 1 </difficult><bndbox><xmin> 1 </xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></object>",
    b"<object><name></name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></object>",
    b"<object><name/><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></object>",
    b"<object><name>ca&lt;t</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></object>",
    b"<object><name><![CDATA[cat]]></name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></object>",
    b"<object><name>caf\xc3\xa9 \xe6\x97\xa5</name><bndbox><xmin>\xd9\xa1</xmin><ymin>2</ymin><xmax>\xef\xbc\x93</xmax><ymax>4</ymax></bndbox></object>",
    b"<object><name>cat</name><bndbox><xmin>-1</xmin><ymin>nan</ymin><xmax></xmax><ymax>4</ymax></bndbox></object>",
    b"<object><name>cat</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>70</xmax><ymax>4</ymax></bndbox></object>",
    b"<object><name>cat</name><bndbox><xmin>3</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></object>",
    b"<object><name>cat</name><bndbox><xmin>9</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></object>",
    b"<object><name>cat</name><difficult>2</difficult><truncated></truncated><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></object>",
    b"<object><name>cat</name><truncated>1</truncated><difficult>1</difficult><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></object>",
    b"<object><name>cat</name></object>",
    b"<object><name>person</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>30</xmax><ymax>40</ymax></bndbox>"
    b"<part><name>head</name><bndbox><xmin>2</xmin><ymin>3</ymin><xmax>5</xmax><ymax>6</ymax></bndbox></part></object>",
    b'<object id="3"><name>cat</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></object>',
    b"<object><name>cat</name><!-- c --><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></object>",
    b"<object><name>cat</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox ></object>",
    b"<object><name>cat\r\nx</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></object>",
    b"<object><name>1_0</name><bndbox><xmin>1_0</xmin><ymin>+2</ymin><xmax>1e1</xmax><ymax>0x4</ymax></bndbox></object>",
]
GAPS = [b"", b"\n", b"\r\n\t", b" x ", b"<segmented>0</segmented>", b"<!---->", b"\x0c"]
TAILS = [b"</annotation>", b"</annotation>\n", b"\n</annotation>\r\n", b"</annotation>junk", b"</annotation><!-- c -->", b"",
         b"</annotations>", b"<size><width>64</width><height>48</height></size></annotation>", b"</annotation >"]
SPECIAL = [b"<", b">", b"&", b'"', b"/", b"\x01", b"\xff", b"]]>", b"\r", b"\xef\xbf\xbe", b"<object>", b"</size>", b"\t"]


def _tree(data: bytes) -> tuple | None:
    parser = voc._Parser(Path("."), None, False, False, {}, {})
    return parser._tree(Chunk(), "x.xml", data)


def _scanned(data: bytes) -> tuple | None:
    found = voc.scan(data)
    if found is None:
        return None
    header, parts = found
    objects = [(nm.decode(), (a.decode(), b.decode(), c.decode(), d.decode()), None if df is None else df.decode(),
                None if tr is None else tr.decode())
               for nm, tr, df, a, b, c, d in zip(*(parts[k::8] for k in range(1, 8)), strict=True)]
    return header, objects


def _same_as_elementtree(data: bytes) -> bool:
    """True when the scanner read the file; then ElementTree must read exactly the same."""
    mine = _scanned(data)
    if mine is None:
        return False
    assert mine == _tree(data), data
    return True


def _documents(decls: list[bytes], roots: list[bytes], heads: list[bytes], objects: list[bytes], gaps: list[bytes],
               tails: list[bytes]) -> st.SearchStrategy[bytes]:
    return st.builds(
        lambda decl, root, hs, objs, gs, tail: decl + root + b"".join(hs) + b"".join(o + g for o, g in zip(objs, gs, strict=False)) + tail,
        st.sampled_from(decls), st.sampled_from(roots), st.lists(st.sampled_from(heads), max_size=5),
        st.lists(st.sampled_from(objects), max_size=4), st.lists(st.sampled_from(gaps), min_size=4, max_size=4),
        st.sampled_from(tails))


# pieces the scanner takes, so that most documents exercise it, and every piece
_CLEAN_HEADS = [h for k, h in enumerate(HEADS) if k in (0, 1, 2, 3, 7, 8, 10, 11, 12, 16, 18, 20, 21, 22, 24)]
_CLEAN_OBJECTS = [o for k, o in enumerate(OBJECTS) if k not in (4, 7, 8, 9, 15, 17, 18, 19, 20, 21)]
documents = st.one_of(_documents(DECLS[:4], ROOTS[:3], _CLEAN_HEADS, _CLEAN_OBJECTS, GAPS[:3], [*TAILS[:3], TAILS[7]]),
                      _documents(DECLS, ROOTS, HEADS, OBJECTS, GAPS, TAILS))


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents, st.integers(0, 10_000), st.sampled_from([b"", *SPECIAL]))
def test_scanner_reads_what_elementtree_reads(doc: bytes, at: int, insert: bytes) -> None:
    _same_as_elementtree(doc)
    if insert:
        at %= len(doc) + 1
        _same_as_elementtree(doc[:at] + insert + doc[at:])
        _same_as_elementtree(doc[:at] + doc[at + 1:])
        _same_as_elementtree(doc[:at] + doc[at + len(insert):])


def test_the_usual_shapes_take_the_scanner() -> None:
    usual = [b'<?xml version="1.0" encoding="utf-8"?>\n' + ROOTS[1] + HEADS[0] + HEADS[1] + HEADS[7] + OBJECTS[0] + b"\n" + OBJECTS[3] + TAILS[1],
             ROOTS[0] + HEADS[7] + HEADS[16] + HEADS[18] + b"".join(OBJECTS[:4]) + b"\r\n" + TAILS[0],
             ROOTS[0] + HEADS[1] + TAILS[0],
             (ROOTS[0] + HEADS[1] + OBJECTS[0] + OBJECTS[1] + TAILS[7]).replace(b"\n", b"\r\n")]
    for data in usual:
        assert _same_as_elementtree(data), data
    bccd = sorted((SHARED_FIXTURES / "bccd_voc" / "Annotations").glob("*.xml"))
    assert bccd and all(_same_as_elementtree(p.read_bytes()) for p in bccd)
    for case in (OBJECTS[4], OBJECTS[8], OBJECTS[18], OBJECTS[20], HEADS[15], HEADS[25]):  # left to ElementTree
        assert voc.scan(ROOTS[0] + HEADS[7] + case + TAILS[0]) is None


def _both_ways(root: Path, out: Path, classes: list[str] | None, monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    from odvgkit.convert.base import write_conversion
    from odvgkit.convert.voc import voc_to_odvg
    from odvgkit.errors import ProblemLog

    results = []
    out = out / f"out_{root.name}"  # one folder per converted dataset: outputs are never replaced silently
    out.mkdir()
    with monkeypatch.context() as m:
        for use_scanner in (True, False):
            if not use_scanner:
                m.setattr(voc, "scan", lambda data: None)
            problems = ProblemLog()
            conv = voc_to_odvg(root, classes=classes, problems=problems, workers=1)
            write_conversion(conv, out / f"o{use_scanner}.jsonl", inputs=[root], label_map_path=out / f"lm{use_scanner}.json")
            results.append(((out / f"o{use_scanner}.jsonl").read_bytes(), (out / f"lm{use_scanner}.json").read_text(),
                            dict(conv.stats), json.dumps(problems.as_dict())))
    assert results[0] == results[1]
    return results


@pytest.mark.parametrize("classes", [None, ["cat", "dog", "cow", "person", "1_0", "café 日"]])
def test_conversion_is_the_same_without_the_scanner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   classes: list[str] | None) -> None:
    """Every piece above as a file of its own: the same records, label map, counters and problems."""
    root = tmp_path / "flat"
    root.mkdir()
    docs = [ROOTS[0] + h + TAILS[1] for h in HEADS] + [ROOTS[1] + HEADS[7] + o + g + OBJECTS[1] + TAILS[0]
                                                       for o in OBJECTS for g in GAPS[:3]]
    docs += [d + ROOTS[0] + HEADS[1] + HEADS[7] + OBJECTS[0] + TAILS[0] for d in DECLS]
    for k, doc in enumerate(docs):
        (root / f"f{k:03d}.xml").write_bytes(doc)
        Image.new("RGB", (64, 48)).save(root / f"f{k:03d}.jpg")
    results = _both_ways(root, tmp_path, classes, monkeypatch)
    assert results[0][2]["images"] > 50 and json.loads(results[0][3])["errors"] > 10
    # no difficult box anywhere: the counter is there all the same, at 0
    easy = tmp_path / "easy"
    easy.mkdir()
    for k in range(3):
        (easy / f"e{k}.xml").write_bytes(ROOTS[0] + HEADS[7] + OBJECTS[0] + TAILS[0])
        Image.new("RGB", (64, 48)).save(easy / f"e{k}.jpg")
    assert _both_ways(easy, tmp_path, classes, monkeypatch)[0][2]["boxes_difficult"] == 0
