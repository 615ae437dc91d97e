"""Any detection format FiftyOne reads (KITTI, VOC, YOLOv4/5, OpenLABEL, CVAT, BDD, …) → ODVG OD.

The long tail of formats goes through FiftyOne's own importers (``fo.Dataset.from_dir`` with a
``fiftyone.types`` dataset type) instead of one odvgkit module per format: FiftyOne maintains
them. The dataset is loaded into a temporary, non-persistent FiftyOne dataset (in the database
:func:`odvgkit.browse.app.database` provides), read back sample by sample in sorted file-path
order, and deleted.

FiftyOne stores boxes relative to the image (``[x, y, w, h]`` in 0..1). They are turned back into
absolute ``[x1, y1, x2, y2]`` with the image size from the image header (EXIF aware, as everywhere
in odvgkit) and rounded to 1e-6 px: the division FiftyOne did leaves ``712.4000000000001``-style
noise that would otherwise look like a changed coordinate (and push a box on the image edge past
it). Boxes then pass the same checks as every importer (:mod:`odvgkit.convert._importer`).

Class order: ``--classes``, else the classes the dataset declares for the field (YOLO's
``dataset.yaml``, …), else every label used, sorted by name.

FiftyOne is imported inside the functions (the ``browse`` extra; ``import fiftyone`` takes ≈5 s).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from odvgkit.convert._importer import ClassSpace, check_box
from odvgkit.convert.base import Conversion
from odvgkit.errors import OdvgError, ProblemLog, require
from odvgkit.images import image_size

_DIGITS = 6


def dataset_type(fo: Any, name: str) -> Any:
    """``"KITTIDetectionDataset"`` → ``fo.types.KITTIDetectionDataset``, or a clear error."""
    t = getattr(fo.types, name, None)
    if t is None or not isinstance(t, type) or not issubclass(t, fo.types.LabeledImageDataset):
        choices = sorted(
            n for n in dir(fo.types)
            if isinstance(getattr(fo.types, n), type) and issubclass(getattr(fo.types, n), fo.types.LabeledImageDataset)
            and getattr(fo.types, n) is not fo.types.LabeledImageDataset
        )
        raise OdvgError(f"--type {name!r}: not a FiftyOne labeled image dataset type; one of: {', '.join(choices)}", exit_code=2)
    return t


def parse_importer_args(items: Sequence[str]) -> dict[str, Any]:
    """``["split=train", "include_all_data=true"]`` → ``{"split": "train", "include_all_data": True}``.

    A value that parses as JSON (numbers, true/false, lists) is passed as that; anything else as
    the string.
    """
    import json

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.isidentifier():
            raise OdvgError(f"--arg {item!r}: expected KEY=VALUE (a keyword of FiftyOne's importer)", exit_code=2)
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def fiftyone_to_odvg(
    root: str | Path,
    type_name: str,
    *,
    classes: Sequence[str] | None = None,
    field: str | None = None,
    images_root: str | Path | None = None,
    skip_classes: Sequence[str] = (),
    importer_args: dict[str, Any] | None = None,
    problems: ProblemLog | None = None,
) -> tuple[Conversion, str]:
    """Load ``root`` with FiftyOne as ``type_name``; returns the conversion and the class-order source.

    Must run inside :func:`odvgkit.browse.app.database` (FiftyOne needs its database); the records
    must be consumed inside it too. Boxes of ``skip_classes`` (KITTI's ``DontCare`` regions, say)
    are counted and left out, and those classes are not in the label map. ``importer_args`` go to
    FiftyOne's importer (``split="train"`` for YOLOv5, ``labels_path=…``).
    """
    fo = require("fiftyone", "browse")
    root = Path(root)
    if not root.is_dir():
        raise OdvgError(f"{root}: not a directory (give the dataset folder FiftyOne's --type reads)")
    problems = problems if problems is not None else ProblemLog()
    kind = dataset_type(fo, type_name)
    name = f"odvgkit-import-{uuid.uuid4().hex}"
    try:
        # progress=False: FiftyOne draws its bar on stdout, where --json output goes
        ds = fo.Dataset.from_dir(dataset_dir=str(root), dataset_type=kind, name=name, persistent=False, progress=False,
                                   **(importer_args or {}))
    except OdvgError:
        raise
    except Exception as exc:  # FiftyOne's importers raise anything: one line naming the format
        raise OdvgError(f"{root}: FiftyOne could not read it as {type_name}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    try:
        if len(ds) == 0:  # an importer pointed at another format usually finds nothing: say so
            raise OdvgError(f"{root}: FiftyOne found no samples reading it as {type_name} (is that the format?)")
        det_fields = sorted(ds.get_field_schema(embedded_doc_type=fo.Detections))
        if field is None:
            if len(det_fields) != 1:
                raise OdvgError(f"{root}: {len(det_fields)} Detections fields ({', '.join(det_fields) or 'none'}); choose one with --field")
            field = det_fields[0]
        elif field not in det_fields:
            raise OdvgError(f"--field {field!r}: not a Detections field of this dataset ({', '.join(det_fields) or 'none'})")
        if classes is not None:
            names, source = list(classes), "--classes"
        else:
            declared = list(ds.classes.get(field) or ds.default_classes or [])
            if declared:
                names, source = declared, "the dataset's classes"
            else:
                names, source = sorted(ds.distinct(f"{field}.detections.label")), "sorted by name"
        names = [n for n in names if n not in set(skip_classes)]
    except BaseException:
        ds.delete()
        raise
    space = ClassSpace(names)
    stats: Counter[str] = Counter()
    img_root = Path(images_root) if images_root is not None else root
    conv = Conversion(
        records=_records(ds, field, space, frozenset(skip_classes), img_root, problems, stats),
        label_map=space.label_map(),
        stats=stats,
        total=len(ds),
    )
    return conv, source


def _records(
    ds: Any, field: str, space: ClassSpace, skip: frozenset[str], img_root: Path, problems: ProblemLog,
    stats: Counter[str],
) -> Iterator[dict[str, Any]]:
    try:
        view = ds.sort_by("filepath")
        for sample in view.iter_samples():
            stats["samples"] += 1
            rec = _record(sample, field, space, skip, img_root, problems, stats)
            if rec is not None:
                stats["images"] += 1
                stats["boxes"] += len(rec["detection"]["instances"])
                yield rec
    finally:
        ds.delete()


def _record(
    sample: Any, field: str, space: ClassSpace, skip: frozenset[str], img_root: Path, problems: ProblemLog,
    stats: Counter[str],
) -> dict[str, Any] | None:
    path = Path(sample.filepath)
    try:
        width, height = image_size(path)
    except OdvgError as exc:
        missing = str(exc).endswith("image not found")
        code = "image-not-found" if missing else "unreadable-image"
        problems.error(code, path, None, "filepath", "image not found" if missing else "unreadable image header")
        stats[f"images_skipped:{code}"] += 1
        return None
    try:
        filename = path.relative_to(img_root.resolve()).as_posix()
    except ValueError:
        try:
            filename = path.relative_to(img_root).as_posix()
        except ValueError:
            filename = path.as_posix()  # outside --images-root: an absolute path still loads
    labels = sample[field]
    instances = []
    for i, det in enumerate(labels.detections if labels is not None else []):
        where = f"{field}.detections[{i}]"
        if det.label in skip:
            stats[f"boxes_skipped:{det.label}"] += 1
            continue
        label = space.label(det.label, problems, path, where)
        if label is None:
            continue
        rel = det.bounding_box
        if rel is None or len(rel) != 4:
            problems.error("bad-bbox", path, where, "bounding_box", f"must be 4 numbers, got {rel!r}")
            continue
        x, y, w, h = (float(v) for v in rel)
        box = [round(x * width, _DIGITS), round(y * height, _DIGITS), round((x + w) * width, _DIGITS), round((y + h) * height, _DIGITS)]
        if not check_box(box, width, height, problems, path, where, "bounding_box"):
            continue
        instances.append({"bbox": box, "label": label, "category": space.names[label]})
    return {"filename": filename, "height": height, "width": width, "detection": {"instances": instances}}
