"""``odvgkit eval --suite NAME ROOT``: one command per benchmark table of the MM-Grounding-DINO guide.

A suite is a fixed list of datasets under ``ROOT`` (ODVG files written by odvgkit's own converters,
layouts in docs/train.md), the metric each is scored with, and the table the guide prints.
Everything is checked before the model is loaded: a missing dataset is one line naming the file.

Predictions are cached per dataset (``--cache``, default ``CHECKPOINT.eval-cache/``) under a key made
of the checkpoint, model options and the dataset file (path, size, mtime): an interrupted run
resumes at the first dataset without predictions, and re-scoring with another ``--protocol`` or
``--score-thr`` needs no model at all.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from odvgkit.errors import OdvgError
from odvgkit_train import metrics as M

# (row name, data root under ODINW_ROOT, annotation file, image prefix) — mmdet's odinw13/35 configs
ODINW35: list[tuple[str, str, str, str]] = [
    ("AerialMaritimeDrone_large", "AerialMaritimeDrone/large", "valid/annotations_without_background.json", "valid"),
    ("AerialMaritimeDrone_tiled", "AerialMaritimeDrone/tiled", "valid/annotations_without_background.json", "valid"),
    ("AmericanSignLanguageLetters", "AmericanSignLanguageLetters/American Sign Language Letters.v1-v1.coco", "valid/annotations_without_background.json", "valid"),
    ("Aquarium", "Aquarium/Aquarium Combined.v2-raw-1024.coco", "valid/annotations_without_background.json", "valid"),
    ("BCCD", "BCCD/BCCD.v3-raw.coco", "valid/annotations_without_background.json", "valid"),
    ("boggleBoards", "boggleBoards/416x416AutoOrient/export", "val_annotations_without_background.json", ""),
    ("brackishUnderwater", "brackishUnderwater/960x540", "valid/annotations_without_background.json", "valid"),
    ("ChessPieces", "ChessPieces/Chess Pieces.v23-raw.coco", "valid/new_annotations_without_background.json", "valid"),
    ("CottontailRabbits", "CottontailRabbits", "valid/new_annotations_without_background.json", "valid"),
    ("dice", "dice/mediumColor/export", "val_annotations_without_background.json", ""),
    ("DroneControl", "DroneControl/Drone Control.v3-raw.coco", "valid/annotations_without_background.json", "valid"),
    ("EgoHands_generic", "EgoHands/generic", "valid/annotations_without_background.json", "valid"),
    ("EgoHands_specific", "EgoHands/specific", "valid/annotations_without_background.json", "valid"),
    ("HardHatWorkers", "HardHatWorkers/raw", "valid/annotations_without_background.json", "valid"),
    ("MaskWearing", "MaskWearing/raw", "valid/annotations_without_background.json", "valid"),
    ("MountainDewCommercial", "MountainDewCommercial", "valid/annotations_without_background.json", "valid"),
    ("NorthAmericaMushrooms", "NorthAmericaMushrooms/North American Mushrooms.v1-416x416.coco", "valid/new_annotations_without_background.json", "valid"),
    ("openPoetryVision", "openPoetryVision/512x512", "valid/annotations_without_background.json", "valid"),
    ("OxfordPets_by_breed", "OxfordPets/by-breed", "valid/annotations_without_background.json", "valid"),
    ("OxfordPets_by_species", "OxfordPets/by-species", "valid/annotations_without_background.json", "valid"),
    ("PKLot", "PKLot/640", "valid/annotations_without_background.json", "valid"),
    ("Packages", "Packages/Raw", "valid/annotations_without_background.json", "valid"),
    ("PascalVOC", "PascalVOC", "valid/annotations_without_background.json", "valid"),
    ("pistols", "pistols/export", "val_annotations_without_background.json", ""),
    ("plantdoc", "plantdoc/416x416", "valid/annotations_without_background.json", "valid"),
    ("pothole", "pothole", "valid/annotations_without_background.json", "valid"),
    ("Raccoons", "Raccoon/Raccoon.v2-raw.coco", "valid/annotations_without_background.json", "valid"),
    ("selfdrivingCar", "selfdrivingCar/fixedLarge/export", "val_annotations_without_background.json", ""),
    ("ShellfishOpenImages", "ShellfishOpenImages/raw", "valid/annotations_without_background.json", "valid"),
    ("ThermalCheetah", "ThermalCheetah", "valid/annotations_without_background.json", "valid"),
    ("thermalDogsAndPeople", "thermalDogsAndPeople", "valid/annotations_without_background.json", "valid"),
    ("UnoCards", "UnoCards/raw", "valid/annotations_without_background.json", "valid"),
    ("VehiclesOpenImages", "VehiclesOpenImages/416x416", "valid/annotations_without_background.json", "valid"),
    ("WildfireSmoke", "WildfireSmoke", "valid/annotations_without_background.json", "valid"),
    ("websiteScreenshots", "websiteScreenshots", "valid/annotations_without_background.json", "valid"),
]
_BY_NAME = {row[0]: row for row in ODINW35}
# ODinW-13: the same folders, the original annotation files, mmdet's odinw13 row names
ODINW13: list[tuple[str, str, str, str]] = [
    (name, _BY_NAME[key][1], _BY_NAME[key][2].replace("new_annotations", "annotations"), _BY_NAME[key][3])
    for name, key in (
        ("AerialMaritimeDrone", "AerialMaritimeDrone_large"), ("Aquarium", "Aquarium"),
        ("CottontailRabbits", "CottontailRabbits"), ("EgoHands", "EgoHands_generic"),
        ("NorthAmericaMushrooms", "NorthAmericaMushrooms"), ("Packages", "Packages"), ("PascalVOC", "PascalVOC"),
        ("pistols", "pistols"), ("pothole", "pothole"), ("Raccoon", "Raccoons"),
        ("ShellfishOpenImages", "ShellfishOpenImages"), ("thermalDogsAndPeople", "thermalDogsAndPeople"),
        ("VehiclesOpenImages", "VehiclesOpenImages"),
    )
]

# MMDetection's odinw13 / odinw35 configs prompt these datasets with enhanced class prompts
CAPTION_PROMPTS: dict[str, dict[str, dict[str, dict[str, str]]]] = {
    "odinw13": {
        "CottontailRabbits": {"Cottontail-Rabbit": {"name": "rabbit"}},
        "EgoHands": {"hand": {"suffix": " of a person"}},
        "NorthAmericaMushrooms": {"CoW": {"name": "flat mushroom"}, "chanterelle": {"name": "yellow mushroom"}},
        "Packages": {"package": {"prefix": "there is a ", "suffix": " on the porch"}},
    },
    "odinw35": {
        "EgoHands_generic": {"hand": {"suffix": " of a person"}},
        "Packages": {"package": {"prefix": "there is a ", "suffix": " on the porch"}},
        "pothole": {"pothole": {"name": "holes", "prefix": "there are some ", "suffix": " on the road"}},
    },
}

SUITES = ("coco", "lvis-minival", "lvis-val", "odinw13", "odinw35", "refexp", "grefcoco", "flickr30k", "dod")
TITLES = {"coco": "COCO val2017 (zero-shot)", "lvis-minival": "LVIS minival (fixed AP)", "lvis-val": "LVIS v1 val (fixed AP)",
          "odinw13": "ODinW-13", "odinw35": "ODinW-35", "refexp": "RefCOCO / RefCOCO+ / RefCOCOg",
          "grefcoco": "gRefCOCO", "flickr30k": "Flickr30k Entities", "dod": "D³ (Described Object Detection)"}


@dataclass
class Entry:
    """One dataset of a suite: one row (or part of one) of the table."""

    name: str
    data: Path
    images: Path
    metric: str
    label_map: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _od_label_map(ann: Path) -> Path:
    """``<stem>_label_map.json`` beside the annotations (coco2odvg --label-map), else coco2odvg's default."""
    own = ann.with_name(ann.name[: -len(".json")] + "_label_map.json")
    return own if own.is_file() else ann.with_name("coco_label_map.json")


