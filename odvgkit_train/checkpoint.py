"""Loading mmengine checkpoints safely under torch ≥ 2.6 without a blanket unsafe load.

torch ≥ 2.6 loads with ``weights_only=True``, which rejects what mmengine's ``CheckpointHook``
pickles besides tensors: its ``HistoryBuffer`` (whose statistics methods are pickled as
``getattr(buffer, "min")``), numpy arrays and scalars, ``collections.Counter``. The usual advice,
``weights_only=False``, runs any code a downloaded file contains. Instead :func:`safe_load` unpickles
with an allow-list: exactly those globals, and a ``getattr`` that only fetches public attributes of
``HistoryBuffer`` (its registered statistics methods). Anything else is refused with the name of the global.

:func:`install_mmengine_loader` makes mmengine's own ``load_from``/``resume`` use it.
"""

from __future__ import annotations

import pickle
import types
from pathlib import Path
from typing import Any

from odvgkit.errors import OdvgError

_ALLOWED: set[tuple[str, str]] = {
    ("collections", "OrderedDict"),
    ("collections", "Counter"),
    ("collections", "defaultdict"),
    ("_codecs", "encode"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("mmengine.logging.history_buffer", "HistoryBuffer"),
    ("mmengine.config.config", "ConfigDict"),
    ("torch", "Size"),
    ("torch", "device"),
    ("torch._utils", "_rebuild_tensor"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_tensor_v3"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch._utils", "_rebuild_parameter_with_state"),
    ("torch.nn.parameter", "Parameter"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "slice"),
    ("builtins", "complex"),
}


def _safe_getattr(obj: Any, name: str) -> Any:
    from mmengine.logging import HistoryBuffer

    ok_owner = obj is HistoryBuffer or isinstance(obj, HistoryBuffer)
    if ok_owner and isinstance(name, str) and not name.startswith("_"):
        return getattr(obj, name)
    raise pickle.UnpicklingError(f"checkpoint asks for getattr({type(obj).__name__}, {name!r}): refused")


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module in ("builtins", "__builtin__") and name == "getattr":
            return _safe_getattr
        module = "builtins" if module == "__builtin__" else module
        if (module, name) in _ALLOWED or (module == "numpy.dtypes" and name.endswith("DType")):
            return super().find_class(module, name)
        if (module == "torch" and name.endswith(("Storage", "dtype"))) or (module == "torch" and name in _TORCH_DTYPES):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not on odvgkit's checkpoint allow-list")


_TORCH_DTYPES = {
    "float16", "float32", "float64", "bfloat16", "int8", "int16", "int32", "int64", "uint8", "bool",
    "complex64", "complex128",
}

restricted_pickle = types.ModuleType("odvgkit_restricted_pickle")
restricted_pickle.Unpickler = _Unpickler  # type: ignore[attr-defined]
restricted_pickle.load = lambda fh, **kw: _Unpickler(fh, **kw).load()  # type: ignore[attr-defined]
restricted_pickle.__name__ = "pickle"


def safe_load(path: str | Path, map_location: Any = "cpu") -> Any:
    """``torch.load`` with odvgkit's allow-list (see the module docstring)."""
    import torch

    return torch.load(str(path), map_location=map_location, weights_only=False, pickle_module=restricted_pickle)


def allow_mmengine_globals() -> None:
    """Route mmengine's local checkpoint loading (``load_from``, ``resume``) through :func:`safe_load`."""
    from mmengine.runner.checkpoint import CheckpointLoader

    if getattr(CheckpointLoader, "_odvgkit_safe", False):
        return

    def load_from_local(filename: str, map_location: Any) -> Any:
        from mmengine.utils import is_filepath

        filename = str(filename)
        if not is_filepath(filename) or not Path(filename).is_file():
            raise FileNotFoundError(f"{filename} can not be found.")
        return safe_load(filename, map_location)

    CheckpointLoader.register_scheme(prefixes="", loader=load_from_local, force=True)
    CheckpointLoader._odvgkit_safe = True


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise OdvgError(f"{p}: checkpoint not found")
    try:
        ckpt = safe_load(p)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise OdvgError(f"{p}: cannot load checkpoint ({first})") from None
    if not isinstance(ckpt, dict):
        raise OdvgError(f"{p}: not a checkpoint (no state_dict)")
    return ckpt


def read_state_dict(path: str | Path) -> dict[str, Any]:
    """The ``state_dict`` of an mmengine (or plain) checkpoint file."""
    ckpt = read_checkpoint(path)
    if "state_dict" in ckpt:
        ckpt = ckpt["state_dict"]
    elif "model" in ckpt and isinstance(ckpt["model"], dict):
        ckpt = ckpt["model"]
    return {k.removeprefix("module."): v for k, v in ckpt.items()}


def compare_keys(model_state: dict[str, Any], ckpt_state: dict[str, Any]) -> dict[str, list[str]]:
    """Missing, unexpected and shape-mismatched keys between a model and a checkpoint."""
    missing = sorted(set(model_state) - set(ckpt_state))
    unexpected = sorted(set(ckpt_state) - set(model_state))
    mismatched = sorted(
        f"{k} {tuple(ckpt_state[k].shape)}≠{tuple(model_state[k].shape)}"
        for k in set(model_state) & set(ckpt_state)
        if hasattr(ckpt_state[k], "shape") and tuple(ckpt_state[k].shape) != tuple(model_state[k].shape)
    )
    return {"missing": missing, "unexpected": unexpected, "shape_mismatch": mismatched}


def describe_mismatch(path: str | Path, diff: dict[str, list[str]], limit: int = 8) -> str:
    parts = []
    for kind, keys in diff.items():
        if keys:
            shown = ", ".join(keys[:limit]) + (f", … (+{len(keys) - limit})" if len(keys) > limit else "")
            parts.append(f"{len(keys)} {kind.replace('_', ' ')}: {shown}")
    return f"{path}: checkpoint does not match the model ({'; '.join(parts)}); check --model / --text-encoder"


def load_strict(model: Any, path: str | Path) -> None:
    """Load ``path`` into ``model``; any key or shape difference is a one-line error listing them."""
    state = read_state_dict(path)
    diff = compare_keys(model.state_dict(), state)
    if any(diff.values()):
        raise OdvgError(describe_mismatch(path, diff))
    model.load_state_dict(state, strict=True)
