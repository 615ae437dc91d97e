"""Process set-up every entry point of odvgkit_train needs before mmdet builds anything.

Kept apart from :mod:`odvgkit_train.api` so that the lower modules (:mod:`.inference`,
:mod:`.evaluation`, :mod:`.launch`) can prepare the process without importing the API module that
sits above them: the dependency graph of the package stays a tree (``tests/train/test_train_layers.py``).
"""

from __future__ import annotations

import os


def prepare() -> None:
    """Import the mmdet plugin (stand-in kernels, offline hub, checkpoint allow-list, transforms)."""
    import odvgkit_train.mmdet_plugin  # noqa: F401


def torch_threads() -> None:
    """Give torch the thread count of ``OMP_NUM_THREADS`` (torch reads it only at its own import)."""
    import torch

    n = os.environ.get("OMP_NUM_THREADS")
    if n and n.isdigit():
        torch.set_num_threads(int(n))
