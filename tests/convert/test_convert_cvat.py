"""cvat2odvg: 'CVAT for images 1.1' XML, streamed; expectations written out from the XML by hand."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest

from odvgkit.convert.cvat import cvat_classes, cvat_to_odvg
from odvgkit.errors import OdvgError, ProblemLog

META = """<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta>
    <{kind}>
      <id>7</id>
      <name>street</name>
      <labels>
        <label>
          <name>person</name>
          <color>#c06060</color>
          <type>any</type>
          <attributes>
            <attribute>
              <name>pose</name>
              <mutable>False</mutable>
              <input_type>select</input_type>
              <default_value>standing</default_value>
              <values>standing
sitting</values>
            </attribute>
          </attributes>
        </label>
        <label>
          <name>car</name>
          <color>#66ff66</color>
          <type>rectangle</type>
          <attributes>
          </attributes>
        </label>
        <label>
          <name>traffic sign</name>
          <type>polygon</type>
          <attributes/>
        </label>
      </labels>
      <owner><username>me</username><email>me@example.org</email></owner>
    </{kind}>
    <dumped>2024-03-01 10:00:00.000000+00:00</dumped>
  </meta>
"""

IMAGES = """  <image id="0" name="seq1/000001.jpg" subset="default" task_id="7" width="1280" height="720">
    <box label="car" source="manual" occluded="1" xtl="100.00" ytl="200.50" xbr="300.25" ybr="400.00" z_order="0">
      <attribute name="parked">true</attribute>
      <attribute name="colour">blue</attribute>
    </box>
    <polygon label="traffic sign" source="manual" occluded="0" points="10.00,20.00;30.50,22.00;25.00,40.00;12.00,38.00" z_order="1">
    </polygon>
    <polyline label="person" source="manual" occluded="0" points="1.00,1.00;5.00,5.00" z_order="0">
    </polyline>
    <points label="person" source="manual" occluded="0" points="3.00,3.00" z_order="0">
    </points>
    <tag label="car" source="manual">
    </tag>
    <box label="person" source="auto" occluded="0" xtl="600.00" ytl="300.00" xbr="640.00" ybr="400.00" z_order="0" rotation="90.0">
      <attribute name="pose">sitting</attribute>
    </box>
  </image>
  <image id="1" name="seq1/000002.jpg" subset="default" task_id="7" width="1280" height="720">
  </image>
  <image id="2" name="seq2/café.png" subset="Train" task_id="7" width="64" height="48">
    <box label="person" source="manual" occluded="0" xtl="0.00" ytl="0.00" xbr="64.00" ybr="48.00" z_order="0">
    </box>
  </image>
