"""Look inside a trained detector: feature-map overlays and box activation maps (``odvgkit explain``).

What MMDetection's tutorial borrows from MMYOLO's ``demo/featmap_vis_demo.py`` and
``demo/boxam_vis_demo.py``, for the two model families odvgkit trains — a closed-set detector
(RTMDet, or any mmdet single-stage detector) and Grounding DINO (which needs a text prompt):

* :func:`featmaps` — the output of named layers (``backbone``, ``neck``, ``backbone.stage4``,
  ``neck.out_convs[2]``, Grounding DINO's ``encoder``…) for one image, each level drawn over the
  image with mmengine's ``Visualizer.draw_featmap`` (``squeeze_mean``, ``select_max``, or the top-k
  channels in a grid). A transformer layer's token sequence is reshaped to one map per feature
  level (the ``spatial_shapes`` it was called with; Swin stages return their own ``hw_shape``).
* :func:`boxam` — one activation map for the predicted boxes: Grad-CAM / Grad-CAM++ weigh the
  target layer's channels by the gradient of the predicted boxes' scores (so they work for both
  families, Grounding DINO in eval mode included); EigenCAM is grad-free (first principal component
  of the activations).

The hooks are odvgkit's own (a forward hook on each target layer that keeps its output, and
``torch.autograd.grad`` of the box scores with respect to it), not the ``grad-cam`` package MMYOLO
uses: MMYOLO cannot be installed beside mmdet 3.3 (it pins mmdet < 3.1), ``grad-cam`` ≥ 1.5 dropped
the ``use_cuda`` argument MMYOLO passes, and ``grad-cam`` needs torchvision, which does not import
beside the CPU torch wheel of the ``train`` extra (checked: ``import pytorch_grad_cam`` fails here).

Differences from MMYOLO, and why (also in docs/deviations.md):

* The gradient target is the sum of the *scores* of the explained boxes (those at or above
  ``score_thr``; the best box when none is), not MMYOLO's detection *loss* with the predictions as
  ground truth: Grad-CAM weighs channels by how much they raise the target, and a loss rises where
  the evidence for the box is weakest. Scores also exist for Grounding DINO without a loss.
* EigenCAM's principal component has no sign of its own; it is oriented so that it correlates
  positively with the channel-mean activation (MMYOLO keeps whatever sign the SVD returns, so the
  map can come out inverted).
* Maps are cut to the part of the padded batch tensor that holds the image before being resized to
  the original image, so a padded border never shifts or stretches them.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import math
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from odvgkit.errors import OdvgError

METHODS = ("gradcam", "gradcam++", "eigencam")
REDUCTIONS = ("squeeze_mean", "select_max", "none")
GDINO = "grounding-dino"
DETECTOR = "detector"


@dataclass
class Loaded:
    """A model ready to explain: the network, its family, class names and test pipeline."""

    net: Any
    family: str  # GDINO | DETECTOR
    model_type: str  # the config's model type, e.g. "RTMDet", "GroundingDINO"
    checkpoint: Path | None
    classes: list[str] | None = None
    pipeline: Any = None


@dataclass
class Prepared:
    """One image through the test pipeline and the data preprocessor."""

    inputs: Any  # (1, 3, H, W) normalised, padded tensor
    data_samples: list[Any]
    image: np.ndarray  # the original image, RGB uint8 (H, W, 3)
    caption: str | None = None
    classes: list[str] | None = None


@dataclass
class FeatureMap:
    """One spatial map a target layer produced: ``label`` like ``neck[1]`` or ``encoder level 2``."""

    label: str
    tensor: Any  # (C, h, w), cut to the image's part of the padded input
    panel: np.ndarray | None = None  # RGB uint8, drawn


@dataclass
class BoxAM:
    heat: np.ndarray  # (H, W) float32 in [0, 1] at the original image size
    boxes: list[list[float]] = field(default_factory=list)  # explained boxes, original pixels
    labels: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    fallback_top1: bool = False  # no box reached score_thr; the best one was explained
    image: np.ndarray | None = None  # the overlay (RGB uint8)


# --------------------------------------------------------------------------------------- loading


def _config_of(checkpoint: Path | None, config: str | Path | None) -> Any:
    from mmengine.config import Config

    from odvgkit_train.inference import config_from_checkpoint

    if config is not None:
        p = Path(config)
        if not p.is_file():
            raise OdvgError(f"{p}: config not found")
        try:
            return Config.fromfile(str(p))
        except Exception as exc:  # a config that does not parse is a user mistake
            raise OdvgError(f"{p}: cannot read config ({_first_line(exc)})") from None
    if checkpoint is None:
        raise OdvgError("give --checkpoint (and --config when the checkpoint carries none)")
    cfg = config_from_checkpoint(checkpoint)
    if cfg is None:
        raise OdvgError(f"{checkpoint}: checkpoint carries no config; pass --config FILE")
    return cfg


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def family_of(model_type: str) -> str:
    return GDINO if "grounding" in model_type.lower() or model_type.upper() == "GLIP" else DETECTOR


def load(
    checkpoint: str | Path | None,
    *,
    config: str | Path | None = None,
    text_encoder: str | Path | None = None,
    device: str = "cpu",
) -> Loaded:
    """Build the model of ``config`` (or the config stored in ``checkpoint``) and load it strictly."""
    from odvgkit_train.api import prepare

    prepare()
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules

    from odvgkit_train import checkpoint as ck

    register_all_modules(init_default_scope=True)
    ckpt = Path(checkpoint) if checkpoint is not None else None
    if ckpt is not None and not ckpt.is_file():
        raise OdvgError(f"{ckpt}: checkpoint not found")
    cfg = _config_of(ckpt, config)
    if "model" not in cfg:
        raise OdvgError(f"{config or ckpt}: the config has no model")
    model_type = str(cfg.model.get("type", "?"))
    if family_of(model_type) == GDINO:
        from odvgkit_train.inference import _pipeline, load_model

        net = load_model(ckpt, config=cfg.to_dict() if config is None else config, text_encoder=text_encoder, device=device)
        return Loaded(net, GDINO, model_type, ckpt, None, _pipeline(net))
    model_cfg = copy.deepcopy(cfg.model)
    backbone = model_cfg.get("backbone")
    if isinstance(backbone, dict) and backbone.get("init_cfg"):
        backbone["init_cfg"] = None  # never download pretrained weights: the checkpoint has them
    net = MODELS.build(model_cfg)
    meta: dict[str, Any] = {}
    if ckpt is not None:
        raw = ck.read_checkpoint(ckpt)
        meta = raw.get("meta") or {}
        state = raw.get("state_dict", raw.get("model", raw))
        state = {k.removeprefix("module."): v for k, v in state.items()}
        diff = ck.compare_keys(net.state_dict(), state)
        if any(diff.values()):  # e.g. --config of another model than the checkpoint's
            raise OdvgError(ck.describe_mismatch(ckpt, diff).replace("check --model / --text-encoder", "check --config"))
        net.load_state_dict(state, strict=True)
    else:
        from odvgkit_train.inference import init_weights_quietly

        init_weights_quietly(net)  # a config alone: defined weights, as the Runner gives them
    net.cfg = cfg
    net.to(device)
    net.eval()
    return Loaded(net, DETECTOR, model_type, ckpt, _class_names(cfg, meta), _detector_pipeline(cfg))


def _class_names(cfg: Any, meta: dict[str, Any]) -> list[str] | None:
    """Class names from the checkpoint's ``dataset_meta``, else the config's dataset metainfo."""
    ds_meta = meta.get("dataset_meta") or {}
    names = ds_meta.get("classes") or ds_meta.get("CLASSES")
    if not names:
        for key in ("train_dataloader", "val_dataloader", "test_dataloader"):
            ds = (cfg.get(key) or {}).get("dataset") or {}
            names = (ds.get("metainfo") or {}).get("classes")
            if names:
                break
    if not names:
        names = (cfg.get("metainfo") or {}).get("classes")
    return [str(n) for n in names] if names else None


def _detector_pipeline(cfg: Any) -> Any:
    from mmcv.transforms import Compose

    steps = cfg.get("test_pipeline")
    if not steps:
        steps = ((cfg.get("test_dataloader") or {}).get("dataset") or {}).get("pipeline")
    if not steps:  # mmdet's RTMDet test pipeline (640 px square, grey padding)
        steps = [
            dict(type="LoadImageFromFile", backend_args=None),
            dict(type="Resize", scale=(640, 640), keep_ratio=True),
            dict(type="Pad", size=(640, 640), pad_val=dict(img=(114, 114, 114))),
            dict(type="PackDetInputs", meta_keys=("img_id", "img_path", "ori_shape", "img_shape", "scale_factor")),
        ]
    steps = [s for s in copy.deepcopy(list(steps)) if not str(s["type"]).endswith("LoadAnnotations")]
    return Compose(steps)


def check_texts(loaded: Loaded, texts: str | Sequence[str] | None) -> None:
    """A Grounding DINO needs a prompt; a closed-set detector must not get one (it would be ignored)."""
    name = loaded.checkpoint or "the model"
    if loaded.family == GDINO and not texts:
        raise OdvgError(f"{name}: a Grounding DINO checkpoint ({loaded.model_type}) needs --texts: "
                        "a class list 'cat . dog', '$: coco', or a caption", 2)
    if loaded.family == DETECTOR and texts:
        raise OdvgError(f"{name}: {loaded.model_type} is a closed-set detector with fixed classes; --texts is only "
                        "for Grounding DINO checkpoints: drop it", 2)


def read_image(path: str | Path) -> np.ndarray:
    """The image as RGB uint8 (EXIF orientation applied, as mmcv's loaders do), or a one-line error."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    p = Path(path)
    if not p.is_file():
        raise OdvgError(f"{p}: image not found")
    try:
        with Image.open(p) as im:
            im.load()
            rgb = ImageOps.exif_transpose(im).convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise OdvgError(f"{p}: image does not decode ({_first_line(exc)})") from None
    return np.asarray(rgb, dtype=np.uint8)


def prepare_image(loaded: Loaded, image: str | Path, texts: str | Sequence[str] | None = None) -> Prepared:
    """Run the image (and prompt) through the model's test pipeline and data preprocessor."""
    check_texts(loaded, texts)
    rgb = read_image(image)
    data: dict[str, Any] = {"img_path": str(image), "img_id": 0}
    caption = classes = None
    if loaded.family == GDINO:
        from odvgkit_train.inference import parse_prompt

        caption, classes = parse_prompt(texts)  # type: ignore[arg-type]
        loaded.net.test_cfg["chunked_size"] = -1
        if classes is not None:
            data.update(text=list(classes), custom_entities=True)
        else:
            data.update(text=caption, custom_entities=False, tokens_positive=-1)
    try:
        packed = loaded.pipeline(data)
    except OdvgError:
        raise
    except Exception as exc:
        raise OdvgError(f"{image}: the test pipeline failed ({_first_line(exc)})") from None
    batch = loaded.net.data_preprocessor({"inputs": [packed["inputs"]], "data_samples": [packed["data_samples"]]}, False)
    # Grounding DINO: a caption alone is one phrase, the whole caption (label 0)
    names = loaded.classes if loaded.family != GDINO else (classes if classes is not None else [caption])
    return Prepared(batch["inputs"], batch["data_samples"], rgb, caption, names)


# ---------------------------------------------------------------------------------------- layers


def _canonical(name: str) -> str:
    """``neck.out_convs[2]`` → ``neck.out_convs.2`` (the ``named_modules`` spelling)."""
    return re.sub(r"\[(\d+)\]", r".\1", name.strip()).strip(".")


def _display(name: str) -> str:
    """``neck.out_convs.2`` → ``neck.out_convs[2]`` (how MMYOLO's tools spell layers)."""
    return re.sub(r"\.(\d+)(?=\.|$)", r"[\1]", name)


def layer_names(net: Any) -> list[tuple[str, str]]:
    """``(name, class)`` of every module, in ``neck.out_convs[2]`` spelling (``--preview-model``)."""
    return [(_display(n), type(m).__name__) for n, m in net.named_modules() if n]


def resolve_layers(net: Any, names: Sequence[str], family: str) -> list[tuple[str, Any]]:
    """The modules named; an unknown name is a one-line error listing the closest real names."""
    modules = dict(net.named_modules())
    out = []
    for raw in names:
        key = _canonical(raw)
        if key in modules and key:
            out.append((raw, modules[key]))
            continue
        close = difflib.get_close_matches(key, [n for n in modules if n], n=5, cutoff=0.6)
        hint = f"close matches: {', '.join(_display(c) for c in close)}" if close else "no close match"
        kind = "Grounding DINO" if family == GDINO else type(net).__name__
        raise OdvgError(f"--target-layer {raw!r}: no such layer in this {kind} model; {hint} "
                        "(--preview-model lists them all)", 2)
    return out


class _Capture:
    """Forward hooks that keep each target layer's output and the keyword arguments it was called with."""

    def __init__(self, layers: list[tuple[str, Any]]) -> None:
        self.outputs: dict[str, list[tuple[Any, dict[str, Any]]]] = {name: [] for name, _ in layers}
        self.handles = [module.register_forward_hook(self._hook(name), with_kwargs=True) for name, module in layers]

    def _hook(self, name: str) -> Any:
        def hook(_module: Any, _args: Any, kwargs: dict[str, Any], output: Any) -> None:
            self.outputs[name].append((output, dict(kwargs)))

        return hook

    def close(self) -> None:
        for h in self.handles:
            h.remove()

    def __enter__(self) -> _Capture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _tensors(obj: Any) -> list[Any]:
    import torch

    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [t for o in obj for t in _tensors(o)]
    if isinstance(obj, dict):
        return [t for o in obj.values() for t in _tensors(o)]
    return []


def _substitute(obj: Any, table: dict[int, Any]) -> Any:
    """The same structure with each tensor replaced by ``table[id(tensor)]`` (e.g. its gradient)."""
    import torch

    if isinstance(obj, torch.Tensor):
        return table.get(id(obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(_substitute(o, table) for o in obj) if not hasattr(obj, "_fields") else [_substitute(o, table) for o in obj]
    if isinstance(obj, dict):
        return {k: _substitute(v, table) for k, v in obj.items()}
    return obj


def _is_hw(v: Any) -> bool:
    return isinstance(v, (tuple, list)) and len(v) == 2 and all(isinstance(x, int) for x in v)


def spatial_maps(output: Any, kwargs: dict[str, Any], label: str) -> list[tuple[str, Any]]:
    """Every (B, C, h, w) map in a layer's output.

    4-D tensors are maps already. A (B, N, C) token sequence becomes maps when the layer was called
    with ``spatial_shapes`` summing to N (deformable/Grounding-DINO encoders: one map per level),
    or when it is followed by its ``(h, w)`` in a tuple (Swin stages).
    """
    import torch

    out: list[tuple[str, Any]] = []
    if isinstance(output, torch.Tensor):
        if output.dim() == 4:
            out.append((label, output))
        elif output.dim() == 3:
            shapes = kwargs.get("spatial_shapes")
            if isinstance(shapes, torch.Tensor) and shapes.dim() == 2 and shapes.shape[1] == 2:
                hw = [(int(h), int(w)) for h, w in shapes.tolist()]
                if sum(h * w for h, w in hw) == output.shape[1]:
                    start = 0
                    for lvl, (h, w) in enumerate(hw):
                        part = output[:, start:start + h * w].transpose(1, 2).reshape(output.shape[0], -1, h, w)
                        out.append((f"{label} level {lvl}", part))
                        start += h * w
        return out
    if isinstance(output, (list, tuple)):
        items = list(output)
        i = 0
        while i < len(items):
            item = items[i]
            sub = f"{label}[{i}]" if len(items) > 1 else label
            if (isinstance(item, torch.Tensor) and item.dim() == 3 and i + 1 < len(items) and _is_hw(items[i + 1])
                    and items[i + 1][0] * items[i + 1][1] == item.shape[1]):
                h, w = items[i + 1]
                out.append((sub, item.transpose(1, 2).reshape(item.shape[0], -1, h, w)))
                i += 2
                continue
            out.extend(spatial_maps(item, kwargs, sub))
            i += 1
    return out


def _crop(t: Any, prepared: Prepared) -> Any:
    """Cut a (C, h, w) map to the part of the padded batch input that holds the image."""
    meta = prepared.data_samples[0].metainfo
    ph, pw = prepared.inputs.shape[-2:]
    ih, iw = meta.get("img_shape", (ph, pw))[:2]
    h, w = t.shape[-2:]
    return t[..., : max(1, min(h, math.ceil(h * ih / ph))), : max(1, min(w, math.ceil(w * iw / pw)))]


def _captured_maps(cap: _Capture, layers: list[tuple[str, Any]]) -> list[tuple[str, Any, Any]]:
    """``(label, output structure, kwargs)`` per call; a layer called more than once is numbered."""
    rows = []
    for name, _ in layers:
        calls = cap.outputs[name]
        if not calls:
            raise OdvgError(f"--target-layer {name!r}: the layer is not used when predicting (it never ran)", 2)
        for k, (out, kwargs) in enumerate(calls):
            rows.append((name if len(calls) == 1 else f"{name} call {k}", out, kwargs))
    return rows


def _no_maps_error(name: str, output: Any) -> OdvgError:
    shapes = ", ".join(str(tuple(t.shape)) for t in _tensors(output)[:4]) or type(output).__name__
    return OdvgError(f"--target-layer {name!r}: its output ({shapes}) is not a spatial feature map; "
                     "choose a convolutional stage, neck level or encoder", 2)


# ------------------------------------------------------------------------------------- forwards


def _run_model(loaded: Loaded, prepared: Prepared, *, grad: bool, predict: bool) -> Any:
    """Predict (boxes after NMS, original pixels) or only run the network forward (no NMS)."""
    import torch

    net = loaded.net
    ctx = torch.enable_grad() if grad else torch.no_grad()
    from odvgkit_train._ext_shim import MissingKernelError

    with ctx, warnings.catch_warnings(), _keep_head_grad(net if grad and loaded.family == DETECTOR else None):
        warnings.simplefilter("ignore")
        try:
            if predict or loaded.family == GDINO:
                return net.predict(prepared.inputs, prepared.data_samples, rescale=True)
            return net._forward(prepared.inputs, prepared.data_samples)
        except MissingKernelError as exc:  # e.g. NMS with mmcv-lite: one line with the fix, no traceback
            raise OdvgError(_first_line(exc)) from None


@contextlib.contextmanager
def _keep_head_grad(net: Any) -> Iterator[None]:
    """Let the box scores of a dense head's ``predict_by_feat`` keep their gradient.

    mmdet's dense heads detach the per-level outputs before decoding and NMS
    (``select_single_mlvl(..., detach=True)``); everything after is indexing, so with the detach
    turned off the kept scores stay differentiable with respect to the features. Only for the
    duration of one explained prediction.
    """
    import sys

    head = getattr(net, "bbox_head", None) if net is not None else None
    module = sys.modules.get(getattr(getattr(type(head), "predict_by_feat", None), "__module__", "") or "")
    original = getattr(module, "select_single_mlvl", None) if module is not None else None
    if original is None:
        yield
        return

    def undetached(mlvl_tensors: Any, batch_id: int, detach: bool = True) -> Any:
        return original(mlvl_tensors, batch_id, detach=False)

    module.select_single_mlvl = undetached  # type: ignore[union-attr]
    try:
        yield
    finally:
        module.select_single_mlvl = original  # type: ignore[union-attr]


def featmaps(
    loaded: Loaded,
    image: str | Path,
    target_layers: Sequence[str],
    *,
    texts: str | Sequence[str] | None = None,
    channel_reduction: str = "select_max",
    topk: int = 4,
    arrangement: tuple[int, int] = (2, 2),
    alpha: float = 0.5,
) -> list[FeatureMap]:
    """One drawn panel per spatial map of each target layer (see the module docstring)."""
    reduction = _reduction(channel_reduction)
    if reduction is None and topk > 0 and arrangement[0] * arrangement[1] < topk:
        raise OdvgError(f"--arrangement {arrangement[0]} {arrangement[1]} has fewer cells than --topk {topk}", 2)
    if arrangement[0] < 1 or arrangement[1] < 1:
        raise OdvgError("--arrangement ROWS COLS must both be ≥ 1", 2)
    prepared = prepare_image(loaded, image, texts)
    layers = resolve_layers(loaded.net, target_layers, loaded.family)
    with _Capture(layers) as cap:
        _run_model(loaded, prepared, grad=False, predict=False)
    maps: list[FeatureMap] = []
    for name, out, kwargs in _captured_maps(cap, layers):
        found = spatial_maps(out, kwargs, name)
        if not found:
            raise _no_maps_error(name, out)
        maps.extend(FeatureMap(label, _crop(t[0].detach().float(), prepared)) for label, t in found)
    for fm in maps:
        if reduction is None and topk <= 0 and fm.tensor.shape[0] not in (1, 3):
            raise OdvgError(f"--channel-reduction none --topk 0 draws a 1- or 3-channel map, but {fm.label} has "
                            f"{fm.tensor.shape[0]} channels; use --topk K or a reduction", 2)
        fm.panel = draw_featmap(fm.tensor, prepared.image, reduction, topk, arrangement, alpha)
    return maps


def _reduction(name: str) -> str | None:
    if name not in REDUCTIONS:
        raise OdvgError(f"--channel-reduction {name!r}: choose one of {', '.join(REDUCTIONS)}", 2)
    return None if name == "none" else name


def draw_featmap(t: Any, image: np.ndarray, reduction: str | None, topk: int, arrangement: tuple[int, int],
                 alpha: float = 0.5) -> np.ndarray:
    """mmengine's ``Visualizer.draw_featmap`` at the image's size (a top-k grid is rows×H by cols×W)."""
    import matplotlib

    matplotlib.use("Agg")
    from mmengine.visualization import Visualizer

    h, w = image.shape[:2]
    if reduction == "squeeze_mean":  # bilinear resizing is linear: mean-then-resize = resize-then-mean
        t = t.mean(dim=0, keepdim=True)
    elif reduction == "select_max":  # the same channel mmengine picks, without resizing all of them
        t = t[int(_resized_sums(t, (h, w)).argmax()):][:1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        drawn = Visualizer.draw_featmap(t, image, channel_reduction=reduction, topk=topk, arrangement=arrangement,
                                        alpha=alpha)
    if reduction is None and topk > 0:
        want = (h * arrangement[0], w * arrangement[1])
        if drawn.shape[:2] != want:  # matplotlib's canvas can be a pixel off
            from PIL import Image

            drawn = np.asarray(Image.fromarray(drawn).resize((want[1], want[0]), Image.BILINEAR))
    return np.ascontiguousarray(drawn[..., :3], dtype=np.uint8)


def _resized_sums(t: Any, size: tuple[int, int]) -> Any:
    """Per-channel sums of ``t`` (C, h, w) after bilinear resizing to ``size``, without resizing it.

    ``Visualizer.draw_featmap`` resizes every channel to the image before ``select_max`` sums them
    (hundreds of full-size maps). Resizing is linear, so each sum is ``rowsᵀ · X · cols`` where
    ``rows``/``cols`` say how much each input row/column contributes to the resized map.
    """
    import torch
    import torch.nn.functional as F

    def weights(n_in: int, n_out: int) -> Any:
        eye = torch.eye(n_in, dtype=t.dtype)[:, None, :, None]  # one input row lit per batch item
        return F.interpolate(eye, size=(n_out, 1), mode="bilinear", align_corners=False).sum(dim=(1, 2, 3))

    rows = weights(t.shape[1], size[0])
    cols = weights(t.shape[2], size[1])
    return torch.einsum("chw,h,w->c", t, rows, cols)


def compose(panels: list[tuple[str, np.ndarray]], columns: int | None = None, titles: bool = True) -> np.ndarray:
    """Panels in a grid (``ceil(sqrt(n))`` columns), each titled with its layer, on white."""
    from PIL import Image, ImageDraw

    from odvgkit.browse.draw import font, sizes_for

    n = len(panels)
    cols = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    ph = max(p.shape[0] for _, p in panels)
    pw = max(p.shape[1] for _, p in panels)
    canvas = Image.new("RGB", (pw * cols, ph * rows), (255, 255, 255))
    for i, (label, arr) in enumerate(panels):
        im = Image.fromarray(arr)
        if titles:
            size, _ = sizes_for(*im.size)
            d = ImageDraw.Draw(im)
            f = font(size)
            _l, _t, r, b = f.getbbox(label)
            d.rectangle((0, 0, r + 6, b + 4), fill=(0, 0, 0))
            d.text((3, 2), label, fill=(255, 255, 255), font=f)
        canvas.paste(im, ((i % cols) * pw, (i // cols) * ph))
    return np.asarray(canvas)


# ----------------------------------------------------------------------------------------- boxam


def _cam_from(act: Any, grad: Any, method: str) -> Any:
    """One (h, w) map from a (C, h, w) activation (and its gradient for the Grad methods)."""
    import torch

    a = act.detach().float()
    if method == "eigencam":
        c = a.shape[0]
        flat = a.reshape(c, -1).T  # (hw, C)
        centred = flat - flat.mean(dim=0, keepdim=True)
        _u, _s, vh = torch.linalg.svd(centred, full_matrices=False)
        proj = centred @ vh[0]
        if torch.dot(proj, flat.mean(dim=1) - flat.mean()) < 0:  # orient the component (see module docstring)
            proj = -proj
        return proj.reshape(a.shape[1:]).clamp(min=0)
    g = grad.detach().float()
    if method == "gradcam":
        weights = g.mean(dim=(1, 2))
    else:  # gradcam++ (Chattopadhyay et al.), as pytorch-grad-cam computes it
        g2, g3 = g.pow(2), g.pow(3)
        sum_a = a.sum(dim=(1, 2), keepdim=True)
        aij = g2 / (2 * g2 + sum_a * g3 + 1e-7)
        aij = torch.where(g != 0, aij, torch.zeros_like(aij))
        weights = (torch.clamp(g, min=0) * aij).sum(dim=(1, 2))
    return (weights[:, None, None] * a).sum(dim=0).clamp(min=0)


def _to_image(cam: Any, prepared: Prepared) -> np.ndarray:
    import torch.nn.functional as F

    h, w = prepared.image.shape[:2]
    c = _crop(cam[None], prepared)
    up = F.interpolate(c[None].float(), size=(h, w), mode="bilinear", align_corners=False)[0, 0]
    up = up - up.min()
    top = float(up.max())
    return (up / top).numpy().astype(np.float32) if top > 0 else np.zeros((h, w), np.float32)


def boxam(
    loaded: Loaded,
    image: str | Path,
    target_layers: Sequence[str],
    *,
    texts: str | Sequence[str] | None = None,
    method: str = "gradcam",
    score_thr: float = 0.3,
    alpha: float = 0.5,
) -> BoxAM:
    """The activation map of ``target_layers`` for the boxes the model predicts (see the module docstring)."""
    import torch

    if method not in METHODS:
        raise OdvgError(f"--method {method!r}: choose one of {', '.join(METHODS)}", 2)
    prepared = prepare_image(loaded, image, texts)
    layers = resolve_layers(loaded.net, target_layers, loaded.family)
    grad = method != "eigencam"
    with _Capture(layers) as cap:
        results = _run_model(loaded, prepared, grad=grad, predict=True)
    pred = results[0].pred_instances
    scores = pred.scores
    keep = (scores >= score_thr).nonzero().flatten()
    fallback = False
    if keep.numel() == 0 and scores.numel() > 0:
        keep = scores.argmax().reshape(1)
        fallback = True
    rows = _captured_maps(cap, layers)
    raw = [t for _, out, _ in rows for t in _tensors(out)]
    grads: dict[int, Any] = {}
    if grad:
        if keep.numel() == 0:
            raise OdvgError(f"{image}: the model predicts no box at all, so there is nothing to explain", 1)
        target = scores[keep].sum()
        usable = [t for t in raw if t.requires_grad]
        if not target.requires_grad or not usable:
            raise OdvgError(f"--target-layer {', '.join(target_layers)}: the box scores do not depend on it "
                            "(no gradient); choose a layer before the detection head", 2)
        got = torch.autograd.grad(target, usable, allow_unused=True)
        grads = {id(t): (g if g is not None else torch.zeros_like(t)) for t, g in zip(usable, got, strict=True)}
    cams = []
    for name, out, kwargs in rows:
        acts = spatial_maps(out, kwargs, name)
        if not acts:
            raise _no_maps_error(name, out)
        gmaps = spatial_maps(_substitute(out, grads), kwargs, name) if grad else [(lbl, None) for lbl, _ in acts]
        for (_lbl, a), (_g, g) in zip(acts, gmaps, strict=True):
            if grad and g is None:
                continue
            cams.append(_to_image(_cam_from(a[0], g[0] if g is not None else None, method), prepared))
    if not cams:
        raise OdvgError(f"--target-layer {', '.join(target_layers)}: the box scores do not depend on it "
                        "(no gradient); choose a layer before the detection head", 2)
    heat = np.mean(np.stack(cams), axis=0)
    if heat.max() > 0:
        heat = heat / heat.max()
    sel = keep.tolist()
    names = prepared.classes or []
    labels = [int(v) for v in pred.labels[sel].tolist()] if sel else []
    am = BoxAM(
        heat=heat.astype(np.float32),
        boxes=[[round(float(v), 2) for v in b] for b in pred.bboxes[sel].detach().tolist()] if sel else [],
        labels=[names[i] if 0 <= i < len(names) else f"class {i}" for i in labels],
        scores=[round(float(s), 4) for s in scores[sel].detach().tolist()] if sel else [],
        fallback_top1=fallback,
    )
    am.image = overlay(prepared.image, am, alpha)
    return am


def overlay(image: np.ndarray, am: BoxAM, alpha: float = 0.5) -> np.ndarray:
    """JET-coloured map blended over the image, with the explained boxes, labels and scores."""
    import cv2
    from PIL import Image

    from odvgkit.browse.draw import draw_boxes
    from odvgkit.browse.scene import DrawBox, Scene, color_of

    heat = cv2.applyColorMap(np.uint8(np.clip(am.heat, 0, 1) * 255), cv2.COLORMAP_JET)[..., ::-1]
    mixed = (alpha * heat.astype(np.float32) + (1 - alpha) * image.astype(np.float32)).round().astype(np.uint8)
    canvas = Image.fromarray(mixed)
    index = {name: i for i, name in enumerate(dict.fromkeys(am.labels))}
    scene = Scene(boxes=[DrawBox(tuple(b), f"{lbl} {s:.2f}", color_of(index[lbl]))  # type: ignore[arg-type]
                         for b, lbl, s in zip(am.boxes, am.labels, am.scores, strict=True)])
    draw_boxes(canvas, scene)
    return np.asarray(canvas)


def box_mask(shape: tuple[int, int], boxes: Sequence[Sequence[float]]) -> np.ndarray:
    """Pixels covered by any of ``boxes`` (x1, y1, x2, y2; pixels)."""
    mask = np.zeros(shape, dtype=bool)
    for box in boxes:
        x1, y1, x2, y2 = (round(v) for v in box)
        mask[max(0, y1):max(0, y2), max(0, x1):max(0, x2)] = True
    return mask


def mass_inside(heat: np.ndarray, *boxes: Sequence[float]) -> float:
    """Share of the map's total activation that lies inside the boxes (their union).

    A map that knows nothing about the boxes scores about their share of the image area
    (:func:`area_share`); a map that explains them scores well above it.
    """
    total = float(heat.sum())
    if total <= 0:
        return 0.0
    return float(heat[box_mask(heat.shape[:2], boxes)].sum()) / total


def area_share(shape: tuple[int, int], *boxes: Sequence[float]) -> float:
    """The boxes' (union) share of the image area."""
    return float(box_mask(shape, boxes).mean())


def save_png(array: np.ndarray, path: Path) -> Path:
    """Write an RGB array as PNG atomically (temp file + rename), creating the folder."""
    from PIL import Image

    from odvgkit.io import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")
    return path
