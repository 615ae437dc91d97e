"""What generated configs import (``custom_imports``) before mmdet builds anything.

Importing this module:

* installs the ``mmcv._ext`` stand-in when only mmcv-lite is present (:mod:`._ext_shim`);
* forbids Hugging Face hub downloads (the text encoder is always a local directory);
* allow-lists the few globals mmengine pickles into checkpoints, so torch ≥ 2.6's
  ``weights_only=True`` loading works without a blanket unsafe load (:mod:`.checkpoint`);
* registers odvgkit's two small text transforms with mmdet (closed-set prompts, base-class
  filtering for open-vocabulary finetuning) and the exact mixture sampler
  (:mod:`.datasets`), and the indexed ODVG datasets generated configs use (:mod:`.indexed`).

A config written by ``odvgkit train`` therefore also runs with plain ``mmdet tools/train.py``
wherever odvgkit is installed; with full mmcv, the import only registers the transforms.
"""

from __future__ import annotations

from odvgkit_train import _ext_shim
from odvgkit_train.text_encoder import offline

offline()
STANDIN = _ext_shim.install()

from odvgkit_train import checkpoint as _checkpoint  # noqa: E402

_checkpoint.allow_mmengine_globals()

from odvgkit_train import datasets as _datasets  # noqa: E402,F401  (registers with mmdet)
from odvgkit_train import detector_registry as _detector_registry  # noqa: E402,F401
from odvgkit_train import hooks as _hooks  # noqa: E402,F401
from odvgkit_train import indexed as _indexed  # noqa: E402,F401  (IndexedODVGDataset)
from odvgkit_train import transforms as _transforms  # noqa: E402,F401
