"""``odvgkit schema``: print or write the JSON Schemas of the ODVG format."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from odvgkit.cli._common import Force


def schema(
    name: Annotated[str, typer.Argument(help="record | label-map")] = "record",
    write: Annotated[Path | None, typer.Option("--write", help="Write every schema file into this directory instead.")] = None,
    force: Force = False,
) -> None:
    """Print the JSON Schema of an ODVG record or label map (generated from odvgkit's model).

    [bold]Examples[/bold]

      odvgkit schema record > odvg-record.schema.json

      odvgkit schema --write schemas/
    """
    from odvgkit.errors import OdvgError
    from odvgkit.schema import generate, render
    from odvgkit.schema import write as write_all

    if write is not None:
        for path in write_all(write):
            typer.echo(str(path))
        return
    files = {"record": "odvg-record.schema.json", "label-map": "label-map.schema.json"}
    if name not in files:
        raise OdvgError(f"unknown schema {name!r}; choose record or label-map", exit_code=2)
    typer.echo(render(generate()[files[name]]), nl=False)


def register(app: typer.Typer) -> None:
    app.command("schema", rich_help_panel="Curate")(schema)
