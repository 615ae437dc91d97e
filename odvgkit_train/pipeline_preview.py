"""What the training dataloader really feeds the model (``odvgkit browse pipeline``).

MMDetection's ``tools/analysis_tools/browse_dataset.py`` runs a dataset's pipeline and draws the
result. This goes one step further: it builds the *training dataloader* of a config exactly as
mmengine's Runner does (``Runner.build_dataloader``: the config's sampler, batch sampler and workers,
seeded like training), and draws the first N samples in the order training would see them, after
augmentation — pixels as loaded and augmented (BGR shown as RGB), before the data preprocessor
normalises them and pads the batch. For Grounding DINO each sample's text prompt is drawn under the
image with the ``tokens_positive`` span of every box in the box's colour, which is where a wrong
``metainfo``, a label map off by one or a prompt bug shows before a day of training.

Outputs, written together or not at all: ``NNNN.png`` per sample and ``samples.jsonl`` (one line per
sample: source image, shapes, flip, prompt, and every box with its label, name/phrase and spans).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from odvgkit.errors import OdvgError


@dataclass
class Sample:
    """One training sample as the dataloader yields it."""

    index: int
    image: np.ndarray  # RGB uint8 (h, w, 3): the augmented image tensor
    boxes: list[list[float]]
    labels: list[int]
    names: list[str]  # class name (closed set) or the prompt text each box points at
    spans: list[list[list[int]]]  # tokens_positive of each box ([] without a prompt)
    text: str | None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class PreviewStats:
    samples: int = 0
    boxes: int = 0
    boxes_outside: int = 0  # boxes reaching past the augmented image's borders
    with_prompt: int = 0
    written: list[Path] = field(default_factory=list)


def config_path(config_or_work_dir: str | Path) -> Path:
    """The config file: the argument itself, or ``config.py`` in a work dir written by ``odvgkit train``."""
    p = Path(config_or_work_dir)
    if p.is_dir():
        cfg = p / "config.py"
        if not cfg.is_file():
            others = sorted(q.name for q in p.glob("*.py"))
            hint = f" (found {', '.join(others[:3])}: pass one of them)" if others else ""
            raise OdvgError(f"{p}: no config.py in this work dir{hint}; give the config written by 'odvgkit train …'")
        return cfg
    if not p.is_file():
        raise OdvgError(f"{p}: no such config file or work dir")
    return p


def load_config(config_or_work_dir: str | Path) -> Any:
    """The mmengine config (custom imports done), with a one-line error for anything unusable."""
    from odvgkit_train.api import prepare

    prepare()
    from mmengine.config import Config

    path = config_path(config_or_work_dir)
    try:
        cfg = Config.fromfile(str(path))
    except Exception as exc:
        raise OdvgError(f"{path}: not a readable mmengine config ({_first_line(exc)})") from None
    if not cfg.get("train_dataloader"):
        raise OdvgError(f"{path}: train_dataloader: missing (the config trains nothing to preview)")
    return cfg


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def build_dataloader(cfg: Any, seed: int | None = None, num_workers: int | None = None) -> Any:
    """The config's training dataloader, built and seeded as the Runner builds it."""
    from mmdet.utils import register_all_modules
    from mmengine.runner import Runner, set_random_seed

    register_all_modules(init_default_scope=True)
    if seed is None:
        seed = int((cfg.get("randomness") or {}).get("seed") or 0)
    dl_cfg = copy.deepcopy(cfg.train_dataloader)
    if num_workers is not None:
        dl_cfg["num_workers"] = num_workers
    if not dl_cfg.get("num_workers"):
        dl_cfg["persistent_workers"] = False
    set_random_seed(seed)
    try:
        return Runner.build_dataloader(dl_cfg, seed=seed)
    except OdvgError:
        raise
    except Exception as exc:
        raise OdvgError(f"{cfg.filename}: train_dataloader: cannot build it ({_first_line(exc)})") from None


def _class_names(dataloader: Any) -> list[str] | None:
    meta = getattr(dataloader.dataset, "metainfo", None) or {}
    names = meta.get("classes")
    return [str(n) for n in names] if names else None


def samples(cfg: Any, n: int, seed: int | None = None, num_workers: int | None = None) -> Iterator[Sample]:
    """The first ``n`` samples of the training dataloader, in training order."""
    dl = build_dataloader(cfg, seed, num_workers)
    classes = _class_names(dl)
    index = 0
    batches = iter(dl)
    while index < n:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except OdvgError:
            raise
        except Exception as exc:  # a transform or a record failed: say which config, keep it one line
            raise OdvgError(f"{cfg.filename}: the training pipeline failed ({_first_line(exc)})") from None
        for inputs, ds in zip(batch["inputs"], batch["data_samples"], strict=True):
            if index >= n:
                return
            yield _sample(index, inputs, ds, classes)
            index += 1


