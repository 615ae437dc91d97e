"""Turn a Grounding DINO checkpoint's predictions into pseudo-labels: thresholds, NMS, provenance.

Pure parts (:func:`parse_class_thr`, :func:`nms`, :func:`filter_od`, :func:`filter_vg`,
:func:`sha256_file`) take data and return data; :func:`label_records` is the only function that
touches the model (``odvgkit_train``, imported lazily).

Prompts: OD records are prompted with all class names of the label map (label = label-map key);
VG records with their own caption and the ``tokens_positive`` spans of their regions (one phrase per
region; the region boxes are replaced by the predictions, one region per kept box).

Provenance: every output record carries ``pseudolabel: {round, checkpoint}`` (checkpoint = first 16
hex digits of its sha256); the full provenance (sha256, thresholds, NMS, source file, timings) is
returned to be written in ``round.json`` / ``<output>.provenance.json``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from odvgkit.errors import OdvgError
from odvgkit.records import kind_of


def check_unit(name: str, value: float | None) -> None:
    if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value) and 0.0 <= value <= 1.0):
        raise OdvgError(f"{name} {value}: must be within [0, 1]", 2)


def parse_class_thr(specs: Sequence[str], names: Sequence[str]) -> dict[str, float]:
    """``['cat=0.4', 'dog=0.5']`` (or one comma-separated string) → ``{name: thr}``; names must be classes."""
    out: dict[str, float] = {}
    known = set(names)
    for spec in specs:
        for item in (s.strip() for s in spec.split(",")):
            if not item:
                continue
            name, sep, value = item.rpartition("=")
            if not sep or not name.strip():
                raise OdvgError(f"--class-thr {item!r}: expected NAME=THRESHOLD", 2)
            name = name.strip()
            try:
                thr = float(value)
            except ValueError:
                raise OdvgError(f"--class-thr {item!r}: {value!r} is not a number", 2) from None
            check_unit(f"--class-thr {name}", thr)
            if name not in known:
                raise OdvgError(f"--class-thr {name!r}: not a class of the label map ({', '.join(sorted(known))})", 2)
            out[name] = thr
    return out


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two xyxy boxes (0 for degenerate boxes)."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def nms(boxes: Sequence[Sequence[float]], scores: Sequence[float], thr: float) -> list[int]:
    """Indices kept by greedy NMS (highest score first, ties by index), in that order.

    A box is dropped when its IoU with an already kept box is *greater than* ``thr``.
    """
    order = sorted(range(len(boxes)), key=lambda i: (-scores[i], i))
    kept: list[int] = []
    for i in order:
        if all(iou(boxes[i], boxes[k]) <= thr for k in kept):
            kept.append(i)
    return kept


def _keep(items: list[dict[str, Any]], key: Callable[[dict[str, Any]], str], thr_of: Callable[[str], float],
          nms_thr: float | None) -> list[dict[str, Any]]:
    items = [it for it in items if it["score"] >= thr_of(key(it))]
    if nms_thr is None:
        return sorted(items, key=lambda it: -it["score"])
    groups: dict[str, list[dict[str, Any]]] = {}
    for it in items:
        groups.setdefault(key(it), []).append(it)
    kept = []
    for group in groups.values():
        kept += [group[i] for i in nms([g["bbox"] for g in group], [g["score"] for g in group], nms_thr)]
    order = {id(it): n for n, it in enumerate(items)}
    return sorted(kept, key=lambda it: (-it["score"], order[id(it)]))


def filter_od(instances: list[dict[str, Any]], score_thr: float, class_thr: dict[str, float],
              nms_thr: float | None) -> list[dict[str, Any]]:
    """Instances at or above their class's threshold, NMS per class, sorted by score."""
    return _keep(instances, lambda it: it["category"], lambda c: class_thr.get(c, score_thr), nms_thr)


def filter_vg(regions: list[dict[str, Any]], score_thr: float, nms_thr: float | None) -> list[dict[str, Any]]:
    """Regions at or above ``score_thr``, NMS per phrase span, sorted by score."""
    return _keep(regions, lambda r: repr(r["tokens_positive"]), lambda _: score_thr, nms_thr)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def od_classes(label_map: dict[str, str]) -> tuple[list[str], list[int]]:
    """Class names in label order and their label ids (the label map may be sparse)."""
    keys = sorted(label_map, key=int)
    return [label_map[k] for k in keys], [int(k) for k in keys]


def _vg_spans(rec: dict[str, Any], where: str) -> list[list[list[int]]]:
    spans: list[list[list[int]]] = []
    for r in rec["grounding"].get("regions") or []:
        tp = r.get("tokens_positive")
        if not tp:
            raise OdvgError(f"{where}: grounding.regions: a region has no tokens_positive (needed as the prompt)")
        if tp not in spans:
            spans.append(tp)
    return spans


