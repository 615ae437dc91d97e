"""goldg2odvg row: a MDETR grounding json shaped like ``final_mixed_train_no_coco.json`` (GQA/VG
part) followed by a ``final_flickr_separateGT_train.json`` part, generated here (seeded), written
independently of ``benchmarks/synth.py`` and ``benchmarks/bench_convert_sources.py``.

What makes it like the real files (and unlike the earlier synthetic one):

* images carry every MDETR key in the real files' order — ``caption``, ``dataset_name``,
  ``tokens_negative``, ``sentence_id``, ``original_img_id``, ``tokens_positive_eval``,
  ``file_name``, ``height``, ``width``, ``id`` — so a decoder has to skip the span lists it does not
  need; one image per caption, several captions share one picture (``original_img_id``);
* the mixed part's captions are several region descriptions joined (60–400 characters), the Flickr
  part's one sentence; a non-ASCII word now and then, written as ``\\uXXXX`` escapes like the
  files ``json.dump`` wrote;
* the Flickr part's ``height``/``width`` are numeric strings (spec §3.7);
* image ids are non-contiguous and the two parts' ids interleave, so sorting by id matters;
* annotations are **not** grouped by image (shuffled), carry ``area`` as a full-precision float,
  ``iscrowd``, ``image_id``, ``category_id``, ``id``, float ``bbox``, ``tokens_positive`` (one span
  per word in the mixed part, so adjacent spans join into one phrase piece; a span list that skips
  words gives a list phrase), and ``phrase_ids`` in the Flickr part, where a phrase with several
  boxes has one annotation per box (the real files' "separateGT": merged into a nested bbox list);
* a repeated phrase ("the building … the building") in some captions (merged by phrase text:
  odvgkit keeps every mention's spans, docs/deviations.md), boxes past the image edge (clipped),
  tiny boxes, images without annotations (dropped).

Full scale is issue #17's: 120,000 images, 466,000 boxes.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

SCALES = {"full": (120_000, 466_000), "small": (6_000, 23_300)}
SEED = 1717
FLICKR_SHARE = 0.4  # of the images

NOUNS = ["man", "woman", "boy", "girl", "dog", "cat", "horse", "shirt", "table", "chair", "car", "tree", "building",
         "window", "sky", "grass", "boat", "water", "bench", "sign", "street", "light", "bag", "hat", "jacket",
         "wall", "floor", "plate", "pizza", "bus", "train", "bike", "umbrella", "fence", "cloud", "road", "door",
         "player", "ball", "bird", "kite", "surfboard", "wave", "mountain", "crowd", "helmet", "jeans", "glasses"]
ADJS = ["red", "blue", "green", "white", "black", "small", "large", "old", "young", "tall", "wooden", "striped",
        "brown", "yellow", "dark", "bright", "metal", "plastic", "empty", "wet"]
UNICODE = ["café", "naïve", "jalapeño", "crème brûlée", "façade", "Zoë", "São Paulo", "smörgåsbord", "piñata"]
VERBS = ["is on", "is next to", "is behind", "is holding", "is wearing", "is near", "is under", "sits on",
         "stands by", "walks past", "looks at", "is in front of"]
FLICKR_VERBS = ["is riding", "is playing with", "walks along", "stands near", "is jumping over", "is sitting on",
                "is throwing", "is looking at", "runs across", "is carrying"]


def _phrase(rng: random.Random) -> list[str]:
    """A noun phrase as words (1–3 of them, the last one a noun; a non-ASCII word now and then)."""
    words = [rng.choice(ADJS) for _ in range(rng.choice((0, 0, 1, 1, 2)))]
    words.append(rng.choice(UNICODE) if rng.random() < 0.01 else rng.choice(NOUNS))
    return words


class _Caption:
    """A caption built piece by piece, remembering the character span of every word."""

    def __init__(self) -> None:
        self.text = ""

    def add(self, s: str) -> None:
        self.text += s

    def words(self, words: list[str]) -> list[list[int]]:
        spans = []
        for k, w in enumerate(words):
            if k:
                self.text += " "
            spans.append([len(self.text), len(self.text) + len(w)])
            self.text += w
        return spans


def _negatives(rng: random.Random, caption: str, positive: list[list[int]]) -> list[list[int]]:
    """``tokens_negative``: a few word spans not among the positive ones (MDETR keeps such lists)."""
    taken = {tuple(s) for s in positive}
    out, at = [], 0
    for w in caption.split(" "):
        span = (at, at + len(w))
        at += len(w) + 1
        if w and span not in taken and rng.random() < 0.3:
            out.append(list(span))
    return out


def _mixed_image(rng: random.Random) -> tuple[str, list[tuple[list[list[int]], int]]]:
    """A GQA/VG-style caption: 1–6 region descriptions joined; each phrase's boxes as
    ``(spans, n_boxes)``. Spans are per word (so adjacent ones join into one piece upstream);
    sometimes a phrase's spans skip a word (a list phrase) or a phrase repeats."""
    cap = _Caption()
    phrases: list[tuple[list[list[int]], int]] = []
    n_sent = rng.choice((1, 1, 2, 2, 3, 4, 5, 6))
    seen: list[list[str]] = []
    for s in range(n_sent):
        if s:
            cap.add(". " if rng.random() < 0.7 else ", ")
        the = "The" if s == 0 or rng.random() < 0.7 else "the"
        cap.add(the + " ")
        subj = rng.choice(seen) if seen and rng.random() < 0.08 else _phrase(rng)  # a repeated phrase
        seen.append(subj)
        spans = cap.words(subj)
        if len(spans) > 2 and rng.random() < 0.15:
            spans = [spans[0], spans[-1]]  # "red … shirt": a list phrase
        phrases.append((spans, 1))
        cap.add(" " + rng.choice(VERBS) + " ")
        obj = _phrase(rng)
        cap.add("the " if rng.random() < 0.6 else "a ")
        spans = cap.words(obj)
        if rng.random() < 0.85:
            phrases.append((spans, 1))
        if rng.random() < 0.25:
            cap.add(" with " + rng.choice(("a ", "the ", "two ", "")))
            spans = cap.words(_phrase(rng))
            phrases.append((spans, 2 if rng.random() < 0.2 else 1))
    if rng.random() < 0.6:
        cap.add(".")
    return cap.text, phrases


