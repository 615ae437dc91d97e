"""``convert voc2odvg``: the real BCCD dataset, MMDetection's own VOC paths, and bad input.

Expectations are computed here, independently of the importer: the BCCD XML files are parsed with
ElementTree in the test, and the same files go through MMDetection's real ``pascal_voc.py`` (as
installed with mmdet) + the upstream ``coco2odvg`` port, and through ``XMLDataset``.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import SHARED_FIXTURES, read_jsonl, run_cli
from PIL import Image

BCCD = SHARED_FIXTURES / "bccd_voc"


def _expected_bccd(split: str, drop_zero: bool = True) -> tuple[list[dict], dict[str, str]]:
    """Records derived straight from the XML: VOC 1-based → minus one, zero-size boxes dropped."""
    ids = (BCCD / "ImageSets" / "Main" / f"{split}.txt").read_text().split()
    parsed = []
    names: set[str] = set()
    for stem in ids:
        root = ET.parse(BCCD / "Annotations" / f"{stem}.xml").getroot()
        objs = []
        for obj in root.findall("object"):
            b = obj.find("bndbox")
            box = [int(b.find(t).text) for t in ("xmin", "ymin", "xmax", "ymax")]
            names.add(obj.find("name").text)
            objs.append((obj.find("name").text, box, obj.find("difficult").text, obj.find("truncated").text))
        parsed.append((stem, int(root.find("size/width").text), int(root.find("size/height").text), objs))
    classes = sorted(names)
    records = []
    for stem, w, h, objs in parsed:
        inst = []
        for name, (x1, y1, x2, y2), diff, trunc in objs:
            if drop_zero and (x2 == x1 or y2 == y1):
                continue
            inst.append({"bbox": [x1 - 1, y1 - 1, x2 - 1, y2 - 1], "label": classes.index(name), "category": name,
                         "difficult": diff == "1", "truncated": trunc == "1"})
        records.append({"filename": f"JPEGImages/{stem}.jpg", "height": h, "width": w, "detection": {"instances": inst}})
    return records, {str(i): n for i, n in enumerate(classes)}


def test_bccd_train_matches_elementtree_and_zero_size_boxes_are_degenerate(tmp_path: Path) -> None:
    out = tmp_path / "bccd" / "train_od.json"
    r = run_cli("convert", "voc2odvg", BCCD, "--split", "train", "-o", out, "--json")
    assert r.returncode == 0, r.stderr
    expected, label_map = _expected_bccd("train")
    assert read_jsonl(out) == expected
    assert json.loads((tmp_path / "bccd" / "train_od_label_map.json").read_text()) == label_map
    summary = json.loads(r.stdout)
    assert summary["images"] == 24 and summary["records_written"] == 24
    assert summary["dropped:degenerate"] == 1  # BloodImage_00343's xmin = xmax box
    assert summary["class_order"].startswith("sorted")
    assert summary["problems"]["errors"] == 0
    assert summary["problems"]["by_code"] == [{"severity": "warning", "code": "degenerate", "count": 1}]
    assert "BloodImage_00343.xml: object[3]: bndbox" in summary["problems"]["examples"][0]
    assert summary["boxes"] == sum(len(rec["detection"]["instances"]) for rec in expected)


def test_all_files_classes_order_and_validate(tmp_path: Path) -> None:
    out = tmp_path / "all.jsonl"
    r = run_cli("convert", "voc2odvg", BCCD, "--classes", "RBC,WBC,Platelets", "-o", out, "--json")
    assert r.returncode == 0, r.stderr
    recs = read_jsonl(out)
    assert [x["filename"] for x in recs] == sorted(f"JPEGImages/{p.stem}.jpg" for p in (BCCD / "Annotations").glob("*.xml"))
    assert json.loads((tmp_path / "all_label_map.json").read_text()) == {"0": "RBC", "1": "WBC", "2": "Platelets"}
    order = {"RBC": 0, "WBC": 1, "Platelets": 2}
    assert all(i["label"] == order[i["category"]] for x in recs for i in x["detection"]["instances"])
    assert json.loads(r.stdout)["dropped:degenerate"] == 2  # 00343 (train) and 00338 (val)
    v = run_cli("validate", out, "-m", tmp_path / "all_label_map.json", "--images-root", BCCD, "--json")
    assert v.returncode == 0, v.stderr
    assert json.loads(v.stdout)["errors"] == 0


def _load_pascal_voc_script():
    """MMDetection's real ``tools/dataset_converters/pascal_voc.py`` as installed with mmdet (.mim)."""
    mmdet = pytest.importorskip("mmdet")
    importlib.import_module("odvgkit_train")  # the mmcv-lite stand-in (the script imports mmdet.evaluation)

    path = Path(mmdet.__file__).parent / ".mim" / "tools" / "dataset_converters" / "pascal_voc.py"
    spec = importlib.util.spec_from_file_location("upstream_pascal_voc", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_boxes_equal_mmdetection_pascal_voc_then_coco2odvg(tmp_path: Path) -> None:
    from reference.upstream_coco2odvg import upstream_coco2odvg

    up = _load_pascal_voc_script()
    classes = ["Platelets", "RBC", "WBC"]
    up.label_ids = {n: i for i, n in enumerate(classes)}
    ids = (BCCD / "ImageSets" / "Main" / "val.txt").read_text().split()
    anns = [up.parse_xml((str(BCCD / "Annotations" / f"{i}.xml"), f"JPEGImages/{i}.jpg")) for i in ids]
    coco = up.cvt_to_coco_json(anns)
    coco["categories"] = [{"id": k + 1, "name": n} for k, n in enumerate(classes)]
    for a in coco["annotations"]:
        a["category_id"] += 1  # 1-based ids so that the 'v3det' rule (label = id - 1) maps back
    (tmp_path / "voc_val.json").write_text(json.dumps(coco))
    upstream, _ = upstream_coco2odvg(str(tmp_path / "voc_val.json"), "v3det")

    out = tmp_path / "val_od.json"
    r = run_cli("convert", "voc2odvg", BCCD, "--split", "val", "--drop-difficult", "-o", out)
    assert r.returncode == 0, r.stderr
    mine = read_jsonl(out)
    strip = [{**x, "detection": {"instances": [{k: i[k] for k in ("bbox", "label", "category")}
                                               for i in x["detection"]["instances"]]}} for x in mine]
    assert strip == upstream


def test_boxes_equal_mmdetection_xmldataset(tmp_path: Path) -> None:
    pytest.importorskip("mmdet")
    importlib.import_module("odvgkit_train")  # registers the mmcv-lite stand-in before mmdet.datasets
    from mmdet.datasets import XMLDataset

    ds = XMLDataset(ann_file="ImageSets/Main/train.txt", data_root=str(BCCD), data_prefix={"sub_data_root": ""},
                    metainfo={"classes": ("Platelets", "RBC", "WBC")}, test_mode=True, pipeline=[])
    out = tmp_path / "train_od.json"
    assert run_cli("convert", "voc2odvg", BCCD, "--split", "train", "-o", out).returncode == 0
    mine = read_jsonl(out)
    assert len(mine) == len(ds)
    for k, rec in enumerate(mine):
        info = ds.get_data_info(k)
        assert info["img_path"].endswith(rec["filename"])
        assert (info["width"], info["height"]) == (rec["width"], rec["height"])
        # XMLDataset keeps zero-size boxes; ODVGDataset drops boxes under 1 px, so does voc2odvg
        theirs = [(i["bbox"], i["bbox_label"]) for i in info["instances"]
                  if i["bbox"][2] - i["bbox"][0] >= 1 and i["bbox"][3] - i["bbox"][1] >= 1]
        assert [(i["bbox"], i["label"]) for i in rec["detection"]["instances"]] == theirs


# ---------------------------------------------------------------- generated datasets and bad input


def _xml(filename: str, size: tuple[int, int] | None, objects: list[tuple], extra: str = "") -> str:
    parts = ["<annotation>", "\t<folder>JPEGImages</folder>", f"\t<filename>{filename}</filename>"]
    if size is not None:
        parts.append(f"\t<size>\n\t\t<width>{size[0]}</width>\n\t\t<height>{size[1]}</height>\n\t\t<depth>3</depth>\n\t</size>")
    for name, box, *flags in objects:
        diff = f"<difficult>{flags[0]}</difficult>" if flags else ""
        coords = "".join(f"<{t}>{v}</{t}>" for t, v in zip(("xmin", "ymin", "xmax", "ymax"), box, strict=True))
        parts.append(f"\t<object>\n\t\t<name>{name}</name>\n\t\t{diff}\n\t\t<bndbox>{coords}</bndbox>\n\t</object>")
    parts.append(extra + "</annotation>")
    return "\n".join(parts) + "\n"


def _voc(root: Path, files: dict[str, tuple], split: list[str] | None = None) -> Path:
    """A VOC layout; ``files``: stem → (image size or None for no image, xml text or None)."""
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for stem, (img, xml) in files.items():
        if img is not None:
            Image.new("RGB", img, (10, 20, 30)).save(root / "JPEGImages" / f"{stem}.jpg")
        if xml is not None:
            (root / "Annotations" / f"{stem}.xml").write_text(xml)
    (root / "ImageSets" / "Main" / "train.txt").write_text("\n".join(split or files) + "\n")
    return root


def _good(stem: str, size: tuple[int, int] = (64, 48)) -> tuple:
    return size, _xml(f"{stem}.jpg", size, [("cat", (1, 2, 30, 40)), ("dog", (10, 10, 64, 48))])


BAD_CASES = {
    "malformed-xml": (_good("a")[0], "<annotation>\n<filename>b.jpg</filename>\n<object><name>cat</nam>\n</annotation>\n",
                      "b.xml:3: malformed XML: mismatched tag (column 20)"),
    "outside-image": ((64, 48), _xml("b.jpg", (64, 48), [("cat", (1, 2, 30, 40)), ("cat", (10, 10, 65, 20))]),
                      "b.xml: object[1]: bndbox.xmax: 65 is outside the image (width 64)"),
    "negative": ((64, 48), _xml("b.jpg", (64, 48), [("cat", (1, -2, 30, 40))]),
                 "b.xml: object[0]: bndbox.ymin: negative coordinate -2"),
    "nan": ((64, 48), _xml("b.jpg", (64, 48), [("cat", (1, 2, "nan", 40))]),
            "b.xml: object[0]: bndbox.xmax: not a finite number: 'nan'"),
    "unknown-class": ((64, 48), _xml("b.jpg", (64, 48), [("cow", (1, 2, 30, 40))]),
                      "b.xml: object[0]: name: 'cow' is not in --classes"),
    "image-missing": (None, _good("b")[1], "train.txt:2: image: no image named b.* in "),
    "annotation-missing": ((64, 48), None, "train.txt:2: xml: "),
    "unreadable-header": ("corrupt", _xml("b.jpg", None, [("cat", (1, 2, 30, 40))]),
                          "b.jpg: unreadable image header"),
    "not-voc": ((64, 48), "<annotations><version>1.1</version></annotations>",
                "b.xml: not a Pascal VOC annotation: root element <annotations>, expected <annotation> (a CVAT XML export"),
}


def _bad_dataset(root: Path) -> Path:
    """One VOC dataset holding every bad case: file ``b_<case>`` between two good files."""
    files: dict[str, tuple] = {"a": _good("a")}
    for case, (img, xml, _) in sorted(BAD_CASES.items()):
        stem = f"b_{case}"
        xml = xml.replace("b.jpg", f"{stem}.jpg") if xml else None
        files[stem] = (None if img == "corrupt" else img, xml)
    files["c"] = _good("c")
    _voc(root, files)
    (root / "JPEGImages" / "b_unreadable-header.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return root


def _message(case: str) -> str:
    msg = BAD_CASES[case][2].replace("b.xml", f"b_{case}.xml").replace("b.jpg", f"b_{case}.jpg")
    line = 2 + sorted(BAD_CASES).index(case)
    return msg.replace("train.txt:2:", f"train.txt:{line}:").replace("named b.*", f"named b_{case}.*")


def test_bad_input_is_one_line_each_and_skipped(tmp_path: Path) -> None:
    root = _bad_dataset(tmp_path / "voc")
    out = tmp_path / "out" / "train_od.json"
    r = run_cli("convert", "voc2odvg", root, "--split", "train", "--classes", "cat,dog", "-o", out, "--json")
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    summary = json.loads(r.stdout)
    examples = summary["problems"]["examples"]
    for case in BAD_CASES:
        assert sum(_message(case) in e for e in examples) == 1, (case, examples)
    assert summary["problems"]["errors"] == len(BAD_CASES)
    # a bad object is skipped and its image stays (with its good boxes); a bad file skips the image
    kept = {"outside-image": [{"bbox": [0, 1, 29, 39], "label": 0, "category": "cat"}],
            "negative": [], "nan": [], "unknown-class": []}
    recs = read_jsonl(out)
    assert [x["filename"] for x in recs] == ["JPEGImages/a.jpg", *(f"JPEGImages/b_{c}.jpg" for c in sorted(kept)), "JPEGImages/c.jpg"]
    assert [x["detection"]["instances"] for x in recs[1:-1]] == [kept[c] for c in sorted(kept)]


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_strict_stops_at_the_first_bad_record(tmp_path: Path, case: str) -> None:
    from odvgkit.convert.base import write_conversion
    from odvgkit.convert.voc import voc_to_odvg
    from odvgkit.errors import OdvgError, ProblemLog

    img, xml, _ = BAD_CASES[case]
    root = _voc(tmp_path / "voc", {"a": _good("a"), f"b_{case}": (None if img == "corrupt" else img, xml), "c": _good("c")})
    if img == "corrupt":
        (root / "JPEGImages" / f"b_{case}.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    out = tmp_path / "out" / "o.json"
    with pytest.raises(OdvgError) as exc:
        conv = voc_to_odvg(root, split="train", classes=["cat", "dog"], problems=ProblemLog(strict=True))
        write_conversion(conv, out, inputs=[root], label_map_path=tmp_path / "out" / "lm.json")
    assert _message(case).replace(f"train.txt:{2 + sorted(BAD_CASES).index(case)}:", "train.txt:2:") in str(exc.value)
    assert "\n" not in str(exc.value)
    assert not (out.parent.exists() and any(out.parent.iterdir()))  # nothing written


def test_strict_cli_prints_one_line(tmp_path: Path) -> None:
    root = _bad_dataset(tmp_path / "voc")
    out = tmp_path / "strict" / "train_od.json"
    s = run_cli("convert", "voc2odvg", root, "--split", "train", "--classes", "cat,dog", "-o", out, "--strict")
    assert s.returncode == 1
    first = sorted(BAD_CASES)[0]
    assert s.stderr.strip().splitlines() == [s.stderr.strip()] and s.stderr.startswith("odvgkit: error: ")
    assert _message(first) in s.stderr
    assert not out.parent.exists() or not any(out.parent.iterdir())


def test_size_from_header_fractional_difficult_and_check_sizes(tmp_path: Path) -> None:
    files = {
        "a": ((50, 40), _xml("a.jpg", None, [("cat", (1.5, 2, 30.25, 40), 1), ("dog", (3, 3, 9, 9), 0)])),
        "b": ((64, 48), _xml("b.jpg", (640, 480), [("dog", (1, 1, 10, 10))])),  # <size> disagrees with the image
    }
    root = _voc(tmp_path / "voc", files)
    out = tmp_path / "o.json"
    r = run_cli("convert", "voc2odvg", root, "-o", out, "--json")
    assert r.returncode == 0, r.stderr
    a, b = read_jsonl(out)
    assert (a["width"], a["height"]) == (50, 40)  # no <size>: the header
    assert a["detection"]["instances"] == [
        {"bbox": [0.5, 1, 29.25, 39], "label": 0, "category": "cat", "difficult": True},
        {"bbox": [2, 2, 8, 8], "label": 1, "category": "dog", "difficult": False},
    ]
    assert (b["width"], b["height"]) == (640, 480)  # <size> trusted without --check-sizes
    assert json.loads(r.stdout)["sizes_from_header"] == 1

    r = run_cli("convert", "voc2odvg", root, "-o", out, "--json", "--check-sizes", "--drop-difficult", "--force")
    assert r.returncode == 0, r.stderr
    a, b = read_jsonl(out)
    assert (b["width"], b["height"]) == (64, 48)
    assert [i["category"] for i in a["detection"]["instances"]] == ["dog"]
    summary = json.loads(r.stdout)
    assert summary["dropped:difficult"] == 1
    assert any("b.xml: size: <size> 640x480 but the image header says 64x48" in e for e in summary["problems"]["examples"])


def test_flat_folder_and_single_file(tmp_path: Path) -> None:
    flat = tmp_path / "flat"
    flat.mkdir()
    for stem in ("BloodImage_00000", "BloodImage_00001"):
        shutil.copy(BCCD / "Annotations" / f"{stem}.xml", flat)
        shutil.copy(BCCD / "JPEGImages" / f"{stem}.jpg", flat)
    out = tmp_path / "flat_od.json"
    assert run_cli("convert", "voc2odvg", flat, "-o", out, "--classes", "Platelets,RBC,WBC").returncode == 0
    recs = read_jsonl(out)
    ref = {x["filename"].split("/")[-1]: x for x in _expected_bccd("train")[0] + _expected_bccd("val")[0]}
    assert [x["filename"] for x in recs] == ["BloodImage_00000.jpg", "BloodImage_00001.jpg"]
    assert [x["detection"] for x in recs] == [ref[x["filename"]]["detection"] for x in recs]
    one = tmp_path / "one_od.json"
    assert run_cli("convert", "voc2odvg", flat / "BloodImage_00001.xml", "-o", one, "--classes", "Platelets,RBC,WBC").returncode == 0
    assert read_jsonl(one) == recs[1:]


def test_coco2odvg_names_a_voc_file(tmp_path: Path) -> None:
    r = run_cli("convert", "coco2odvg", BCCD / "Annotations" / "BloodImage_00000.xml", "-o", tmp_path / "x.json")
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        f"odvgkit: error: {BCCD / 'Annotations' / 'BloodImage_00000.xml'}: a Pascal VOC XML annotation, not the JSON "
        "coco2odvg reads; use 'odvgkit convert voc2odvg' on its folder (or on the file)"
    ]
    assert not (tmp_path / "x.json").exists()


def test_workers_give_the_same_bytes(tmp_path: Path) -> None:
    """Forked workers (chunks of 512 files) and one process write identical outputs."""
    from odvgkit.convert.base import write_conversion
    from odvgkit.convert.voc import voc_to_odvg

    files = {}
    for k in range(600):
        size = (40 + k % 7, 30 + k % 5)
        objs = [(("zebra", "ant", "cat")[(k + j) % 3], (1 + j, 1, 20 + j, 25)) for j in range(k % 4)]
        files[f"im{k:05d}"] = (size, _xml(f"im{k:05d}.jpg", size, objs))
    root = _voc(tmp_path / "voc", files)
    outs = []
    for workers, classes in ((1, None), (2, None), (2, ["zebra", "cat", "ant"]), (1, ["zebra", "cat", "ant"])):
        conv = voc_to_odvg(root, classes=classes, workers=workers)
        out = tmp_path / f"o{workers}{classes is None}.jsonl"
        write_conversion(conv, out, inputs=[root], label_map_path=tmp_path / f"lm{workers}{classes is None}.json")
        outs.append(out.read_bytes())
        assert conv.stats["images"] == 600
    assert outs[0] == outs[1] and outs[2] == outs[3]
    recs = [json.loads(x) for x in outs[0].splitlines()]
    assert recs[5]["detection"]["instances"][0] == {"bbox": [0, 0, 19, 24], "label": 1, "category": "cat"}
    assert [json.loads(x)["detection"]["instances"][0]["label"] for x in outs[2].splitlines()[5:6]] == [1]


def test_parquet_output_holds_the_same_records(tmp_path: Path) -> None:
    """Outputs other than JSON Lines go through the record path (renumbered labels included)."""
    from odvgkit.convert.base import write_conversion
    from odvgkit.convert.voc import voc_to_odvg
    from odvgkit.io import read_records

    for name, make in (("voc", lambda: voc_to_odvg(BCCD, split="val")),
                       ("voc_classes", lambda: voc_to_odvg(BCCD, split="val", classes=["WBC", "RBC", "Platelets"]))):
        a, b = make(), make()
        write_conversion(a, tmp_path / f"{name}.jsonl", inputs=[BCCD], label_map_path=tmp_path / f"{name}_lm.json")
        write_conversion(b, tmp_path / f"{name}.parquet", inputs=[BCCD], label_map_path=tmp_path / f"{name}_lm2.json")
        jl = [r for _, r in read_records(tmp_path / f"{name}.jsonl")]
        pq = [r for _, r in read_records(tmp_path / f"{name}.parquet")]
        assert len(jl) == 8 and [r["filename"] for r in pq] == [r["filename"] for r in jl]
        for x, y in zip(jl, pq, strict=True):
            assert [(i["label"], i["category"], [float(v) for v in i["bbox"]]) for i in x["detection"]["instances"]] == \
                [(i["label"], i["category"], [float(v) for v in i["bbox"]]) for i in y["detection"]["instances"]]


def test_formats_voc2odvg_cannot_read_are_named(tmp_path: Path) -> None:
    yolo = tmp_path / "yolo"
    (yolo / "labels").mkdir(parents=True)
    (tmp_path / "x.json").write_text("{}")
    for arg, want in ((yolo, f"{yolo}: a YOLO dataset (labels/, data.yaml or classes.txt), not Pascal VOC; use 'odvgkit convert yolo2odvg'"),
                      (tmp_path / "x.json", f"{tmp_path / 'x.json'}: a JSON file, not Pascal VOC XML; COCO-style json: 'odvgkit convert coco2odvg'"),
                      (tmp_path / "nope", f"{tmp_path / 'nope'}: no such file or folder")):
        r = run_cli("convert", "voc2odvg", arg, "-o", tmp_path / "o.json")
        assert r.returncode == 1
        assert r.stderr.strip() == f"odvgkit: error: {want}"


def test_split_file_of_ids_keeps_its_order(tmp_path: Path) -> None:
    ids = tmp_path / "mine.txt"
    ids.write_text("BloodImage_00338  1\n\nBloodImage_00000 -1\nBloodImage_00338 1\n")  # <class>_<split>.txt style
    out = tmp_path / "mine_od.json"
    r = run_cli("convert", "voc2odvg", BCCD, "--split", ids, "--classes", "Platelets,RBC,WBC", "-o", out, "--json")
    assert r.returncode == 0, r.stderr
    assert [x["filename"] for x in read_jsonl(out)] == ["JPEGImages/BloodImage_00338.jpg", "JPEGImages/BloodImage_00000.jpg"]
    s = json.loads(r.stdout)
    assert f"{ids}:4: BloodImage_00338 listed twice (kept once)" in s["problems"]["examples"]
    r = run_cli("convert", "voc2odvg", BCCD, "--split", tmp_path / "none.txt", "-o", out)
    assert r.stderr.strip() == f"odvgkit: error: --split {tmp_path / 'none.txt'}: not train|val|test|trainval and no such file"


def test_labels_right_when_the_sampled_names_are_not_all_names(tmp_path: Path) -> None:
    """Without --classes, workers label with the names of a sample of files; a name outside the
    sample (a rare class) or one in it that ends up without a kept box must still give labels in
    sorted-name order, the same bytes with and without workers."""
    from odvgkit.convert import voc
    from odvgkit.convert.base import write_conversion
    from odvgkit.convert.voc import voc_to_odvg

    files = {}
    for k in range(700):
        objs = [(("zebra", "cat")[(k + j) % 2], (1 + j, 1, 20 + j, 25)) for j in range(2)]
        if k == 5:  # not in the sample
            objs.append(("aardvark", (2, 2, 9, 9)))
        if k == 0:  # sampled, but its only box is dropped (zero size)
            objs.append(("moose", (3, 3, 3, 9)))
        files[f"im{k:05d}"] = ((64, 48), _xml(f"im{k:05d}.jpg", (64, 48), objs))
    root = _voc(tmp_path / "voc", files)
    assert "moose" in voc._guess_names(voc.voc_items(root, None, None)[0])
    assert "aardvark" not in voc._guess_names(voc.voc_items(root, None, None)[0])
    outs = []
    for workers in (1, 2):
        conv = voc_to_odvg(root, workers=workers)
        out = tmp_path / f"o{workers}.jsonl"
        write_conversion(conv, out, inputs=[root], label_map_path=tmp_path / f"lm{workers}.json")
        outs.append(out.read_bytes())
        assert conv.label_map == {"0": "aardvark", "1": "cat", "2": "zebra"}
    assert outs[0] == outs[1]
    recs = [json.loads(x) for x in outs[0].splitlines()]
    order = ["aardvark", "cat", "zebra"]
    assert all(i["label"] == order.index(i["category"]) for r in recs for i in r["detection"]["instances"])
    assert [i["category"] for i in recs[5]["detection"]["instances"]] == ["cat", "zebra", "aardvark"]


def test_read_file_is_open_read(tmp_path: Path) -> None:
    from odvgkit.convert._perfile import read_file

    for n in (0, 1, 16383, 16384, 16385, 3 << 20):
        p = tmp_path / f"f{n}"
        p.write_bytes(bytes(k % 251 for k in range(n)))
        assert read_file(str(p)) == p.read_bytes()
    for path in (tmp_path / "missing", tmp_path):
        with pytest.raises(OSError) as mine:
            read_file(str(path))
        with pytest.raises(OSError) as theirs, open(path, "rb") as fh:
            fh.read()
        assert (type(mine.value), mine.value.strerror) == (type(theirs.value), theirs.value.strerror)
