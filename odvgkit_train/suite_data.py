"""Small generated datasets in the layouts the benchmark suites expect (tests, demos, benchmarks).

:func:`make_d3_root` writes a D³-shaped root (``d3_images/``, ``d3_json/`` FULL/PRES/ABS COCO files,
``d3_pkl/`` pickles with numpy arrays as D³'s are) from the coloured-box demo images, so the whole
``convert dod2odvg`` → ``eval --metric dod`` path runs without the real download.
"""

from __future__ import annotations

import json
import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np

from odvgkit_train.demo import COLOURS

# (sentence, is_negative): the lengths cover the short (1–3 words), middle (4–6) and long (7–9)
# buckets; none is ≥ 10 words, so the very-long bucket is empty (reported as n/a)
D3_SENTENCES: list[tuple[str, bool]] = [
    ("red box", False),
    ("a blue box on noise", False),
    ("a green box lying somewhere on the noisy image", False),
    ("box that is not red", True),
    ("blue box", False),
    ("a box without any green", True),
]
D3_GROUPS = {1: [1, 2, 4], 2: [3, 5, 6]}  # group → sentence ids (its prompt)
# a sentence of ≥ 10 words (any box), so that every length bucket has a sentence
D3_LONG_SENTENCE = ("a box of any colour that lies somewhere on this noisy generated picture", False)


def _matches(sid: int, colour: str) -> bool:
    return {1: colour == "red box", 2: colour == "blue box", 3: colour == "green box", 4: colour != "red box",
            5: colour == "blue box", 6: colour != "green box", 7: True}[sid]


