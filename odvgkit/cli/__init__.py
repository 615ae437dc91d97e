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


def _direct_command(argv: list[str]):  # -> click.Command | None
    """``odvgkit GROUP COMMAND ARGS…``: the click object of that one command, else None.

    Why: typer builds the click object of every command of every group before it parses a
    single argument, inspecting each signature (~0.1 s of every run: a tenth of a whole
    goldg2odvg conversion). The invoked command runs the same either way; help, completion,
    ``--version``, nested groups and group callbacks take the full path.
    """
    import os

    try:  # typer internals (typer._click exists from typer 0.2x on): without them, typer's full path
        from typer._click.utils import _detect_program_name  # noqa: F401  (main() uses it)
        from typer.main import get_command_from_info, get_command_name
    except ImportError:
        return None
    if len(argv) < 2 or "-h" in argv or "--help" in argv or any(k.startswith("_ODVGKIT") for k in os.environ):
        return None
    group = next((g for g in app.registered_groups if g.name == argv[0]), None)
    sub = group.typer_instance if group is not None else None
    if sub is None or sub.registered_callback is not None or sub.registered_groups:
        return None
    # a group of its own class (explain's argument rewriting), settings or callbacks: the full path
    settings = [getattr(info, name, None) for info in (group, sub.info)
                for name in ("cls", "context_settings", "callback", "result_callback", "chain")]
    if not all(v is None or v is False or type(v).__name__ == "DefaultPlaceholder" for v in settings):
        return None
    info = next((c for c in sub.registered_commands
                 if c.callback is not None and (c.name or get_command_name(c.callback.__name__)) == argv[1]), None)
    if info is None:
        return None
    try:
        return get_command_from_info(info, pretty_exceptions_short=app.pretty_exceptions_short,
                                     rich_markup_mode=app.rich_markup_mode)
    except TypeError:  # another typer's signature: its full path
        return None


def main() -> None:
    """Console-script entry point: user errors become one line on stderr and a non-zero exit."""
    try:
        command = _direct_command(sys.argv[1:])
        if command is not None:
            from typer._click.utils import _detect_program_name  # click's own name for usage lines

            command.main(sys.argv[3:], prog_name=f"{_detect_program_name()} {sys.argv[1]} {sys.argv[2]}",
                         **app.info.context_settings)
        else:
            app()
    except OdvgError as exc:
        sys.stderr.write(f"odvgkit: error: {exc}\n")
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        sys.exit(141)
    except OSError as exc:  # disk full, permission denied mid-write, …: the outputs were rolled back
        sys.stderr.write(f"odvgkit: error: {exc}\n")
        sys.exit(1)
