"""odvgkit: ODVG datasets for open-vocabulary and grounding detectors.

The library is a handful of types and functions; the CLI (``odvgkit``) is a thin layer on top.

>>> from odvgkit import read_records, write_records
>>> from odvgkit.convert.coco import coco_to_odvg
"""

from __future__ import annotations

__version__ = "0.1.0"

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from odvgkit.errors import OdvgError, ProblemLog
    from odvgkit.io import iter_records, read_label_map, read_records, write_label_map, write_records
    from odvgkit.records import Grounding, Instance, LabelMap, Record, Region

# Imported on first use (PEP 562): the record model pulls in pydantic (~0.1 s), which a converter
# streaming dicts never needs.
_LAZY = {
    **dict.fromkeys(("OdvgError", "ProblemLog"), "odvgkit.errors"),
    **dict.fromkeys(("iter_records", "read_label_map", "read_records", "write_label_map", "write_records"), "odvgkit.io"),
    **dict.fromkeys(("Grounding", "Instance", "LabelMap", "Record", "Region"), "odvgkit.records"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'odvgkit' has no attribute {name!r}")

__all__ = [
    "Grounding",
    "Instance",
    "LabelMap",
    "OdvgError",
    "ProblemLog",
    "Record",
    "Region",
    "__version__",
    "iter_records",
    "read_label_map",
    "read_records",
    "write_label_map",
    "write_records",
]


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
