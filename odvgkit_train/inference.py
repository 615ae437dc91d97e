"""Load a trained Grounding DINO and turn its predictions into ODVG records with scores.

Prompts, all offline (mmdet's free-sentence path calls NLTK, whose data cannot be downloaded):

* a class list — ``"cat . dog"`` or ``["cat", "dog"]`` → OD record: ``detection.instances`` with
  ``label`` = index in the list, ``category`` and ``score``;
* ``"$: coco"`` (or ``lvis``, ``objects365v1``, ``objects365v2``, ``voc``, ``oid_v6``) → that
  dataset's class list, from mmdet;
* a caption with explicit ``tokens_positive`` (one list of ``[start, end)`` spans per phrase) →
  VG record: ``grounding.regions`` with ``phrase``, ``tokens_positive`` and ``score``;
* a caption alone → one phrase, the whole caption (a referring expression, mmdet's REC mode).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from odvgkit.errors import OdvgError
from odvgkit.tokenizer import MAX_TOKENS
from odvgkit_train.runtime import prepare

DATASET_PROMPTS = ("coco", "lvis", "objects365v1", "objects365v2", "voc", "oid_v6", "cityscapes")


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def expand_images(items: list[Path]) -> list[Path]:
    """Image files from files and folders (folders searched recursively, sorted); none found is an error."""
    out: list[Path] = []
    for item in items:
        if item.is_dir():
            out.extend(sorted(p for p in item.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES))
        elif item.is_file():
            out.append(item)
        else:
            raise OdvgError(f"{item}: no such image or folder")
    if not out:
        raise OdvgError("no images found")
    return out


def parse_prompt(texts: str | Sequence[str]) -> tuple[str, list[str] | None]:
    """``(caption, classes)``: classes is None for a free caption (REC / explicit spans)."""
    if not isinstance(texts, str):
        classes = [str(t).strip() for t in texts if str(t).strip()]
        if not classes:
            raise OdvgError("--texts: empty class list")
        return " . ".join(classes), classes
    text = texts.strip()
    if text.startswith("$:"):
        name = text[2:].strip().lower()
        from mmdet.evaluation import get_classes

        try:
            classes = list(get_classes(name))
        except ValueError:
            raise OdvgError(f"--texts '$: {name}': unknown dataset; choose one of {', '.join(DATASET_PROMPTS)}", 2) from None
        return " . ".join(classes), classes
    if " . " in f" {text} " or text.endswith(" ."):
        classes = [c.strip() for c in text.split(".") if c.strip()]
        return " . ".join(classes), classes
    return text, None


def prompt_tokens(classes: list[str], text_encoder: str | None) -> int:
    """Tokens of the class prompt as the model sees it ("a. b. c." + [CLS]/[SEP])."""
    from odvgkit.tokenizer import count_tokens

    caption = "".join(c.replace("_", " ").lower() + ". " for c in classes)
    return count_tokens([caption], text_encoder)[0]


def config_from_checkpoint(path: Path) -> Any | None:
    """The mmengine config a checkpoint was trained with (mmengine stores it in ``meta.cfg``), or None."""
    from mmengine.config import Config

    from odvgkit_train.checkpoint import read_checkpoint

    ckpt = read_checkpoint(path)
    text = (ckpt.get("meta") or {}).get("cfg") if isinstance(ckpt, dict) else None
    if not text:
        return None
    return Config.fromstring(text, ".py")


def given_config(config: str | Path | dict[str, Any] | None) -> Any | None:
    """``--config``/``config=``: a config file or dict as an mmengine ``Config`` (None when not given)."""
    from mmengine.config import Config

    if config is None:
        return None
    if isinstance(config, dict):
        return Config(config)
    if not Path(config).is_file():
        raise OdvgError(f"--config {config}: no such file", 2)
    return Config.fromfile(str(config))


def init_weights_quietly(net: Any) -> None:
    """``net.init_weights()`` with no download and without mmengine's per-parameter INFO report.

    ``Pretrained`` init configs (ImageNet backbones, fetched from a URL) are dropped: no network at
    run time, and a model without checkpoint is a from-scratch model by definition.
    """
    import logging

    from mmengine.logging import MMLogger

    for module in net.modules():
        cfgs = getattr(module, "init_cfg", None)
        if any(isinstance(c, dict) and c.get("type") == "Pretrained" for c in (cfgs if isinstance(cfgs, list) else [cfgs])):
            module.init_cfg = None
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        net.init_weights()
    finally:
        logger.setLevel(level)


def load_model(
    checkpoint: str | Path | None,
    *,
    config: str | Path | dict[str, Any] | None = None,
    model: str | None = None,
    text_encoder: str | Path | None = None,
    device: str = "cpu",
) -> Any:
    """Build Grounding DINO and load ``checkpoint`` strictly (mismatched keys → one-line error).

    The architecture comes from ``config`` (a config file or dict), else from the config mmengine
    stored in the checkpoint, else from the preset ``model``. ``text_encoder`` overrides the
    BERT directory recorded in the config (useful after moving a run to another machine).
    """
    prepare()
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config

    from odvgkit_train import checkpoint as ck
    from odvgkit_train import presets
    from odvgkit_train.config import test_pipeline
    from odvgkit_train.text_encoder import resolve

    register_all_modules(init_default_scope=True)
    ckpt_path = Path(checkpoint) if checkpoint is not None else None
    if ckpt_path is not None and not ckpt_path.is_file():
        raise OdvgError(f"{ckpt_path}: checkpoint not found")
    cfg = given_config(config)
    if cfg is None and model is not None:
        cfg = Config(dict(model=presets.model_config(model, str(resolve(text_encoder))), test_pipeline=test_pipeline(model)))
    elif cfg is None and ckpt_path is not None:
        cfg = config_from_checkpoint(ckpt_path)
        if cfg is None:
            raise OdvgError(f"{ckpt_path}: checkpoint carries no config; pass --model PRESET or --config FILE")
    if cfg is None:
        raise OdvgError("load_model needs a checkpoint, a config or a model preset")
    model_cfg = copy.deepcopy(cfg.model)
    if text_encoder is not None or not Path(str(model_cfg.language_model.name)).is_dir():
        enc = str(resolve(text_encoder))
        model_cfg.language_model.name = enc
    net = MODELS.build(model_cfg)
    if ckpt_path is not None:
        ck.load_strict(net, ckpt_path)
    else:
        # as mmengine's Runner does before training: some parameters (DeformableDETR's
        # ``level_embed``) are bare ``torch.Tensor`` allocations until ``init_weights`` fills them,
        # i.e. whatever the allocator's memory held — NaN scores on one machine, none on another
        init_weights_quietly(net)
    net.cfg = cfg
    net.to(device)
    net.eval()
    return net


def _pipeline(net: Any) -> Any:
    from mmcv.transforms import Compose

    from odvgkit_train.config import test_pipeline

    steps = net.cfg.get("test_pipeline") or test_pipeline("swin-t")
    steps = [s for s in copy.deepcopy(list(steps)) if s["type"] != "LoadAnnotations"]
    return Compose(steps)


def predict_one(net: Any, image: str | Path, caption: str, classes: list[str] | None,
                tokens_positive: list[list[list[int]]] | None, chunked_size: int = -1,
                caption_prompt: dict[str, dict[str, str]] | None = None) -> Any:
    """Raw mmdet ``pred_instances`` (boxes in original pixels) for one image.

    ``caption_prompt`` (class name → ``prefix``/``name``/``suffix``) is MMDetection's enhanced class
    prompt (ODinW configs), handed to the model as its own datasets do.
    """
    import torch

    net.test_cfg["chunked_size"] = chunked_size if classes is not None else -1
    data: dict[str, Any] = {"img_path": str(image), "img_id": 0}
    if classes is not None:
        data.update(text=list(classes), custom_entities=True)
    elif tokens_positive is not None:
        data.update(text=caption, custom_entities=False, tokens_positive=tokens_positive)
    else:
        data.update(text=caption, custom_entities=False, tokens_positive=-1)
    packed = _pipeline(net)(data)
    if caption_prompt and classes is not None:
        packed["data_samples"].set_metainfo({"caption_prompt": caption_prompt})
    batch = {"inputs": [packed["inputs"]], "data_samples": [packed["data_samples"]]}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = net.test_step(batch)
    return out[0].pred_instances


def to_record(image: Path, root: Path | None, pred: Any, caption: str, classes: list[str] | None,
              tokens_positive: list[list[list[int]]] | None, score_thr: float) -> dict[str, Any]:
    from odvgkit.images import image_size

    w, h = image_size(image)
    name = str(image.relative_to(root)) if root is not None else image.name
    boxes = pred.bboxes.cpu().tolist()
    scores = pred.scores.cpu().tolist()
    labels = pred.labels.cpu().tolist()
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    order = [i for i in order if scores[i] >= score_thr]
    rec: dict[str, Any] = {"filename": name, "height": h, "width": w}
    if classes is not None:
        rec["detection"] = {
            "instances": [
                {"bbox": [round(v, 2) for v in boxes[i]], "label": int(labels[i]), "category": classes[labels[i]],
                 "score": round(float(scores[i]), 5)}
                for i in order
                if 0 <= labels[i] < len(classes)
            ]
        }
        return rec
    spans = tokens_positive if tokens_positive is not None else [[[0, len(caption)]]]
    regions = []
    for i in order:
        lab = int(labels[i]) if tokens_positive is not None else 0
        if not 0 <= lab < len(spans):
            continue
        phrase = " ".join(caption[s:e] for s, e in spans[lab])
        regions.append({"bbox": [round(v, 2) for v in boxes[i]], "phrase": phrase, "tokens_positive": spans[lab],
                        "score": round(float(scores[i]), 5)})
    rec["grounding"] = {"caption": caption, "regions": regions}
    return rec


def infer(
    images: Sequence[str | Path],
    checkpoint: str | Path | Any,
    texts: str | Sequence[str],
    *,
    tokens_positive: list[list[list[int]]] | None = None,
    chunked_size: int = -1,
    score_thr: float = 0.3,
    image_root: str | Path | None = None,
    text_encoder: str | Path | None = None,
    model: str | None = None,
    on_image: Any = None,
    warn: Any = None,
) -> list[dict[str, Any]]:
    """Predict every image; returns one ODVG record per image, boxes sorted by score."""
    net = checkpoint if hasattr(checkpoint, "test_step") else load_model(checkpoint, model=model, text_encoder=text_encoder)
    caption, classes = parse_prompt(texts)
    if tokens_positive is not None:
        if classes is not None and not isinstance(texts, str):
            raise OdvgError("--tokens-positive goes with a caption, not a class list")
        classes = None
        caption = texts if isinstance(texts, str) else caption
        for spans in tokens_positive:
            for s, e in spans:
                if not 0 <= s < e <= len(caption):
                    raise OdvgError(f"--tokens-positive span [{s}, {e}] is outside the caption ({len(caption)} characters)")
    if classes is not None and chunked_size <= 0:
        n = prompt_tokens(classes, str(net.cfg.model.language_model.name))
        if n > MAX_TOKENS and warn is not None:
            warn(f"the prompt of {len(classes)} classes is {n} tokens, over the {MAX_TOKENS}-token limit: classes past "
                 "the limit are never predicted; use --chunked-size N (e.g. 40) to prompt in chunks")
    root = Path(image_root) if image_root else None
    out = []
    for image in images:
        p = Path(image)
        if not p.is_file():
            raise OdvgError(f"{p}: image not found")
        pred = predict_one(net, p, caption, classes, tokens_positive, chunked_size)
        out.append(to_record(p, root, pred, caption, classes, tokens_positive, score_thr))
        if on_image is not None:
            on_image(1)
    return out
