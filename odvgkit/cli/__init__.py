"""The ``odvgkit`` command line.

Every module in this package that defines ``register(app)`` adds its commands; modules are
loaded in name order so ``--help`` is stable. Command modules import heavy libraries only inside
the command body, so ``odvgkit --help`` stays fast and works without any optional extra.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import typer

from odvgkit import __version__
from odvgkit.errors import OdvgError

app = typer.Typer(
    name="odvgkit",
    help=(
        "Convert, curate, browse and train on ODVG grounding/detection datasets.\n\n"
        "Every command streams its input, writes outputs atomically, and ends with a summary "
        "(--json for scripts). Run 'odvgkit COMMAND --help' for examples."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"odvgkit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    """Convert, curate, browse and train on ODVG datasets."""


def _load_commands() -> None:
    for mod in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if mod.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{mod.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(app)


_load_commands()


def main() -> None:
    """Console-script entry point: user errors become one line on stderr and a non-zero exit."""
    try:
        app()
    except OdvgError as exc:
        sys.stderr.write(f"odvgkit: error: {exc}\n")
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        sys.exit(141)
    except OSError as exc:  # disk full, permission denied mid-write, …: the outputs were rolled back
        sys.stderr.write(f"odvgkit: error: {exc}\n")
        sys.exit(1)