def _sample(index: int, inputs: Any, ds: Any, classes: list[str] | None) -> Sample:
    import torch

    meta = dict(ds.metainfo)
    img = inputs.detach().cpu()
    if img.dtype.is_floating_point:
        img = img.clamp(0, 255).round()
    arr = img.to(dtype=torch.uint8).permute(1, 2, 0).numpy()
    if arr.shape[2] == 3:
        arr = arr[..., ::-1]  # mmcv loads BGR; the data preprocessor converts later
    gt = ds.gt_instances
    raw = gt.bboxes if "bboxes" in gt else None
    raw = getattr(raw, "tensor", raw)  # mmdet box types (HorizontalBoxes) hold a tensor
    boxes = [[round(float(v), 2) for v in b] for b in raw.tolist()] if raw is not None else []
    labels = [int(v) for v in gt.labels.tolist()] if "labels" in gt else []
    text = meta.get("text")
    positive = meta.get("tokens_positive")
    names: list[str] = []
    spans: list[list[list[int]]] = []
    for lab in labels:
        if isinstance(text, str) and isinstance(positive, dict) and lab in positive:
            sp = [[int(s), int(e)] for s, e in positive[lab]]
            spans.append(sp)
            names.append(" ".join(text[s:e] for s, e in sp))
        elif isinstance(text, (list, tuple)) and 0 <= lab < len(text):
            spans.append([])
            names.append(str(text[lab]))
        elif isinstance(text, dict) and (str(lab) in text or lab in text):  # ODVGDataset's label map (closed set)
            spans.append([])
            names.append(str(text.get(str(lab), text.get(lab))))
        else:
            spans.append([])
            names.append(classes[lab] if classes and 0 <= lab < len(classes) else f"label {lab}")
    keep = ("img_path", "img_id", "ori_shape", "img_shape", "scale_factor", "flip", "flip_direction", "dataset_mode")
    info = {k: _plain(meta[k]) for k in keep if k in meta}
    prompt = text if isinstance(text, str) else " . ".join(map(str, text)) if isinstance(text, (list, tuple)) else None
    return Sample(index, np.ascontiguousarray(arr), boxes, labels, names, spans, prompt, info)


def _plain(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    return v


def draw(sample: Sample) -> Any:
    """The augmented image at its own size with the boxes, and the prompt with spans underneath."""
    from PIL import Image

    from odvgkit.browse.draw import panel
    from odvgkit.browse.scene import DrawBox, DrawSpan, Scene, color_of

    scene = Scene(
        boxes=[DrawBox(tuple(b), name, color_of(lab))  # type: ignore[arg-type]
               for b, lab, name in zip(sample.boxes, sample.labels, sample.names, strict=True)],
        caption=sample.text,
        spans=[DrawSpan(s, e, color_of(lab)) for lab, sp in zip(sample.labels, sample.spans, strict=True) for s, e in sp],
    )
    src = Path(str(sample.meta.get("img_path", "?"))).name
    flip = f" flip={sample.meta.get('flip_direction')}" if sample.meta.get("flip") else ""
    title = f"#{sample.index} {src} {tuple(sample.image.shape[:2])}{flip}"
    return panel(Image.fromarray(sample.image), scene, title)


def preview(
    config_or_work_dir: str | Path,
    out_dir: str | Path,
    n: int = 8,
    *,
    seed: int | None = None,
    num_workers: int | None = None,
    advance: Callable[[int], None] | None = None,
) -> PreviewStats:
    """Draw the first ``n`` training samples into ``out_dir`` (PNG per sample + ``samples.jsonl``)."""
    from odvgkit.io import AtomicGroup, record_writer

    if n < 1:
        raise OdvgError("-n must be ≥ 1", 2)
    cfg = load_config(config_or_work_dir)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OdvgError(f"{out}: exists and is not a folder")
    stats = PreviewStats()
    with AtomicGroup() as group, record_writer(group, out / "samples.jsonl") as manifest:
        for s in samples(cfg, n, seed, num_workers):
            name = f"{s.index:04d}.png"
            with open(group.path(out / name), "wb") as fh:
                draw(s).save(fh, format="PNG")
            h, w = s.image.shape[:2]
            outside = sum(1 for x1, y1, x2, y2 in s.boxes if x1 < -0.5 or y1 < -0.5 or x2 > w + 0.5 or y2 > h + 0.5)
            manifest.write({
                "index": s.index, "file": name, **s.meta, "input_shape": [h, w], "text": s.text,
                "boxes": [{"bbox": b, "label": lab, "name": nm, "tokens_positive": sp}
                          for b, lab, nm, sp in zip(s.boxes, s.labels, s.names, s.spans, strict=True)],
            })
            stats.samples += 1
            stats.boxes += len(s.boxes)
            stats.boxes_outside += outside
            stats.with_prompt += s.text is not None
            stats.written.append(out / name)
            if advance is not None:
                advance(1)
    return stats