</annotations>
"""

EXPECTED = [
    {"filename": "seq1/000001.jpg", "height": 720, "width": 1280, "detection": {"instances": [
        {"bbox": [100.0, 200.5, 300.25, 400.0], "label": 1, "category": "car", "is_occluded": True,
         "attributes": {"colour": "blue", "parked": "true"}},
        {"bbox": [10.0, 20.0, 30.5, 40.0], "label": 2, "category": "traffic sign", "is_occluded": False},
        # 40x100 box about (620, 350) turned a quarter: 100x40 about the same centre
        {"bbox": [570.0, 330.0, 670.0, 370.0], "label": 0, "category": "person", "is_occluded": False,
         "attributes": {"pose": "sitting"}},
    ]}},
    {"filename": "seq1/000002.jpg", "height": 720, "width": 1280, "detection": {"instances": []}},
    {"filename": "seq2/café.png", "height": 48, "width": 64, "detection": {"instances": [
        {"bbox": [0.0, 0.0, 64.0, 48.0], "label": 0, "category": "person", "is_occluded": False}]}},
]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("kind", ["task", "project"])
def test_cvat_export_converts_in_the_declared_class_order(kind, tmp_path, cli, read_jsonl):
    xml = write(tmp_path / "annotations.xml", META.format(kind=kind) + IMAGES)
    r = cli("convert", "cvat2odvg", xml, "--json")
    assert r.returncode == 0, r.stderr
    # the quarter turn is exact in doubles here (cos 90° ≈ 6e-17 vanishes against 50): compare exactly
    assert read_jsonl(tmp_path / "annotations_od.json") == EXPECTED
    lm = json.loads((tmp_path / "annotations_od_label_map.json").read_text())
    assert lm == {"0": "person", "1": "car", "2": "traffic sign"}  # CVAT's order, attribute names excluded
    s = json.loads(r.stdout)
    assert s["class_order"] == "<meta> labels (3)"
    if kind == "task":  # extra fields (is_occluded, attributes) are valid ODVG
        v = cli("validate", tmp_path / "annotations_od.json", "-m", tmp_path / "annotations_od_label_map.json", "-q")
        assert v.returncode == 0, v.stderr
    assert (s["images"], s["boxes"]) == (3, 4)
    assert (s["shapes_skipped:polyline"], s["shapes_skipped:points"], s["shapes_skipped:tag"]) == (1, 1, 1)


def test_without_meta_classes_are_the_used_ones_sorted_and_classes_option_wins(tmp_path):
    xml = write(tmp_path / "a.xml", "<annotations>\n" + IMAGES)
    assert cvat_classes(xml) == (["car", "person", "traffic sign"], "sorted by name")
    assert cvat_classes(xml, ["traffic sign", "car"]) == (["traffic sign", "car"], "--classes")
    problems = ProblemLog()
    conv = cvat_to_odvg(xml, classes=["traffic sign", "car"], problems=problems)
    recs = list(conv.records)
    assert [[i["category"] for i in r["detection"]["instances"]] for r in recs] == [["car", "traffic sign"], [], []]
    assert [[i["label"] for i in r["detection"]["instances"]] for r in recs] == [[1, 0], [], []]
    assert problems.counts[("error", "unknown-class")] == 2


def test_memory_stays_bounded_on_a_big_export(tmp_path, monkeypatch):
    """Streaming holds one piece of the file's records, not all of them.

    With 64 KiB pieces (instead of 1 MiB, to keep the test small) the peak while streaming
    3,000 images must be a small fraction of the peak of holding every record.
    """
    import odvgkit.convert.cvat as cvat

    monkeypatch.setattr(cvat, "_READ", 64 << 10)
    body = "".join(
        f'  <image id="{i}" name="f/{i:07d}.jpg" width="640" height="480">\n'
        f'    <box label="car" occluded="0" xtl="{i % 300}.5" ytl="10" xbr="{i % 300 + 20}.5" ybr="50"/>\n'
        f'    <polygon label="car" occluded="0" points="1,2;30,4;9,40"/>\n  </image>\n'
        for i in range(3_000)
    )
    path = write(tmp_path / "big.xml", f"<annotations>\n<version>1.1</version>\n{body}</annotations>\n")
    assert path.stat().st_size > 8 * (64 << 10)
    peaks = []
    for keep in (False, True):
        tracemalloc.start()
        records = cvat_to_odvg(path, classes=["car"]).records
        held = list(records) if keep else None
        count = len(held) if held is not None else sum(1 for _ in records)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert count == 3_000
        del held
    assert peaks[0] < 0.25 * peaks[1], peaks


BAD = {
    "outside": ('<box label="car" occluded="0" xtl="10" ytl="10" xbr="65" ybr="20"/>',
                "image 'x.jpg': <box>: xtl/ytl/xbr/ybr: box [10, 10, 65, 20] goes outside the 64x48 image"),
    "negative": ('<box label="car" occluded="0" xtl="-2" ytl="10" xbr="20" ybr="20"/>',
                 "image 'x.jpg': <box>: xtl/ytl/xbr/ybr: negative coordinate in box [-2, 10, 20, 20]"),
    "nan": ('<box label="car" occluded="0" xtl="nan" ytl="10" xbr="20" ybr="20"/>',
            "image 'x.jpg': <box>: xtl: coordinate is not finite: 'nan'"),
    "polygon-2-points": ('<polygon label="car" occluded="0" points="1,2;30,4"/>',
                         "image 'x.jpg': <polygon>: points: needs at least 3 points, got 2"),
    "unknown-class": ('<box label="bus" occluded="0" xtl="1" ytl="1" xbr="5" ybr="5"/>',
                      "image 'x.jpg': <box>: label: class 'bus' is not in the class list"),
    "bad-size": (None, "image: width/height: must be positive integers, got '64'x'zero'"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_shapes_are_named_by_line_and_skipped_or_stop_under_strict(case, tmp_path, cli, read_jsonl):
    shape, message = BAD[case]
    head = '<?xml version="1.0"?>\n<annotations>\n  <version>1.1</version>\n'
    good = '  <image id="0" name="ok.jpg" width="64" height="48">\n    <box label="car" occluded="0" xtl="1" ytl="2" xbr="3" ybr="4"/>\n  </image>\n'
    if shape is None:
        bad = '  <image id="1" name="x.jpg" width="64" height="zero">\n  </image>\n'
        message = message.replace("image:", "image 'x.jpg':")
        line = 7
    else:
        bad = f'  <image id="1" name="x.jpg" width="64" height="48">\n    <box label="car" occluded="0" xtl="1" ytl="1" xbr="9" ybr="9"/>\n    {shape}\n  </image>\n'
        line = 9
    xml = write(tmp_path / "t.xml", head + good + bad + "</annotations>\n")
    out = tmp_path / "o.jsonl"
    r = cli("convert", "cvat2odvg", xml, "--classes", "car", "-o", out)
    assert r.returncode == 1
    assert f"{xml}:{line}: {message}" in r.stderr
    recs = read_jsonl(out)
    assert recs[0]["detection"]["instances"] == [{"bbox": [1.0, 2.0, 3.0, 4.0], "label": 0, "category": "car", "is_occluded": False}]
    if shape is not None:  # the image stays, with its good box
        assert [i["bbox"] for i in recs[1]["detection"]["instances"]] == [[1.0, 1.0, 9.0, 9.0]]
    else:
        assert len(recs) == 1
    out.unlink()
    (tmp_path / "o_label_map.json").unlink()
    r = cli("convert", "cvat2odvg", xml, "--classes", "car", "-o", out, "--strict")
    assert r.returncode == 1
    assert r.stderr.splitlines() == [f"odvgkit: error: {xml}:{line}: {message}"]
    assert not out.exists()


def test_malformed_and_foreign_xml_are_named(tmp_path, cli):
    broken = write(tmp_path / "broken.xml", '<annotations>\n  <image name="a" width="1" height="1">\n  </imag>\n</annotations>\n')
    r = cli("convert", "cvat2odvg", broken, "--classes", "car")
    assert r.returncode == 1
    assert r.stderr.splitlines() == [f"odvgkit: error: {broken}:3:5: malformed XML: mismatched tag"]
    assert not (tmp_path / "broken_od.json").exists()
    svg = write(tmp_path / "pic.xml", '<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>\n')
    r = cli("convert", "cvat2odvg", svg)
    assert r.stderr.splitlines() == [f"odvgkit: error: {svg}:2: <svg> root: not a 'CVAT for images 1.1' XML (expected <annotations>)"]
    video = write(tmp_path / "video.xml", '<annotations>\n<version>1.1</version>\n<track id="0" label="car">\n</track>\n</annotations>\n')
    with pytest.raises(OdvgError, match=r"video.xml:3: <track>: a 'CVAT for video 1.1' export"):
        list(cvat_to_odvg(video, classes=["car"]).records)


def test_images_root_checks_each_image_header(tmp_path, jpeg):
    images = tmp_path / "images"
    jpeg(images / "ok.jpg", (64, 48))
    jpeg(images / "small.jpg", (32, 48))
    (images / "junk.jpg").write_bytes(b"not a jpeg")
    body = "".join(
        f'  <image id="{i}" name="{n}" width="64" height="48">\n    <box label="car" occluded="0" xtl="1" ytl="1" xbr="5" ybr="5"/>\n  </image>\n'
        for i, n in enumerate(["ok.jpg", "gone.jpg", "junk.jpg", "small.jpg"])
    )
    xml = write(tmp_path / "a.xml", f"<annotations>\n{body}</annotations>\n")
    problems = ProblemLog()
    recs = list(cvat_to_odvg(xml, classes=["car"], images_root=images, problems=problems).records)
    assert [r["filename"] for r in recs] == ["ok.jpg"]
    assert [p.format() for ps in problems.examples.values() for p in ps] == [
        f"{xml}:5: image 'gone.jpg': name: image {images / 'gone.jpg'} not found",
        f"{xml}:8: image 'junk.jpg': name: unreadable image header: {images / 'junk.jpg'}",
        f"{xml}:11: image 'small.jpg': width/height: 64x48 in the XML but the image is 32x48",
    ]
    with pytest.raises(OdvgError, match=r"gone\.jpg not found"):
        list(cvat_to_odvg(xml, classes=["car"], images_root=images, problems=ProblemLog(strict=True)).records)
