"""Small real models for the explain tests: a tiny RTMDet from mmdet's own config, overfitted in-process.

The RTMDet is mmdet's ``rtmdet_tiny_8xb32-300e_coco.py`` model with the pretrained-backbone
``init_cfg`` removed, SyncBN replaced by BN (one CPU process), one class and a 64-pixel input.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np

import odvgkit_train  # noqa: F401  (registers the mmcv._ext stand-in before mmcv.ops is imported)

MMDET_CFG = "rtmdet/rtmdet_tiny_8xb32-300e_coco.py"
SIZE = 64


def _bn(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: ({"type": "BN"} if k == "norm_cfg" and isinstance(v, dict) and v.get("type") == "SyncBN" else _bn(v))
                for k, v in obj.items()}
    if isinstance(obj, list):
        return [_bn(v) for v in obj]
    return obj


def rtmdet_config(num_classes: int = 1, size: int = SIZE, classes: list[str] | None = None) -> dict[str, Any]:
    """A plain config dict (model + test pipeline + metainfo) of a tiny RTMDet."""
    import mmdet
    from mmengine.config import Config

    path = Path(mmdet.__file__).parent / ".mim" / "configs" / MMDET_CFG
    cfg = Config.fromfile(str(path))
    model = _bn(copy.deepcopy(cfg.model.to_dict()))
    model["backbone"]["init_cfg"] = None
    model["bbox_head"]["num_classes"] = num_classes
    model["test_cfg"] = dict(nms_pre=1000, min_bbox_size=0, score_thr=0.05, nms=dict(type="nms", iou_threshold=0.6),
                             max_per_img=20)
    test_pipeline = [
        dict(type="LoadImageFromFile", backend_args=None),
        dict(type="Resize", scale=(size, size), keep_ratio=True),
        dict(type="Pad", size=(size, size), pad_val=dict(img=(114, 114, 114))),
        dict(type="PackDetInputs", meta_keys=("img_id", "img_path", "ori_shape", "img_shape", "scale_factor")),
    ]
    names = classes or [f"thing{i}" for i in range(num_classes)]
    return dict(default_scope="mmdet", model=model, test_pipeline=test_pipeline, metainfo=dict(classes=names))


def blob_image(path: Path, box: tuple[int, int, int, int], size: int = SIZE, seed: int = 0) -> Path:
    """A dark noisy image with one bright square object at ``box`` (x1, y1, x2, y2)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    img = rng.integers(10, 50, size=(size, size, 3), dtype=np.uint8)
    x1, y1, x2, y2 = box
    img[y1:y2, x1:x2] = (250, 220, 40)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)
    return path


def train_rtmdet(cfg: dict[str, Any], samples: list[tuple[Path, tuple[int, int, int, int]]], out: Path,
                 iters: int = 150, seed: int = 0) -> Path:
    """Overfit the tiny RTMDet on ``samples`` (image, box of class 0) and save an mmengine-style checkpoint."""
    import torch
    from mmcv.transforms import Compose
    from mmdet.registry import MODELS
    from mmdet.structures import DetDataSample
    from mmdet.utils import register_all_modules
    from mmengine.config import Config
    from mmengine.structures import InstanceData

    register_all_modules(init_default_scope=True)
    torch.manual_seed(seed)
    net = MODELS.build(copy.deepcopy(cfg["model"]))
    net.init_weights()
    pipe = Compose([s for s in cfg["test_pipeline"]])
    batch_inputs, batch_samples = [], []
    for img, box in samples:
        packed = pipe({"img_path": str(img), "img_id": 0})
        ds: DetDataSample = packed["data_samples"]
        sx, sy = ds.metainfo["scale_factor"]
        gt = InstanceData()
        gt.bboxes = torch.tensor([[box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy]], dtype=torch.float32)
        gt.labels = torch.tensor([0])
        ds.gt_instances = gt
        batch_inputs.append(packed["inputs"])
        batch_samples.append(ds)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=0.0)
    net.train()
    for _ in range(iters):
        data = net.data_preprocessor({"inputs": batch_inputs, "data_samples": copy.deepcopy(batch_samples)}, True)
        losses = net.loss(data["inputs"], data["data_samples"])
        loss, _ = net.parse_losses(losses)
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    text = Config(cfg).pretty_text
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"meta": {"cfg": text, "dataset_meta": {"classes": list(cfg["metainfo"]["classes"])}},
                "state_dict": net.state_dict()}, out)
    return out


def gdino_checkpoint(directory: Path, seed: int = 0) -> Path:
    """A randomly initialised tiny Grounding DINO (odvgkit's ``tiny`` preset) saved with its config."""
    import torch
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config

    from odvgkit_train import presets
    from odvgkit_train.api import prepare
    from odvgkit_train.config import test_pipeline
    from odvgkit_train.text_encoder import make_tiny_bert

    prepare()
    register_all_modules(init_default_scope=True)
    bert = make_tiny_bert(directory / "bert")
    cfg = dict(default_scope="mmdet", model=presets.model_config("tiny", str(bert)), test_pipeline=test_pipeline("tiny"))
    torch.manual_seed(seed)
    net = MODELS.build(copy.deepcopy(cfg["model"]))
    net.init_weights()
    out = directory / "gdino_tiny.pth"
    torch.save({"meta": {"cfg": Config(cfg).pretty_text}, "state_dict": net.state_dict()}, out)
    return out
