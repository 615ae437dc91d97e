"""odvgkit_train: MMDetection Grounding-DINO training, evaluation and inference on ODVG data.

The optional ``train`` extra (``pip install 'odvgkit[train]'``). Library entry points live in
:mod:`odvgkit_train.api`; importing this package itself is cheap and pulls in neither torch nor
mmdet, so ``odvgkit`` can probe for it.
"""

from __future__ import annotations

__all__ = ["api"]
