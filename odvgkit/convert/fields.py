"""Field types shared by the converters' msgspec Structs.

JSON has no integer limit; NumPy columns, the C formatter and every downstream tool (MMDetection,
pycocotools) do. An id, category id, size or span beyond 64 bits would otherwise pass decoding and
crash later with an ``OverflowError`` far from the record that caused it. Declaring the bound on
the field lets msgspec reject it while decoding (a C comparison, no per-record Python), so the
element is reported as ``FILE: annotations[i]: image_id: …`` and skipped like any other bad one.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

Int64 = Annotated[int, msgspec.Meta(ge=INT64_MIN, le=INT64_MAX)]
"""An integer that fits NumPy's int64 (ids, category ids, sizes, character offsets)."""