def _flickr_image(rng: random.Random) -> tuple[str, list[tuple[list[list[int]], int]]]:
    """A Flickr30k-style sentence; each entity's one span (the whole phrase) with 1–4 boxes."""
    cap = _Caption()
    phrases: list[tuple[list[list[int]], int]] = []
    lead = rng.choice(("A ", "Two ", "An ", "Three ", "The ", "A group of "))
    cap.add(lead)
    words = _phrase(rng)
    spans = cap.words(words)
    phrases.append(([[spans[0][0], spans[-1][1]]], 1 if lead in ("A ", "An ", "The ") else rng.choice((2, 2, 3, 4))))
    for _ in range(rng.choice((1, 1, 2))):
        cap.add(" " + rng.choice(FLICKR_VERBS) + rng.choice((" a ", " the ", " some ")))
        spans = cap.words(_phrase(rng))
        if rng.random() < 0.9:
            phrases.append(([[spans[0][0], spans[-1][1]]], 1 if rng.random() < 0.8 else 2))
    if rng.random() < 0.3:
        cap.add(" in " + rng.choice(("a ", "the ")))
        spans = cap.words(_phrase(rng))
        phrases.append(([[spans[0][0], spans[-1][1]]], 1))
    cap.add(" .")
    return cap.text, phrases


