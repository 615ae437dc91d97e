"""odvgkit_train: MMDetection Grounding-DINO training, evaluation and inference on ODVG data.

The optional ``train`` extra (``pip install 'odvgkit[train]'``). Library entry points live in
:mod:`odvgkit_train.api`; importing this package itself is cheap and pulls in neither torch nor
mmdet (it only registers the ``mmcv._ext`` stand-in when mmcv-lite is installed, so that
``import odvgkit_train`` before ``import mmdet`` is all a library user needs).
"""

from __future__ import annotations

from odvgkit_train import _ext_shim

# Before anything imports mmcv.ops: with mmcv-lite, register the stand-in for the compiled
# ``mmcv._ext`` (cheap: looks at files, imports neither mmcv nor torch).
_ext_shim.install()

__all__ = ["api"]
