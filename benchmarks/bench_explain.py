"""``odvgkit explain`` throughput: images/s of featmap and boxam, RTMDet-tiny and the tiny Grounding DINO.

    OMP_NUM_THREADS=1 python benchmarks/bench_explain.py [--images 6] [--rtmdet-size 640]

In-process, model loaded once (what ``odvgkit explain`` does per image after start-up): mmdet's
RTMDet-tiny (``rtmdet_tiny_8xb32-300e_coco.py``, 80 classes, SyncBN → BN, random weights — speed does
not depend on them — with the regression biases at 1 so boxes have an area) at its real test scale, and odvgkit's ``tiny`` Grounding DINO preset at its test
scale (128 px) with a 3-class prompt. Synthetic 640×480 images. Each figure is the median of
per-image times after one warm-up image, including drawing the PNG (not writing it); a reference row
per model times only loading the image and running the network (no hooks, no drawing).

With mmcv-lite (no compiled NMS) the RTMDet boxam rows use the tests' plain-PyTorch greedy NMS.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))


def _images(d: Path, n: int) -> list[Path]:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        arr = rng.integers(0, 255, size=(480, 640, 3), dtype=np.uint8)
        arr[100:260, 200 + 10 * i:400 + 10 * i] = (240, 200, 30)
        p = d / f"img{i}.jpg"
        Image.fromarray(arr).save(p, quality=90)
        out.append(p)
    return out


def _time(fn, images: list[Path]) -> float:
    fn(images[0])  # warm-up
    times = []
    for img in images[1:]:
        t = time.perf_counter()
        fn(img)
        times.append(time.perf_counter() - t)
    return 1.0 / statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=6)
    ap.add_argument("--rtmdet-size", type=int, default=640)
    args = ap.parse_args()

    import torch
    from explain.helpers import gdino_checkpoint, rtmdet_config

    import odvgkit_train  # noqa: F401
    from odvgkit_train import explain

    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        images = _images(d, args.images)
        # RTMDet-tiny, 80 classes, at the chosen test scale
        import copy

        from mmdet.registry import MODELS
        from mmdet.utils import register_all_modules
        from mmengine.config import Config

        register_all_modules(init_default_scope=True)
        cfg = rtmdet_config(num_classes=80, size=args.rtmdet_size)
        cfg["model"]["test_cfg"]["score_thr"] = 0.0  # random weights score ~0.01: keep boxes to explain
        net = MODELS.build(copy.deepcopy(cfg["model"]))
        net.init_weights()
        for conv in net.bbox_head.rtm_reg:  # random ReLU distances are often 0 (empty boxes): give them area
            torch.nn.init.constant_(conv.bias, 1.0)
        ck = d / "rtmdet.pth"
        torch.save({"meta": {"cfg": Config(cfg).pretty_text}, "state_dict": net.state_dict()}, ck)
        rtm = explain.load(ck)
        gd = explain.load(gdino_checkpoint(d / "gd"))
        def forward_only(loaded, texts=None, predict=False):
            def run(p):
                prepared = explain.prepare_image(loaded, p, texts)
                with torch.no_grad():
                    if predict or loaded.family == explain.GDINO:
                        loaded.net.predict(prepared.inputs, prepared.data_samples)
                    else:
                        loaded.net._forward(prepared.inputs, prepared.data_samples)
            return run

        cases = [
            ("RTMDet-tiny", f"{args.rtmdet_size} px", "reference: load + network forward only", forward_only(rtm)),
            ("RTMDet-tiny", f"{args.rtmdet_size} px", "reference: load + predict (decode + NMS) only",
             forward_only(rtm, predict=True)),
            ("RTMDet-tiny", f"{args.rtmdet_size} px", "featmap neck, squeeze_mean",
             lambda p: explain.compose([(m.label, m.panel) for m in explain.featmaps(rtm, p, ["neck"], channel_reduction="squeeze_mean")])),
            ("RTMDet-tiny", f"{args.rtmdet_size} px", "featmap neck.out_convs[2], top-4 channels",
             lambda p: explain.featmaps(rtm, p, ["neck.out_convs[2]"], channel_reduction="none", topk=4)),
            ("RTMDet-tiny", f"{args.rtmdet_size} px", "boxam gradcam neck.out_convs[2]",
             lambda p: explain.boxam(rtm, p, ["neck.out_convs[2]"], method="gradcam")),
            ("RTMDet-tiny", f"{args.rtmdet_size} px", "boxam eigencam neck",
             lambda p: explain.boxam(rtm, p, ["neck"], method="eigencam")),
            ("Grounding DINO tiny", "128 px", "reference: load + predict only", forward_only(gd, "cat . dog . box")),
            ("Grounding DINO tiny", "128 px", "featmap neck + encoder, squeeze_mean",
             lambda p: explain.featmaps(gd, p, ["neck", "encoder"], texts="cat . dog . box", channel_reduction="squeeze_mean")),
            ("Grounding DINO tiny", "128 px", "boxam gradcam neck",
             lambda p: explain.boxam(gd, p, ["neck"], texts="cat . dog . box", method="gradcam")),
            ("Grounding DINO tiny", "128 px", "boxam gradcam++ encoder",
             lambda p: explain.boxam(gd, p, ["encoder"], texts="cat . dog . box", method="gradcam++")),
            ("Grounding DINO tiny", "128 px", "boxam eigencam neck",
             lambda p: explain.boxam(gd, p, ["neck"], texts="cat . dog . box", method="eigencam")),
        ]
        for model, scale, what, fn in cases:
            ips = _time(fn, images)
            rows.append({"model": model, "input": scale, "command": what, "images_per_s": round(ips, 2)})
            print(json.dumps(rows[-1]), flush=True)
    print("\n| model | input | explain | images/s (1 thread) |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['input']} | {r['command']} | {r['images_per_s']} |")


if __name__ == "__main__":
    main()
