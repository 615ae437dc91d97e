"""``odvgkit convert dod2odvg``: D³ (Described Object Detection) → ODVG + label map + settings.

Kept out of ``cli/convert.py`` (a file many people edit); it adds itself to the same ``convert``
group, which is registered first (modules load in name order).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from odvgkit.cli._common import Force, Json, Quiet, Strict, reporter


def dod2odvg(
    d3_root: Annotated[Path, typer.Argument(help="D³ root holding d3_json/, d3_pkl/ and d3_images/.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Output records (.jsonl/.jsonl.gz/.parquet). Default: D3_ROOT/d3_od.jsonl.")
    ] = None,
    strict: Strict = False,
    force: Force = False,
    quiet: Quiet = False,
    json_mode: Json = False,
) -> None:
    """D³ ground truth + per-image sentence prompts → ODVG OD records, label map and settings.

    One record per image: the FULL ground truth (label = sentence id − 1) and, under "dod", the
    sentences of the image's group that the model is prompted with. Beside the output:
    d3_label_map.json (422 sentences) and d3_settings.json (the labels and images of FULL, PRES
    and ABS), so 'odvgkit eval --metric dod' scores all three settings from one pass. The pickles
    are read with an allow-list (builtins and numpy arrays); anything else is refused by name.

    [bold]Examples[/bold]

      odvgkit convert dod2odvg data/d3

      odvgkit eval data/d3/d3_od.jsonl,images=data/d3/d3_images --checkpoint mm_gdino_t.pth --metric dod
    """
    import orjson

    from odvgkit.convert.base import summarise, write_conversion
    from odvgkit.convert.dod import LABEL_MAP_NAME, PICKLES, SETTINGS, SETTINGS_NAME, dod_to_odvg
    from odvgkit.errors import ProblemLog

    rep = reporter(quiet, json_mode)
    problems = ProblemLog(strict=strict)
    out = output or d3_root / "d3_od.jsonl"
    lm_path = out.parent / LABEL_MAP_NAME
    settings_path = out.parent / SETTINGS_NAME
    inputs = [d3_root / "d3_pkl" / p for p in PICKLES] + [d3_root / "d3_json" / j for j in SETTINGS.values()]
    with rep.progress("dod2odvg", unit="records") as advance:
        conv, settings = dod_to_odvg(d3_root, problems)
        text = orjson.dumps(settings).decode() + "\n"
        write_conversion(conv, out, inputs=inputs, label_map_path=lm_path,
                         extra_outputs={settings_path: text}, on_records=advance)
    summarise(rep, "dod2odvg", conv, {"output": str(out), "label_map": str(lm_path), "settings": str(settings_path)}, problems)
    if problems.n_errors:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    from odvgkit.cli.convert import convert_app

    convert_app.command("dod2odvg")(dod2odvg)
