"""The ``cec`` typer app, its ``--version`` flag, and how the commands speak on stderr."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from cec import _typer_help
from cec._version import __version__

_typer_help.tidy()

__all__ = ["app", "warn", "error", "showwarning"]

app = typer.Typer(
    name="cec",
    help="Causal Explanation Coherence: score generated explanations against references.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        sys.stdout.write(f"cec {__version__}\n")
        raise typer.Exit()


@app.callback()
def _cli(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            help="Print the version and exit.",
            callback=_print_version,
            is_eager=True,
        ),
    ] = False,
) -> None:
    """Causal Explanation Coherence: score generated explanations against references."""


def warn(message: str) -> None:
    """Print ``cec: warning: message`` on stderr."""
    sys.stderr.write(f"cec: warning: {message}\n")


def error(message: str) -> None:
    """Print ``cec: error: message`` on stderr."""
    sys.stderr.write(f"cec: error: {message}\n")


def showwarning(
    message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None
) -> None:
    """A ``warnings.showwarning`` that prints one ``cec: warning:`` line (no source line)."""
    warn(f"{message} ({category.__name__})")
