"""Loading mmengine checkpoints safely under torch ≥ 2.6 (``weights_only=True``).

mmengine's ``CheckpointHook`` pickles a few non-tensor objects into ``meta`` and ``message_hub``
(its ``HistoryBuffer``, numpy scalars/arrays, ``collections.OrderedDict``). Rather than a blanket
``weights_only=False`` (which runs arbitrary pickled code from a downloaded file), those exact
globals are allow-listed with ``torch.serialization.add_safe_globals``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from odvgkit.errors import OdvgError


def _mmengine_globals() -> list[Any]:
    import numpy as np

    found: list[Any] = []
    try:
        from mmengine.logging import HistoryBuffer

        found.append(HistoryBuffer)
    except ImportError:  # pragma: no cover - mmengine is part of the extra
        pass
    try:
        from mmengine.config.config import ConfigDict

        found.append(ConfigDict)
    except ImportError:  # pragma: no cover
        pass
    multiarray = getattr(np, "_core", None) or np.core
    found += [
        multiarray.multiarray._reconstruct,
        multiarray.multiarray.scalar,
        np.ndarray,
        np.dtype,
    ]
    found += [type(np.dtype(t)) for t in ("float64", "float32", "int64", "int32", "bool", "uint8")]
    return found


def allow_mmengine_globals() -> None:
    import torch

    add = getattr(torch.serialization, "add_safe_globals", None)
    if add is not None:
        add(_mmengine_globals())


def read_state_dict(path: str | Path) -> dict[str, Any]:
    """The ``state_dict`` of an mmengine (or plain) checkpoint file, loaded weights-only."""
    import torch

    allow_mmengine_globals()
    p = Path(path)
    if not p.is_file():
        raise OdvgError(f"{p}: checkpoint not found")
    try:
        ckpt = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file for the user
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise OdvgError(f"{p}: cannot load checkpoint ({first})") from None
    if isinstance(ckpt, dict) and "state_dict" in ckpt:
        ckpt = ckpt["state_dict"]
    elif isinstance(ckpt, dict) and "model" in ckpt and isinstance(ckpt["model"], dict):
        ckpt = ckpt["model"]
    if not isinstance(ckpt, dict):
        raise OdvgError(f"{p}: not a checkpoint (no state_dict)")
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
