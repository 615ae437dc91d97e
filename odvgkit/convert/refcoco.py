"""RefCOCO / RefCOCO+ / RefCOCOg (MDETR ``finetune_*_train.json``) → ODVG VG, one output per input.

The per-file logic is goldg2odvg's (upstream ``refcoco2odvg.py`` is a verbatim copy of it, §3.8):
one record per expression, ascending id order, x2/y2 clipped, phrases from the root-noun spans.
Upstream processes four hard-coded names and crashes on the first missing one after writing the
earlier outputs; here the inputs are explicit (or discovered in a directory) and checked before
anything is written, and two inputs can never write the same output.
"""

from __future__ import annotations

from pathlib import Path

from odvgkit.convert.base import default_output
from odvgkit.errors import OdvgError

MDETR_REFEXP_FILES = (
    "finetune_refcoco_train.json",
    "finetune_refcoco+_train.json",
    "finetune_refcocog_train.json",
)


def refcoco_inputs(paths: list[Path]) -> list[Path]:
    """Expand directories into the MDETR refexp train files they hold; check every file exists."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            found = [p / n for n in MDETR_REFEXP_FILES if (p / n).is_file()]
            if not found:
                raise OdvgError(f"{p}: none of {', '.join(MDETR_REFEXP_FILES)} in this directory")
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            raise OdvgError(f"{p}: no such file or directory")
    return out


def refcoco_outputs(inputs: list[Path], out_dir: Path | None, suffix: str = "_vg.json") -> list[Path]:
    """``<name>_vg.json`` beside each input (or in ``out_dir``); refuse two inputs → one output."""
    outputs = []
    seen: dict[Path, Path] = {}
    for inp in inputs:
        out = default_output(inp, suffix)
        if out_dir is not None:
            out = out_dir / out.name
        key = out.resolve()
        if key in seen:
            raise OdvgError(f"{out}: both {seen[key]} and {inp} would be written here; use separate runs")
        seen[key] = inp
        outputs.append(out)
    return outputs