def label_records(
    records: list[tuple[int, dict[str, Any]]],
    source: Path,
    net: Any,
    image_root: Path,
    label_map: dict[str, str] | None,
    *,
    score_thr: float,
    class_thr: dict[str, float],
    nms_thr: float | None,
    chunked_size: int = -1,
    tag: dict[str, Any],
    on_image: Callable[[int], None] | None = None,
    warn: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Predict every record; returns new records (input fields kept, boxes replaced, ``pseudolabel`` tag).

    Predictions are made at score 0 and filtered here, so thresholds and NMS are applied by one
    documented rule for both kinds.
    """
    from odvgkit_train.inference import infer

    classes, ids = od_classes(label_map) if label_map is not None else ([], [])
    out = []
    for lineno, rec in records:
        where = f"{source}:{lineno}"
        kind = kind_of(rec)
        image = image_root / rec["filename"]
        if not image.is_file():
            raise OdvgError(f"{where}: filename: image {image} not found (wrong --image-root?)")
        new = {k: v for k, v in rec.items() if k not in ("detection", "grounding", "pseudolabel")}
        if kind == "od":
            if not classes:
                raise OdvgError(f"{where}: OD record but no label map (give --label-map)")
            [pred] = infer([image], net, classes, chunked_size=chunked_size, score_thr=0.0, warn=warn)
            inst = [{**i, "label": ids[i["label"]]} for i in pred["detection"]["instances"]]
            new["detection"] = {"instances": filter_od(inst, score_thr, class_thr, nms_thr)}
        elif kind == "vg":
            caption = rec["grounding"]["caption"]
            spans = _vg_spans(rec, where)
            if not spans:
                raise OdvgError(f"{where}: grounding.regions: no phrase to prompt with")
            [pred] = infer([image], net, caption, tokens_positive=spans, score_thr=0.0, warn=warn)
            new["grounding"] = {"caption": caption, "regions": filter_vg(pred["grounding"]["regions"], score_thr, nms_thr)}
        else:
            raise OdvgError(f"{where}: record has neither 'detection' nor 'grounding'")
        new["pseudolabel"] = dict(tag)
        out.append(new)
        if on_image is not None:
            on_image(1)
    return out


def next_round(records: list[tuple[int, dict[str, Any]]]) -> int:
    """One more than the highest ``pseudolabel.round`` of the input (1 for unlabeled input)."""
    seen = [r.get("pseudolabel", {}).get("round") for _, r in records if isinstance(r.get("pseudolabel"), dict)]
    return max([int(x) for x in seen if isinstance(x, int)], default=0) + 1


def label_file(
    source: Path,
    output: Path,
    checkpoint: Path,
    *,
    image_root: Path | None = None,
    label_map: Path | None = None,
    score_thr: float = 0.3,
    class_thr: Sequence[str] = (),
    nms_thr: float | None = 0.5,
    chunked_size: int = -1,
    round_no: int | None = None,
    text_encoder: str | Path | None = None,
    model: str | None = None,
    on_image: Callable[[int], None] | None = None,
    warn: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Label an ODVG file; writes ``output`` (+ its label map for OD) and ``<output>.provenance.json``
    together (atomically); returns the provenance."""
    import json
    import time

    from odvgkit.io import (
        AtomicGroup,
        check_distinct,
        read_label_map,
        read_records,
        record_writer,
        write_label_map,
    )
    from odvgkit.pseudolabel.init import label_map_path

    check_unit("--score-thr", score_thr)
    check_unit("--nms", nms_thr)
    if not source.is_file():
        raise OdvgError(f"{source}: no such file")
    if not checkpoint.is_file():
        raise OdvgError(f"--checkpoint {checkpoint}: checkpoint not found")
    check_distinct(output, [source])
    records = list(read_records(source))
    if not records:
        raise OdvgError(f"{source}: no records")
    kinds = {kind_of(r) for _, r in records}
    lm = None
    if "od" in kinds:
        lm_file = label_map or label_map_path(source)
        if not lm_file.is_file():
            raise OdvgError(f"{source}: OD records need a label map: give --label-map (looked for {lm_file})")
        lm = read_label_map(lm_file)
        bad = [k for k in lm if not k.isdigit()]
        if bad or not lm:
            raise OdvgError(f"{lm_file}: label map keys must be label ids '0', '1', … (got {bad[:3] or 'none'})")
    thr = parse_class_thr(class_thr, list(lm.values()) if lm else [])
    if class_thr and lm is None:
        raise OdvgError("--class-thr applies to OD classes; VG records use --score-thr", 2)
    start = time.time()
    sha = sha256_file(checkpoint)
    k = round_no if round_no is not None else next_round(records)
    from odvgkit_train.api import load_model

    net = load_model(checkpoint, model=model, text_encoder=text_encoder)
    out = label_records(records, source, net, image_root or source.parent, lm, score_thr=score_thr, class_thr=thr,
                        nms_thr=nms_thr, chunked_size=chunked_size, tag={"round": k, "checkpoint": sha[:16]},
                        on_image=on_image, warn=warn)
    provenance = {"round": k, "source": str(source.resolve()), "checkpoint": str(checkpoint.resolve()),
                  "checkpoint_sha256": sha, "score_thr": score_thr, "class_thr": thr, "nms": nms_thr,
                  "chunked_size": chunked_size, "images": len(out),
                  "boxes": sum(len((r.get("detection") or {}).get("instances") or [])
                               + len((r.get("grounding") or {}).get("regions") or []) for r in out),
                  "seconds": round(time.time() - start, 3)}
    with AtomicGroup() as group:
        with record_writer(group, output) as w:
            for rec in out:
                w.write(rec)
        if lm is not None:
            write_label_map(label_map_path(output), lm, group)
        group.path(provenance_path(output)).write_text(json.dumps(provenance, indent=2) + "\n", encoding="utf-8")
    return provenance


def provenance_path(output: str | Path) -> Path:
    p = Path(output)
    return p.with_name(p.name + ".provenance.json")
