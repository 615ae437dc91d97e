"""A stand-in for ``mmcv._ext`` when only ``mmcv-lite`` is installed.

MMDetection's Grounding DINO imports ``mmcv.ops`` (for ``MultiScaleDeformableAttention``), and
``mmcv.ops`` imports the compiled ``mmcv._ext`` at module level, checking that each kernel name
exists. On the CPU the attention runs mmcv's pure-PyTorch path and never calls a kernel, so a
module that *names* every kernel is enough to import. Calling one raises :class:`MissingKernelError`
with the fix (install full mmcv), instead of a silent wrong answer.

Full mmcv, when installed, is always preferred: :func:`install` does nothing then. Nothing is
written to site-packages; the stand-in lives in ``sys.modules`` of the current process (and of
every process that imports :mod:`odvgkit_train.mmcv_compat`, which generated configs list in
``custom_imports``).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import types
from pathlib import Path
from typing import Any

STANDIN_FLAG = "__odvgkit_standin__"


class MissingKernelError(RuntimeError):
    """A compiled mmcv op was called but only mmcv-lite (no kernels) is installed."""


def _kernel(name: str) -> Any:
    def missing(*_args: Any, **_kwargs: Any) -> Any:
        raise MissingKernelError(
            f"mmcv compiled op '{name}' is not available: only mmcv-lite is installed "
            "(odvgkit's stand-in for mmcv._ext). On a GPU install full mmcv: "
            "pip uninstall -y mmcv-lite && pip install 'setuptools<81' && "
            "pip install --no-build-isolation 'mmcv==2.1.0' (see docs/train.md)"
        )

    missing.__name__ = name
    return missing


class _StandIn(types.ModuleType):
    """Module whose every public attribute is a kernel that raises when called."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        fn = _kernel(name)
        setattr(self, name, fn)
        return fn


def has_compiled_ops() -> bool:
    """True when a real ``mmcv._ext`` (full mmcv) exists; looks at files, never imports mmcv."""
    mod = sys.modules.get("mmcv._ext")
    if mod is not None:
        return not getattr(mod, STANDIN_FLAG, False)
    spec = importlib.util.find_spec("mmcv")
    if spec is None or not spec.submodule_search_locations:
        return False
    return any(any(Path(d).glob("_ext.*")) or (Path(d) / "_ext").is_dir() for d in spec.submodule_search_locations)


def install() -> bool:
    """Register the stand-in unless real kernels exist; return True when the stand-in is in use."""
    existing = sys.modules.get("mmcv._ext")
    if existing is not None:
        return bool(getattr(existing, STANDIN_FLAG, False))
    if importlib.util.find_spec("mmcv") is None:
        return False
    if has_compiled_ops():
        return False
    module = _StandIn("mmcv._ext", "odvgkit stand-in for mmcv's compiled ops (mmcv-lite installed)")
    setattr(module, STANDIN_FLAG, True)
    # a spec without a loader: importlib is satisfied, and mmengine's mmcv_full_available() is False
    module.__spec__ = importlib.machinery.ModuleSpec("mmcv._ext", loader=None)
    sys.modules["mmcv._ext"] = module
    return True
