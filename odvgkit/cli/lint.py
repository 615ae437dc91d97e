"""``odvgkit lint``: grounding checks against the BERT tokenizer (beyond ``validate``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from odvgkit.cli._common import Json, Quiet, Strict, input_bytes, reporter


def lint(
    input: Annotated[Path, typer.Argument(help="ODVG file (.jsonl/.json[.gz]/.parquet).")],
    label_map: Annotated[
        Path | None, typer.Option("--label-map", "-m", help="Label map of an OD file (class prompts are checked too).")
    ] = None,
    tokenizer: Annotated[
        str | None,
        typer.Option("--tokenizer", help="Local tokenizer dir (vocab.txt or tokenizer.json); default: bundled BERT uncased."),
    ] = None,
    max_tokens: Annotated[int, typer.Option("--max-tokens", help="Text length limit of the model.")] = 256,
    strict: Strict = False,
    quiet: Quiet = False,
    json_mode: Json = False,
) -> None:
    """Check captions, spans, phrases and class prompts the way MM-Grounding-DINO will tokenize them.

    VG: captions over the 256-token limit, tokens_positive spans that map to no BERT token (the box
    then trains with no text), spans beyond the limit, phrases that never occur in the caption,
    leading whitespace and lower() changes that shift spans. OD (with --label-map): per-image
    positive-class prompts over the limit (mmdet drops those boxes), the full label-map prompt,
    class names that clean to nothing or collide, labels missing from the map. The uncased
    WordPiece vocabulary ships with odvgkit (no download); --tokenizer DIR uses another local one.
    Exit status 1 when any error-level finding exists.

    [bold]Examples[/bold]

      odvgkit lint goldg_vg.jsonl

      odvgkit lint lvis_v1_train_od.jsonl -m lvis_v1_label_map.json --json
    """
    from odvgkit.curate.lint import lint_file
    from odvgkit.errors import OdvgError, ProblemLog
    from odvgkit.io import read_label_map

    if max_tokens < 3:
        raise OdvgError(f"--max-tokens {max_tokens}: must be at least 3", exit_code=2)
    lm = read_label_map(label_map) if label_map is not None else None
    rep = reporter(quiet, json_mode)
    problems = ProblemLog(strict=strict)
    size = input_bytes(input)
    with rep.progress(f"lint {input.name}", total=size, unit="bytes") as adv:
        res = lint_file(input, lm, problems, tokenizer, max_tokens, label_map, adv)
    rows: dict[str, object] = {
        "input": str(input),
        "records": res.records,
        "vg_records": res.vg_records,
        "od_records": res.od_records,
        "spans": res.spans,
        "records_flagged": res.flagged_records,
    }
    if res.vg_records:
        rows["max_caption_tokens"] = res.max_caption_tokens
    if lm is not None:
        rows["max_positive_prompt_tokens"] = res.max_prompt_tokens
        rows["label_map_prompt_tokens"] = res.label_map_prompt_tokens
        rows["classes_fitting_prompt"] = res.classes_fitting
    if res.od_records and lm is None:
        rep.warn("OD records without --label-map: class prompts were not checked")
    rows["errors"] = problems.n_errors
    rows["warnings"] = problems.n_warnings
    table = [{"code": c, "records": n} for c, n in sorted(res.per_code_records.items())]
    rep.summary("lint", rows, problems, tables={"flagged": table} if table else None)
    if problems.n_errors:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("lint", rich_help_panel="Curate")(lint)
