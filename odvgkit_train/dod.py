"""D³ evaluation: every image inferred once, FULL, PRES and ABS scored from that one pass.

Each image is prompted with all sentences of its group (``record["dod"]["sentences"]``, written by
``odvgkit convert dod2odvg``). Two promptings, as MM-Grounding-DINO reports them:

* ``concat`` — the sentences joined into one prompt, one forward pass (MMDetection's default);
* ``parallel`` — one transformer forward per sentence on shared backbone features. This is
  MMDetection's own ``chunked_size=1`` path in ``GroundingDINO.predict`` (image features extracted
  once, then text encoder + encoder/decoder per chunk), reused as is.

MMDetection's D³ config wraps the same images in three datasets (FULL, PRES, ABS), so it infers
every image three times; the predictions do not depend on the setting (the prompt is the group's
sentences in all three), so here they are computed once and scored three times
(:func:`odvgkit_train.metrics.dod_map`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from odvgkit.errors import OdvgError

PROMPTINGS = ("concat", "parallel")


def find_settings(data: Path, label_map: Path | None) -> Path:
    """``d3_settings.json`` beside the ODVG file, else beside the label map."""
    for folder in (data.parent, label_map.parent if label_map else None):
        if folder is not None and (folder / "d3_settings.json").is_file():
            return folder / "d3_settings.json"
    raise OdvgError(f"{data.parent / 'd3_settings.json'}: missing; --metric dod needs the settings file "
                    "'odvgkit convert dod2odvg' writes beside its output")


def read_settings(path: Path) -> dict[str, Any]:
    try:
        doc = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise OdvgError(f"{path}: malformed JSON: {exc}") from None
    if not isinstance(doc, dict) or not doc or not all(
        isinstance(v, dict) and isinstance(v.get("labels"), list) and isinstance(v.get("image_ids"), list) for v in doc.values()
    ):
        raise OdvgError(f'{path}: expected {{"FULL": {{"labels": [...], "image_ids": [...]}}, ...}}')
    return doc


def predict_dod(net: Any, gts: list[dict[str, Any]], image_root: Path, label_map: dict[str, str], prompting: str,
                source: Path, on_image: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
    """One prediction record per image; labels are label-map keys (sentence id − 1)."""
    from odvgkit_train.inference import predict_one, to_record

    if prompting not in PROMPTINGS:
        raise OdvgError(f"--prompting {prompting!r}: choose concat or parallel", 2)
    preds = []
    for line, rec in enumerate(gts, 1):
        sentences = (rec.get("dod") or {}).get("sentences")
        if not isinstance(sentences, list) or not sentences:
            raise OdvgError(f"{source}:{line}: dod.sentences: missing; the records must come from 'odvgkit convert dod2odvg'")
        unknown = [s for s in sentences if str(s) not in label_map]
        if unknown:
            raise OdvgError(f"{source}:{line}: dod.sentences: label {unknown[0]} is not in the label map")
        names = [label_map[str(s)] for s in sentences]
        image = image_root / rec["filename"]
        if not image.is_file():
            raise OdvgError(f"{image}: image not found (give ',images=DIR' or --image-root)")
        pred = predict_one(net, image, "", names, None, 1 if prompting == "parallel" else -1)
        out = to_record(image, image_root, pred, "", names, None, 0.0)
        for inst in out["detection"]["instances"]:
            inst["label"] = int(sentences[inst["label"]])
        out["filename"] = rec["filename"]
        out["dod"] = {"image_id": rec["dod"]["image_id"]}
        preds.append(out)
        if on_image is not None:
            on_image(1)
    return preds