def _odvg_of(ann: Path, suffix: str) -> Path:
    """The converter's default output for ``ann`` (``x.json`` → ``x_od.json``), any record format."""
    stem = ann.name[: -len(".json")] if ann.name.endswith(".json") else ann.stem
    for ext in (".json", ".jsonl", ".jsonl.gz", ".parquet"):
        cand = ann.with_name(stem + suffix + ext)
        if cand.is_file():
            return cand
    return ann.with_name(stem + suffix + ".json")


def entries(suite: str, root: Path, promptings: tuple[str, ...] = ("concat",)) -> list[Entry]:
    """The datasets of ``suite`` under ``root``, every file checked; one line naming the first missing.

    ``dod`` has one entry (one table row) per prompting, as the guide's D³ table.
    """
    if suite not in SUITES:
        raise OdvgError(f"--suite {suite!r}: choose one of {', '.join(SUITES)}", 2)
    if not root.is_dir():
        raise OdvgError(f"{root}: no such suite root folder")
    out: list[Entry] = []
    if suite == "coco":
        ann = root / "annotations" / "instances_val2017.json"
        out.append(Entry("COCO val2017", _odvg_of(ann, "_od"), root / "val2017", "coco", _od_label_map(ann)))
    elif suite in ("lvis-minival", "lvis-val"):
        ann = root / "annotations" / ("lvis_v1_minival_inserted_image_name.json" if suite == "lvis-minival" else "lvis_v1_val.json")
        e = Entry("LVIS minival" if suite == "lvis-minival" else "LVIS val", _odvg_of(ann, "_od"), root, "lvis",
                  ann.with_name("lvis_v1_label_map.json"), {"lvis_json": ann})
        out.append(e)
    elif suite in ("odinw13", "odinw35"):
        for name, sub, ann_rel, img in ODINW13 if suite == "odinw13" else ODINW35:
            ann = root / sub / ann_rel
            prompt = CAPTION_PROMPTS[suite].get(name)
            out.append(Entry(name, _odvg_of(ann, "_od"), root / sub / img, "coco", _od_label_map(ann),
                             {"caption_prompt": prompt} if prompt else {}))
    elif suite == "refexp":
        for ds, label in (("refcoco", "RefCOCO"), ("refcoco+", "RefCOCO+"), ("refcocog", "RefCOCOg")):
            for split in (("val", "test") if ds == "refcocog" else ("val", "testA", "testB")):
                ann = root / f"finetune_{ds}_{split}.json"
                out.append(Entry(f"{label} {split}", _odvg_of(ann, "_vg"), root / "train2014", "refexp"))
    elif suite == "grefcoco":
        for split in ("val", "testA", "testB"):
            out.append(Entry(split, _odvg_of(root / f"grefcoco_{split}.json", "_vg"), root / "train2014", "grefcoco"))
    elif suite == "flickr30k":
        for split in ("val", "test"):
            ann = root / f"final_flickr_separateGT_{split}.json"
            out.append(Entry(split, _odvg_of(ann, "_vg"), root / "flickr30k_images", "flickr30k"))
    else:  # dod
        for p in promptings:
            out.append(Entry(f"D³ {p}", root / "d3_od.jsonl", root / "d3_images", "dod", root / "d3_label_map.json",
                             {"prompting": p}))
    present = [e for e in out if e.data.is_file()]
    if not present:
        raise OdvgError(f"{root}: empty suite: none of the {len(out)} {suite} datasets is there (expected e.g. "
                        f"{out[0].data}; see docs/train.md for the layout)")
    for e in out:
        for path, what in ((e.data, "ODVG file"), (e.label_map, "label map"), (e.extra.get("lvis_json"), "LVIS json (class frequencies)")):
            if path is not None and not path.is_file():
                raise OdvgError(f"{path}: missing {what} of {suite} dataset {e.name!r} (see docs/train.md for the layout)")
        if not e.images.is_dir():
            raise OdvgError(f"{e.images}: missing image folder of {suite} dataset {e.name!r}")
    return out