def _box(rng: random.Random, w_img: int, h_img: int, flickr: bool) -> tuple[list[float], float]:
    """``[x, y, w, h]`` and a polygon-like ``area`` (full-precision float): now and then past
    the image edge (clipped upstream), tiny (dropped), or a thin line."""
    r = rng.random()
    if r < 0.004:
        w, h = rng.uniform(0.2, 1.0), rng.uniform(0.2, 30.0)  # tiny: dropped
    elif r < 0.01:
        w, h = rng.uniform(1.0, 1.5), rng.uniform(5.0, 60.0)  # ≤ 1.5 px wide
    else:
        w, h = rng.uniform(8.0, w_img * 0.8), rng.uniform(8.0, h_img * 0.8)
    x, y = rng.uniform(0.0, w_img - w * 0.5), rng.uniform(0.0, h_img - h * 0.5)  # may cross the edge
    if flickr:  # Flickr30k boxes are whole pixels, written as floats
        box = [float(int(x)), float(int(y)), float(max(1, int(w))), float(max(1, int(h)))]
    else:
        box = [round(x, 2), round(y, 2), round(w, 2), round(h, 2)]
    return box, box[2] * box[3] * rng.uniform(0.55, 1.0)


def _write(path: Path, n_images: int, n_boxes: int, seed: int) -> None:
    rng = random.Random(seed)
    n_flickr = int(n_images * FLICKR_SHARE)
    # non-contiguous ids; the parts' ids interleave (ascending within each part, as in the files)
    pool = sorted(rng.sample(range(n_images * 3), n_images))
    flickr_slots = set(rng.sample(range(n_images), n_flickr))
    mixed_ids = [pool[k] for k in range(n_images) if k not in flickr_slots]
    flickr_ids = [pool[k] for k in range(n_images) if k in flickr_slots]
    images: list[dict[str, Any]] = []
    plans: list[tuple[int, int, int, bool, list[tuple[list[list[int]], int]]]] = []
    picture = 2_300_000
    for part, ids in (("mixed", mixed_ids), ("flickr", flickr_ids)):
        flickr = part == "flickr"
        sentences_left = 0
        for img_id in ids:
            if sentences_left == 0:  # a new picture: several captions (images) share it
                picture += rng.randint(1, 40)
                sentences_left = rng.randint(1, 5 if flickr else 8)
                w_img, h_img = (rng.choice((500, 375, 333, 500, 281)), rng.choice((500, 375, 333, 332))) if flickr else \
                    (rng.choice((500, 800, 1024, 640, 333)), rng.choice((375, 600, 768, 480, 500)))
                sentence = 0
            sentences_left -= 1
            caption, phrases = _flickr_image(rng) if flickr else _mixed_image(rng)
            if rng.random() < 0.02:
                phrases = []  # a caption without boxes: dropped
            positive = [s for spans, _ in phrases for s in spans]
            images.append({
                "caption": caption,
                "dataset_name": "flickr" if flickr else rng.choice(("gqa", "VG")),
                "tokens_negative": _negatives(rng, caption, positive),
                "sentence_id": sentence,
                "original_img_id": picture,
                "tokens_positive_eval": [spans for spans, _ in phrases],
                "file_name": f"{picture}.jpg",
                "height": str(h_img) if flickr else h_img,
                "width": str(w_img) if flickr else w_img,
                "id": img_id,
            })
            sentence += 1
            plans.append((img_id, w_img, h_img, flickr, phrases))
    # scale the boxes per phrase so the total matches n_boxes
    planned = sum(n for *_, phrases in plans for _, n in phrases)
    extra = n_boxes - planned
    anns: list[dict[str, Any]] = []
    with_phrases = [k for k, p in enumerate(plans) if p[4]]
    bonus: dict[int, int] = {}
    if extra > 0:
        for k in rng.choices(with_phrases, k=extra):
            bonus[k] = bonus.get(k, 0) + 1
    trim = max(0, -extra)
    for k, (img_id, w_img, h_img, flickr, phrases) in enumerate(plans):
        counts = [n for _, n in phrases]
        for _ in range(bonus.get(k, 0)):
            counts[rng.randrange(len(counts))] += 1
        for p, ((spans, _), n) in enumerate(zip(phrases, counts, strict=True)):
            if trim and n > 1:
                n -= 1
                trim -= 1
            for _ in range(n):
                box, area = _box(rng, w_img, h_img, flickr)
                ann: dict[str, Any] = {"area": area, "iscrowd": 0, "image_id": img_id, "category_id": 1, "id": 0,
                                       "bbox": box, "tokens_positive": [list(s) for s in spans]}
                if flickr:
                    ann["phrase_ids"] = p
                anns.append(ann)
    rng.shuffle(anns)  # not grouped by image
    ann_id = 0
    for a in anns:
        ann_id += rng.randint(1, 3)  # non-contiguous
        a["id"] = ann_id
    doc = {"info": {"description": "MDETR-shaped GoldG (generated)"}, "licenses": [], "images": images,
           "annotations": anns, "categories": [{"supercategory": "object", "id": 1, "name": "object"}]}
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "w", encoding="ascii") as fh:
        json.dump(doc, fh)  # as MDETR's scripts wrote the files: ensure_ascii, default separators
    os.replace(tmp, path)