def make_d3_root(root: str | Path, n_images: int = 8, size: int = 96, seed: int = 0, very_long: bool = False) -> Path:
    """A D³-layout root of ``n_images`` generated images; returns the root.

    ``very_long`` adds :data:`D3_LONG_SENTENCE` (id 7) to both groups: all four length buckets filled.
    """
    sentences = D3_SENTENCES + ([D3_LONG_SENTENCE] if very_long else [])
    groups = {g: ss + ([7] if very_long else []) for g, ss in D3_GROUPS.items()}
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    root = Path(root)
    (root / "d3_images").mkdir(parents=True, exist_ok=True)
    (root / "d3_json").mkdir(exist_ok=True)
    (root / "d3_pkl").mkdir(exist_ok=True)
    names = list(COLOURS)
    images: dict[int, dict[str, Any]] = {}
    anns: dict[int, dict[str, Any]] = {}
    coco_images, coco_anns = [], []
    for i in range(n_images):
        img_id = i
        gid = 1 + i % 2
        w, h = size + rng.randrange(0, size // 3), size
        img = Image.new("RGB", (w, h), tuple(rng.randrange(90, 160) for _ in range(3)))
        draw = ImageDraw.Draw(img)
        name = f"group{gid}/img_{i:04d}.jpg"
        (root / "d3_images" / f"group{gid}").mkdir(exist_ok=True)
        anno_ids = []
        for _ in range(rng.randint(1, 2)):
            colour = names[rng.randrange(len(names))]
            bw, bh = rng.randrange(w // 4, w // 2), rng.randrange(h // 4, h // 2)
            x1, y1 = rng.randrange(0, w - bw), rng.randrange(0, h - bh)
            draw.rectangle([x1, y1, x1 + bw - 1, y1 + bh - 1], fill=COLOURS[colour])
            sids = [s for s in groups[gid] if _matches(s, colour)]
            if not sids:
                continue
            aid = len(anns) + 1
            anns[aid] = {"id": aid, "sent_id": sids, "image_id": img_id, "group_id": gid, "iscrowd": 0,
                         "bbox": np.array([[x1, y1, bw, bh]], dtype=np.float64), "area": bw * bh}
            anno_ids.append(aid)
            for s in sids:
                coco_anns.append({"id": len(coco_anns) + 1, "image_id": img_id, "category_id": s,
                                  "bbox": [float(x1), float(y1), float(bw), float(bh)], "area": float(bw * bh), "iscrowd": 0})
        img.save(root / "d3_images" / name, quality=95)
        images[img_id] = {"id": img_id, "file_name": name, "height": h, "width": w, "anno_id": anno_ids, "group_id": gid}
        coco_images.append({"id": img_id, "file_name": name, "height": h, "width": w})
    sents = {sid: {"id": sid, "raw_sent": s, "is_negative": neg, "anno_id": [a for a, v in anns.items() if sid in v["sent_id"]],
                   "group_id": [g for g, ss in groups.items() if sid in ss]}
             for sid, (s, neg) in enumerate(sentences, 1)}
    group_pkl = {g: {"id": g, "inner_sent_id": np.array(ss, dtype=np.int64), "img_id": [i for i, v in images.items() if v["group_id"] == g],
                     "group_name": f"group{g}"} for g, ss in groups.items()}
    for fname, obj in (("images.pkl", images), ("annotations.pkl", anns), ("sentences.pkl", sents), ("groups.pkl", group_pkl)):
        with (root / "d3_pkl" / fname).open("wb") as fh:
            pickle.dump(obj, fh, protocol=2)
    for setting, keep in (("full", lambda n: True), ("pres", lambda n: not n), ("abs", lambda n: n)):
        cats = [{"id": sid, "name": s} for sid, (s, neg) in enumerate(sentences, 1) if keep(neg)]
        ids = {c["id"] for c in cats}
        doc = {"images": coco_images, "annotations": [a for a in coco_anns if a["category_id"] in ids], "categories": cats}
        (root / "d3_json" / f"d3_{setting}_annotations.json").write_text(json.dumps(doc))
    return root


def make_coco_style(path: Path, images_dir: Path, n_images: int, seed: int, prefix: str = "") -> Path:
    """A COCO annotation file of ``n_images`` generated coloured-box images (written into ``images_dir``)."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    names = list(COLOURS)
    images_dir.mkdir(parents=True, exist_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    imgs, anns = [], []
    for i in range(n_images):
        w, h = 96 + rng.randrange(0, 32), 96
        img = Image.new("RGB", (w, h), tuple(rng.randrange(90, 160) for _ in range(3)))
        draw = ImageDraw.Draw(img)
        name = f"{prefix}img_{seed}_{i:03d}.jpg"
        for _ in range(rng.randint(1, 2)):
            c = rng.randrange(len(names))
            bw, bh = rng.randrange(w // 4, w // 2), rng.randrange(h // 4, h // 2)
            x1, y1 = rng.randrange(0, w - bw), rng.randrange(0, h - bh)
            draw.rectangle([x1, y1, x1 + bw - 1, y1 + bh - 1], fill=COLOURS[names[c]])
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": c + 1, "bbox": [x1, y1, bw, bh],
                         "area": bw * bh, "iscrowd": 0})
        img.save(images_dir / name, quality=95)
        imgs.append({"id": i + 1, "file_name": name, "height": h, "width": w})
    cats = [{"id": i + 1, "name": n, "supercategory": "box"} for i, n in enumerate(names)]
    path.write_text(json.dumps({"images": imgs, "annotations": anns, "categories": cats}))
    return path


def make_odinw_root(root: str | Path, suite: str = "odinw13", n_images: int = 2) -> Path:
    """Every dataset folder of an ODinW suite with generated images, converted as docs/train.md says."""
    from odvgkit.convert.base import default_output, write_conversion
    from odvgkit.convert.coco import coco_to_odvg
    from odvgkit_train.suites import ODINW13, ODINW35

    root = Path(root)
    for k, (_, sub, ann_rel, img) in enumerate(ODINW13 if suite == "odinw13" else ODINW35):
        ann = make_coco_style(root / sub / ann_rel, root / sub / img, n_images, seed=k)
        conv = coco_to_odvg(ann, dataset="coco")
        write_conversion(conv, default_output(ann, "_od.json"), inputs=[ann],
                         label_map_path=ann.with_name(ann.name[:-5] + "_label_map.json"))
    return root


def make_vg_suite_root(root: str | Path, suite: str, n_images: int = 4, seed: int = 0) -> Path:
    """A refexp / grefcoco / flickr30k suite root: generated images and the VG files the converters write.

    refexp: one record per box ("red box"); grefcoco: one record per colour present (all its boxes)
    plus a no-target record per image; flickr30k: one caption per image with a region per box.
    """
    from odvgkit.io import write_records
    from odvgkit_train.demo import make_demo_dataset

    root = Path(root)
    folder = "flickr30k_images" if suite == "flickr30k" else "train2014"
    demo = make_demo_dataset(root / "_gen", n_images=n_images, size=96, seed=seed)
    (root / folder).mkdir(parents=True, exist_ok=True)
    od = [json.loads(x) for x in demo.od_file.read_text().splitlines()]
    vg = [json.loads(x) for x in demo.vg_file.read_text().splitlines()]
    for rec in od:
        (demo.image_root / rec["filename"]).replace(root / folder / rec["filename"])
    for p in (demo.od_file, demo.vg_file, demo.label_map):
        p.unlink()
    for p in sorted((root / "_gen").rglob("*"), reverse=True):
        p.rmdir() if p.is_dir() else p.unlink()
    (root / "_gen").rmdir()
    if suite == "flickr30k":
        for split, part in (("val", vg[: n_images // 2]), ("test", vg[n_images // 2:])):
            write_records(root / f"final_flickr_separateGT_{split}_vg.json", part)
        return root

    def expr(rec: dict[str, Any], text: str, boxes: list[list[float]], **extra: Any) -> dict[str, Any]:
        regions = [{"bbox": boxes if len(boxes) > 1 else boxes[0], "phrase": text, "tokens_positive": [[0, len(text)]]}] if boxes else []
        return {"filename": rec["filename"], "height": rec["height"], "width": rec["width"],
                "grounding": {"caption": text, "regions": regions}, **extra}

    if suite == "refexp":
        recs = [expr(r, i["category"], [i["bbox"]]) for r in od for i in r["detection"]["instances"]]
        for ds in ("refcoco", "refcoco+", "refcocog"):
            for split in (("val", "test") if ds == "refcocog" else ("val", "testA", "testB")):
                write_records(root / f"finetune_{ds}_{split}_vg.json", recs)
        return root
    recs = []
    for r in od:
        by_colour: dict[str, list[list[float]]] = {}
        for i in r["detection"]["instances"]:
            by_colour.setdefault(i["category"], []).append(i["bbox"])
        recs += [expr(r, c, b) for c, b in by_colour.items()]
        absent = next(c for c in COLOURS if c not in by_colour)
        recs.append(expr(r, absent, [], no_target=True))
    for split in ("val", "testA", "testB"):
        write_records(root / f"grefcoco_{split}_vg.json", recs)
    return root


def make_coco_suite_root(root: str | Path, n_images: int = 6) -> Path:
    """``annotations/instances_val2017{.json,_od.json}`` + ``coco_label_map.json`` and ``val2017/``."""
    from odvgkit.convert.base import write_conversion
    from odvgkit.convert.coco import coco_to_odvg

    root = Path(root)
    ann = make_coco_style(root / "annotations" / "instances_val2017.json", root / "val2017", n_images, seed=7)
    write_conversion(coco_to_odvg(ann, dataset="coco"), root / "annotations" / "instances_val2017_od.json", inputs=[ann],
                     label_map_path=root / "annotations" / "coco_label_map.json")
    return root


def make_lvis_suite_root(root: str | Path, n_images: int = 6, minival: bool = True) -> Path:
    """An LVIS json (frequencies, federated fields) over generated images, converted by lvis2odvg."""
    from odvgkit.convert.base import write_conversion
    from odvgkit.convert.lvis import lvis_to_odvg

    root = Path(root)
    name = "lvis_v1_minival_inserted_image_name.json" if minival else "lvis_v1_val.json"
    coco = make_coco_style(root / "annotations" / "_coco.json", root / "val2017", n_images, seed=11)
    doc = json.loads(coco.read_text())
    coco.unlink()
    present: dict[int, set[int]] = {}
    for a in doc["annotations"]:
        present.setdefault(a["image_id"], set()).add(a["category_id"])
    for img in doc["images"]:
        img["coco_url"] = f"http://images.cocodataset.org/val2017/{img.pop('file_name')}"
        absent = [c["id"] for c in doc["categories"] if c["id"] not in present.get(img["id"], set())]
        img["neg_category_ids"] = absent[:1]
        img["not_exhaustive_category_ids"] = []
    for c, f in zip(doc["categories"], "rcf", strict=False):
        c["frequency"] = f
    ann = root / "annotations" / name
    ann.write_text(json.dumps(doc))
    write_conversion(lvis_to_odvg(ann), ann.with_name(name[:-5] + "_od.json"), inputs=[ann],
                     label_map_path=ann.with_name("lvis_v1_label_map.json"))
    return root
