"""odvgkit: ODVG datasets for open-vocabulary and grounding detectors.

The library is a handful of types and functions; the CLI (``odvgkit``) is a thin layer on top.

>>> from odvgkit import read_records, write_records
>>> from odvgkit.convert.coco import coco_to_odvg
"""

from __future__ import annotations

__version__ = "0.1.0"

from odvgkit.errors import OdvgError, ProblemLog
from odvgkit.io import iter_records, read_label_map, read_records, write_label_map, write_records
from odvgkit.records import Grounding, Instance, LabelMap, Record, Region

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
