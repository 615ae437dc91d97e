"""Objects365 maintenance: ``odvgkit fix-names o365``, ``odvgkit o365 image-info``, ``odvgkit o365 fix-wh``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from odvgkit.cli._common import Force, Json, Quiet, Strict, input_bytes, reporter

fix_names_app = typer.Typer(help="Fix category names of a source dataset.", no_args_is_help=True)
o365_app = typer.Typer(help="Objects365: measure true image sizes and fix the annotations.", no_args_is_help=True)


def _done(rep, title: str, rows: dict, problems) -> None:
    rep.summary(title, rows, problems)
    if problems.n_errors:
        raise typer.Exit(1)


@fix_names_app.command("o365")
def fix_names_o365(
    input: Annotated[Path, typer.Argument(help="Objects365 v2 json (zhiyuan_objv2_train.json / _val.json).")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Default: <input>_fixname.json.")] = None,
    table: Annotated[Path | None, typer.Option("--fix-name-map", help="CSV id,original,corrected. Default: the table shipped in odvgkit.")] = None,
    strict: Strict = False,
    force: Force = False,
    quiet: Quiet = False,
    json_mode: Json = False,
) -> None:
    """Apply the Objects365 v2 category-name corrections (13 typos: Bakset → Basket, …).

    The table ships inside odvgkit (upstream's default path to it does not exist). Everything
    but category names is copied unchanged; the input is streamed.

    [bold]Examples[/bold]

      odvgkit fix-names o365 data/objects365v2/annotations/zhiyuan_objv2_train.json

      odvgkit fix-names o365 zhiyuan_objv2_val.json -o zhiyuan_objv2_val_fixname.json
    """
    from odvgkit.convert.base import default_output
    from odvgkit.convert.objects365 import fix_names
    from odvgkit.errors import ProblemLog

    rep = reporter(quiet, json_mode)
    problems = ProblemLog(strict=strict)
    out = output or default_output(input, "_fixname.json")
    size = input_bytes(input)
    with rep.progress(f"fix-names {input.name}", total=size, unit="bytes") as advance:
        stats = fix_names(input, out, table, problems=problems, on_bytes=advance)
    _done(rep, "fix-names o365", {"output": str(out), "renamed": stats["renamed"]}, problems)


@o365_app.command("image-info")
def image_info(
    input: Annotated[Path, typer.Argument(help="Objects365 json whose images[] to measure.")],
    image_dir: Annotated[Path, typer.Option("--image-dir", help="Directory that file_name is relative to.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Default: <input>_info.tsv.")] = None,
    no_exif: Annotated[bool, typer.Option("--no-exif", help="Do not apply EXIF orientation.")] = False,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Threads reading headers.")] = 16,
    strict: Strict = False,
    force: Force = False,
    quiet: Quiet = False,
    json_mode: Json = False,
) -> None:
    """Measure every image's true size from its header (EXIF aware, in parallel).

    Writes a TSV "id file_name height width" in images[] order; unreadable or missing images are
    reported and left out (o365 fix-wh then drops them).

    [bold]Examples[/bold]

      odvgkit o365 image-info annotations/zhiyuan_objv2_train.json --image-dir data/objects365v2/train

      odvgkit o365 image-info zhiyuan_objv2_val.json --image-dir val/ -o val_info.tsv --workers 32
    """
    from odvgkit.convert.base import default_output
    from odvgkit.convert.objects365 import image_info as measure
    from odvgkit.errors import ProblemLog

    rep = reporter(quiet, json_mode)
    problems = ProblemLog(strict=strict)
    out = output or default_output(input, "_info.tsv")
    with rep.progress("o365 image-info", unit="images") as advance:
        stats = measure(input, image_dir, out, exif=not no_exif, workers=workers, problems=problems, on_image=advance)
    _done(rep, "o365 image-info", {"output": str(out), **stats}, problems)


@o365_app.command("fix-wh")
def fix_wh(
    input: Annotated[Path, typer.Argument(help="Objects365 json (train or val).")],
    info: Annotated[Path, typer.Option("--info", help="Sizes from 'o365 image-info' (or upstream's info txt).")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Default: <input>_fixwh.json (val never overwrites train).")] = None,
    mode: Annotated[str, typer.Option("--mode", help="fix: replace wrong sizes; drop: remove those images.")] = "fix",
    strict: Strict = False,
    force: Force = False,
    quiet: Quiet = False,
    json_mode: Json = False,
) -> None:
    """Fix (or drop) images whose stored width/height disagree with the measured ones.

    Images missing from the info table are dropped with their annotations. The output is named
    after its own input, so converting val and train never overwrite each other.

    [bold]Examples[/bold]

      odvgkit o365 fix-wh annotations/zhiyuan_objv2_train.json --info zhiyuan_objv2_train_info.tsv

      odvgkit o365 fix-wh zhiyuan_objv2_val.json --info val_info.tsv --mode drop
    """
    from odvgkit.convert.base import default_output
    from odvgkit.convert.objects365 import fix_wh as fix
    from odvgkit.errors import ProblemLog

    rep = reporter(quiet, json_mode)
    problems = ProblemLog(strict=strict)
    out = output or default_output(input, "_fixwh.json")
    size = input_bytes(input)
    with rep.progress(f"fix-wh {input.name}", total=size, unit="bytes") as advance:
        stats = fix(input, info, out, mode=mode, problems=problems, on_bytes=advance)
    _done(rep, "o365 fix-wh", {"output": str(out), **stats}, problems)


def register(app: typer.Typer) -> None:
    app.add_typer(fix_names_app, name="fix-names", rich_help_panel="Convert")
    app.add_typer(o365_app, name="o365", rich_help_panel="Convert")
