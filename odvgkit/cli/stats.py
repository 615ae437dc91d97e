"""``odvgkit stats``: counts, distributions and a one-page figure of an ODVG file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from odvgkit.cli._common import Force, Json, Quiet, Strict, input_bytes, reporter


def stats(
    input: Annotated[Path, typer.Argument(help="ODVG file (.jsonl/.json[.gz]/.parquet).")],
    label_map: Annotated[
        Path | None, typer.Option("--label-map", "-m", help="Label map for class names (OD). Default: the records' category fields.")
    ] = None,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write the figure (.png, .svg or .pdf); needs the 'curate' extra.")
    ] = None,
    top: Annotated[int, typer.Option("--top", help="Classes/phrases listed and plotted.")] = 25,
    tokenizer: Annotated[
        str | None, typer.Option("--tokenizer", help="Local tokenizer dir/vocab.txt/tokenizer.json (default: bundled BERT uncased).")
    ] = None,
    no_tokens: Annotated[bool, typer.Option("--no-tokens", help="Skip BERT token counting of captions (faster).")] = False,
    strict: Strict = False,
    force: Force = False,
    quiet: Quiet = False,
    json_mode: Json = False,
) -> None:
    """Records, boxes, per-class counts, boxes per image, box sizes, captions, phrases and tokens.

    One streaming pass in bounded memory (counters and fixed-bin histograms). Box size is given as
    COCO small/medium/large and as the side relative to the image. Caption tokens are counted with
    the BERT uncased tokenizer Grounding DINO uses (256-token limit). --plot draws a figure with
    all of it; --json prints the full summary.

    [bold]Examples[/bold]

      odvgkit stats coco_train_od.jsonl -m coco_label_map.json --plot coco_stats.png

      odvgkit stats goldg_vg.jsonl --json > goldg_stats.json
    """
    from odvgkit.curate.stats import compute, summary
    from odvgkit.errors import OdvgError, ProblemLog, require
    from odvgkit.io import atomic_path, read_label_map

    if plot is not None:
        if plot.suffix.lower() not in (".png", ".svg", ".pdf"):
            raise OdvgError(f"{plot}: --plot writes .png, .svg or .pdf", exit_code=2)
        require("matplotlib", "curate")
    if top < 1:
        raise OdvgError(f"--top {top}: must be at least 1", exit_code=2)
    lm = read_label_map(label_map) if label_map is not None else None
    rep = reporter(quiet, json_mode)
    problems = ProblemLog(strict=strict)
    size = input_bytes(input)
    with rep.progress(f"stats {input.name}", total=size, unit="bytes") as adv:
        st = compute(input, lm, problems, tokenizer, count_tokens=not no_tokens, advance=adv)
    summ = summary(st, top)
    if plot is not None:
        from odvgkit.curate.plot import render

        with atomic_path(plot) as tmp:
            render(st, tmp, input.name, top, fmt=plot.suffix.lstrip(".").lower())
    rows: dict[str, object] = {"input": str(input)}
    tables: dict[str, list] = {}
    for key, value in summ.items():
        if isinstance(value, list):
            tables[key] = value
        elif isinstance(value, dict):
            if json_mode:
                rows[key] = value
            else:
                rows[key] = " · ".join(f"{k} {v}" for k, v in value.items())
        else:
            rows[key] = value
    if plot is not None:
        rows["plot"] = str(plot)
    if not json_mode:
        tables = {k: v for k, v in tables.items() if k in ("top_categories", "top_phrases")}
        tables = {k: v[:10] for k, v in tables.items()}
    rep.summary("stats", rows, problems, tables=tables)
    if problems.n_errors:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("stats", rich_help_panel="Curate")(stats)