def generate(root: Path, scale: str) -> dict[str, Path]:
    n_images, n_boxes = SCALES[scale]
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"final_goldg_{scale}_train.json"
    if not path.exists():
        _write(path, n_images, n_boxes, SEED)
    return {"input": path}


def upstream(inputs: dict[str, Path], out: Path, scripts: Path) -> list[str]:
    return [str(scripts / "goldg2odvg.py"), str(inputs["input"]), "-o", str(out / "goldg_vg.json")]


def ours(inputs: dict[str, Path], out: Path) -> list[str]:
    return ["-m", "odvgkit", "convert", "goldg2odvg", str(inputs["input"]), "-o", str(out / "goldg_vg.json"),
            "--quiet", "--force"]


def _extra_spans_are_the_phrase(caption: str, phrase: str | list[str], extra: list[list[int]]) -> bool:
    """The spans odvgkit adds to a region come from a later mention of the same phrase text:
    every one of them covers words of that text."""
    text = phrase if isinstance(phrase, str) else " ".join(phrase)
    return all(caption[s:e] and caption[s:e] in text for s, e in extra)


def compare(inputs: dict[str, Path], out_upstream: Path, out_ours: Path) -> str:
    """Record by record: equal (numbers by value: upstream's clipped ints are odvgkit's floats,
    docs/deviations.md), or equal except spans kept from a repeated phrase (the documented
    deviation: odvgkit's region spans ⊇ upstream's, the extra ones on the same phrase text)."""
    import jsonlines

    n = n_kept_spans = 0
    with jsonlines.open(out_upstream / "goldg_vg.json") as up, jsonlines.open(out_ours / "goldg_vg.json") as me:
        it_up, it_me = iter(up), iter(me)
        while True:
            a, b = next(it_up, None), next(it_me, None)
            if a is None or b is None:
                if a is not None or b is not None:
                    return f"DIFFERENT: {'upstream' if a is not None else 'odvgkit'} has more records than {n}"
                break
            n += 1
            if a == b:
                continue
            ra, rb = a["grounding"].pop("regions"), b["grounding"].pop("regions")
            if a != b or len(ra) != len(rb):
                return f"DIFFERENT at record {n}: {a['filename']}"
            for x, y in zip(ra, rb, strict=True):
                if x == y:
                    continue
                tx, ty = x.pop("tokens_positive"), y.pop("tokens_positive")
                extra = [s for s in ty if s not in tx]
                if (x != y or [s for s in ty if s in tx] != tx or not extra
                        or not _extra_spans_are_the_phrase(a["grounding"]["caption"], x["phrase"], extra)):
                    return f"DIFFERENT at record {n}: {a['filename']} region {x.get('phrase')!r}"
                n_kept_spans += 1
    if not n_kept_spans:
        return f"same records ({n:,})"
    return (f"same records ({n:,}) but {n_kept_spans:,} regions of a repeated phrase keep every mention's spans "
            "(deviation, docs/deviations.md)")