class _LvisCategory(msgspec.Struct):
    id: int
    frequency: str = ""


class _LvisCategories(msgspec.Struct):
    categories: list[_LvisCategory]


def lvis_frequencies(path: Path) -> dict[str, str]:
    """``{label: r|c|f}`` from an LVIS json's categories (label = id − 1), decoding nothing else."""
    import msgspec

    try:
        doc = msgspec.json.decode(path.read_bytes(), type=_LvisCategories)
    except msgspec.DecodeError as exc:
        raise OdvgError(f"{path}: categories: {exc}") from None
    return {str(c.id - 1): c.frequency for c in doc.categories}


# ------------------------------------------------------------------------------------------ cache
def _file_key(path: Path, with_path: bool = True) -> dict[str, Any]:
    st = path.stat()
    return {"path": str(path.resolve()) if with_path else None, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def cache_key(entry: Entry, checkpoint: Path, options: dict[str, Any]) -> str:
    """Same checkpoint file (size, mtime: a copy made with its times kept counts), same data, same options."""
    doc = {"checkpoint": _file_key(checkpoint, with_path=False), "data": _file_key(entry.data), "metric": entry.metric,
           "label_map": _file_key(entry.label_map) if entry.label_map else None, **options}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def _cache_file(cache: Path, entry: Entry, key: str) -> Path:
    safe = "".join(c if (c.isascii() and c.isalnum()) or c in "-_+" else "_" for c in entry.name)
    return cache / f"{safe}.{key}.preds.jsonl"


# ------------------------------------------------------------------------------------------ run
def run_suite(suite: str, root: Path, checkpoint: Path, *, protocol: str = "official", model: str | None = None,
              text_encoder: Path | None = None, chunked_size: int = -1, score_thrs: list[float] | None = None,
              prompting: str = "concat", cache: Path | None = None,
              on_image: Callable[[int], None] | None = None, info: Callable[[str], None] | None = None,
              warn: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Evaluate every dataset of ``suite``; returns ``{"suite", "protocol", "columns", "rows", …}``."""
    from odvgkit.io import read_records
    from odvgkit_train.evaluation import evaluate

    if protocol not in ("official", "mmdet"):
        raise OdvgError(f"--protocol {protocol!r}: choose official or mmdet", 2)
    from odvgkit_train.dod import PROMPTINGS

    promptings = tuple(p.strip() for p in prompting.split(",") if p.strip())
    bad = [p for p in promptings if p not in PROMPTINGS]
    if bad or not promptings:
        raise OdvgError(f"--prompting {prompting!r}: choose concat, parallel or concat,parallel", 2)
    items = entries(suite, root, promptings)
    if not checkpoint.is_file():
        raise OdvgError(f"{checkpoint}: checkpoint not found")
    score_thrs = score_thrs or [0.7]
    if suite.startswith("lvis") and chunked_size <= 0:
        chunked_size = 40  # MMDetection's LVIS configs: 1,203 names never fit one 256-token prompt
        if info:
            info("lvis: prompting 40 classes per chunk (--chunked-size 40, as MMDetection's LVIS configs)")
    cache = cache or checkpoint.with_name(checkpoint.name + ".eval-cache") / suite
    options = {"model": model, "text_encoder": str(text_encoder) if text_encoder else None, "chunked_size": chunked_size}
    net = None
    results: list[tuple[Entry, dict[str, Any]]] = []
    from_cache = 0
    images: set[tuple[str, str]] = set()  # distinct (dataset, image): VG datasets have a record per expression
    for e in items:
        prompting = e.extra.get("prompting", "concat")
        key = cache_key(e, checkpoint, {**options, "prompting": e.extra.get("prompting"),
                                        "caption_prompt": e.extra.get("caption_prompt")})
        cached = _cache_file(cache, e, key)
        freqs = lvis_frequencies(e.extra["lvis_json"]) if e.metric == "lvis" else None
        spec = {"path": e.data, "images": e.images, "label_map": e.label_map}
        if cached.is_file():
            preds = [r for _, r in read_records(cached)]
            from_cache += 1
            if info:
                info(f"{e.name}: predictions from {cached}")
        else:
            if net is None:
                from odvgkit_train.inference import load_model

                net = load_model(checkpoint, model=model, text_encoder=text_encoder)
            # written atomically once the dataset is complete: an interrupted dataset is redone
            evaluate(spec, net, e.metric, protocol=protocol, chunked_size=chunked_size, predictions_out=cached,
                     on_image=on_image, warn=warn, prompting=prompting, score_thr=score_thrs[0], frequencies=freqs,
                     caption_prompt=e.extra.get("caption_prompt"))
            preds = [r for _, r in read_records(cached)]
        images.update((str(e.data), str(p.get("filename"))) for p in preds)
        thr_results = []
        for thr in score_thrs if e.metric == "grefcoco" else score_thrs[:1]:
            thr_results.append(evaluate(spec, None, e.metric, protocol=protocol, predictions_in=preds, score_thr=thr,
                                        prompting=prompting, frequencies=freqs))
        result = thr_results[0]
        if e.metric == "grefcoco":
            for thr, r in zip(score_thrs, thr_results, strict=True):
                result[f"Pr@F1 ({thr:g})"] = r["Pr@F1"]
                result[f"N-acc ({thr:g})"] = r["N-acc"]
        results.append((e, result))
    table = make_table(suite, results, score_thrs)
    return {"suite": suite, "title": TITLES[suite], "protocol": protocol, "root": str(root), "checkpoint": str(checkpoint),
            "cache": str(cache), "datasets_from_cache": from_cache, "datasets": len(items),
            "images": len(images), "records": sum(int(r.get("images", 0)) for _, r in results), **table}


def make_table(suite: str, results: list[tuple[Entry, dict[str, Any]]], score_thrs: list[float]) -> dict[str, Any]:
    """``{"columns": [...], "rows": [{column: value}]}`` in the guide's layout (undefined = −1)."""
    rows: list[dict[str, Any]] = []
    if suite in ("odinw13", "odinw35"):
        columns = ["dataset", "mAP", "AP50"]
        for e, r in results:
            rows.append({"dataset": e.name, "mAP": r["mAP"], "AP50": r["AP50"]})
        defined = [r["mAP"] for r in rows if not M.is_na(r["mAP"])]
        rows.append({"dataset": "Average", "mAP": sum(defined) / len(defined) if defined else M.NA,
                     "AP50": M.NA if not defined else sum(r["AP50"] for r in rows if not M.is_na(r["mAP"])) / len(defined)})
    elif suite == "coco":
        columns = ["dataset", "mAP", "AP50", "AP75", "APs", "APm", "APl"]
        rows = [{"dataset": e.name, **{c: r[c] for c in columns[1:]}} for e, r in results]
    elif suite in ("lvis-minival", "lvis-val"):
        columns = ["dataset", "APr", "APc", "APf", "AP"]
        rows = [{"dataset": e.name, **{c: r.get(c, M.NA) for c in columns[1:]}} for e, r in results]
    elif suite == "refexp":
        columns = ["dataset", "P@1", "P@5", "P@10"]
        rows = [{"dataset": e.name, **{c: r[c] for c in columns[1:]}} for e, r in results]
    elif suite == "grefcoco":
        columns = ["split"] + [f"{m} ({t:g})" for t in score_thrs for m in ("Pr@F1", "N-acc")]
        rows = [{"split": e.name, **{c: r[c] for c in columns[1:]}} for e, r in results]
    elif suite == "flickr30k":
        columns = ["split", "R@1", "R@5", "R@10"]
        rows = [{"split": e.name, **{c: r[c] for c in columns[1:]}} for e, r in results]
    else:  # dod
        columns = ["prompting"] + [f"{s}{'' if b is None else '/' + b}" for s in ("FULL", "PRES", "ABS")
                                   for b in (None, "short", "middle", "long", "very_long")]
        rows = [{"prompting": r["prompting"], **{c: r[c] for c in columns[1:]}} for _, r in results]
    return {"columns": columns, "rows": rows}


def markdown(result: dict[str, Any]) -> str:
    """The table as the guide shows it (values ×100, one decimal; n/a for undefined)."""
    cols = result["columns"]
    lines = [f"**{result['title']}** — checkpoint `{Path(result['checkpoint']).name}`, protocol: {result['protocol']}", "",
             "| " + " | ".join(cols) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(cols))) + "|"]
    for row in result["rows"]:
        cells = [str(row[c]) if not isinstance(row[c], float) else
                 ("n/a" if M.is_na(row[c]) else f"{100 * row[c]:.1f}") for c in cols]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run_suite_cli(rep: Any, suite: str, data: list[str], checkpoint: Path, *, protocol: str, model: str | None,
                  text_encoder: Path | None, chunked_size: int, score_thr: str, markdown: Path | None, prompting: str,
                  cache: Path | None = None) -> None:
    """The ``--suite`` branch of ``odvgkit eval``: run, print the guide's table, write ``--markdown``."""
    from odvgkit.io import atomic_write

    if len(data) != 1:
        raise OdvgError(f"--suite {suite} takes one root folder ({len(data)} given)", 2)
    thrs = parse_thresholds(score_thr)
    md_text = None
    with rep.progress(f"eval --suite {suite}", unit="images") as advance:
        result = run_suite(suite, Path(data[0]), checkpoint, protocol=protocol, model=model, text_encoder=text_encoder,
                           chunked_size=chunked_size, score_thrs=thrs, prompting=prompting, cache=cache,
                           on_image=advance, info=rep.info, warn=rep.warn)
    if markdown is not None:
        md_text = _markdown(result)
        with atomic_write(markdown, "w") as fh:
            fh.write(md_text)
        result["markdown"] = str(markdown)
    scalars = {k: v for k, v in result.items() if k not in ("columns", "rows")}
    title = f"{result['title']} — protocol: {protocol}"
    if rep.json_mode:
        rep.summary(f"eval --suite {suite}", scalars, tables={"rows": result["rows"]})
    else:
        rows = [{c: (M.fmt(r[c]) if isinstance(r[c], float) else r[c]) for c in result["columns"]} for r in result["rows"]]
        rep.summary(f"eval --suite {suite}", scalars, tables={title: rows})


_markdown = markdown


def parse_thresholds(spec: str) -> list[float]:
    """``--score-thr 0.5,0.6,0.7,0.8`` → floats in [0, 1], or a one-line error."""
    try:
        out = [float(v) for v in spec.split(",") if v.strip()]
    except ValueError:
        raise OdvgError(f"--score-thr {spec!r}: expected numbers like 0.5,0.6,0.7,0.8", 2) from None
    if not out or not all(0.0 <= v <= 1.0 for v in out):
        raise OdvgError(f"--score-thr {spec!r}: expected numbers in [0, 1]", 2)
    return out
