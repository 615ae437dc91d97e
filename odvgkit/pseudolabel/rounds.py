"""Round directories of a loop work dir: which rounds are complete, atomic completion.

Layout of ``W``::

    W/loop.json              options the loop was started with (a resume must match them)
    W/round_0/               unlabeled records (+ label map), round.json
    W/round_k/               labels.jsonl, label_map.json, [reviewed.jsonl], train/, checkpoint.pth,
                             metrics.json, round.json  (k = 1..N)
    W/.round_k.partial/      the round being built; renamed to round_k only when complete

A round is complete when ``round_k/round.json`` exists; rounds only ever appear by renaming a
finished ``.round_k.partial`` (one ``os.rename`` on one filesystem), so a crash leaves either the
whole round or none of it, and a complete round is never written to again.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from odvgkit.errors import OdvgError
from odvgkit.io import atomic_path

MANIFEST = "round.json"
_ROUND = re.compile(r"^round_(\d+)$")


def round_dir(work: Path, k: int) -> Path:
    return work / f"round_{k}"


def partial_dir(work: Path, k: int) -> Path:
    return work / f".round_{k}.partial"


def complete_rounds(work: Path) -> list[int]:
    """Round numbers whose directory holds a manifest, ascending."""
    if not work.is_dir():
        return []
    out = []
    for p in work.iterdir():
        m = _ROUND.match(p.name)
        if m and (p / MANIFEST).is_file():
            out.append(int(m.group(1)))
    return sorted(out)


def last_complete(work: Path) -> int | None:
    """The last round of the unbroken sequence 0, 1, …, k (a gap means later rounds are not trusted)."""
    done = set(complete_rounds(work))
    k = -1
    while k + 1 in done:
        k += 1
    return k if k >= 0 else None


def write_json(path: Path, payload: Any) -> None:
    with atomic_path(path, force=True) as tmp:  # the loop's own state
        tmp.write_text(json.dumps(payload, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")




def complete(work: Path, k: int, manifest: dict[str, Any]) -> Path:
    """Write the manifest into the partial dir and rename it to ``round_k``; never overwrite."""
    part, final = partial_dir(work, k), round_dir(work, k)
    if final.exists():
        raise OdvgError(f"{final}: round {k} already exists; a finished round is never overwritten")
    write_json(part / MANIFEST, manifest)
    os.rename(part, final)
    return final
