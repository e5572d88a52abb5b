"""The ``cec`` typer app, its ``--version`` flag, and how the commands speak on stderr."""

from __future__ import annotations

import functools
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from cec import _streams, _typer_help
from cec._version import __version__

_typer_help.tidy()

__all__ = ["app", "command", "warn", "error", "showwarning"]

F = TypeVar("F", bound=Callable[..., Any])

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
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            help="Show what third-party libraries print while they load (held back otherwise; "
            "also CEC_VERBOSE=1).",
        ),
    ] = False,
) -> None:
    """Causal Explanation Coherence: score generated explanations against references."""
    if verbose:
        os.environ["CEC_VERBOSE"] = "1"


def command(name: str) -> Callable[[F], F]:
    """Register a ``cec`` subcommand whose body runs with third-party output held back.

    Every command is registered through here (a test checks it), so no library that a command
    imports or loads can print on the user's stdout or stderr (:mod:`cec._streams`); the command
    itself writes through :func:`cec._streams.out` and :func:`cec._streams.err`.
    """

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def held(*args: Any, **kwargs: Any) -> Any:
            with _streams.hold_third_party():
                return func(*args, **kwargs)

        held._cec_held = True  # type: ignore[attr-defined]
        app.command(name)(held)
        return held  # type: ignore[return-value]

    return decorate


def warn(message: str) -> None:
    """Print ``cec: warning: message`` on stderr."""
    _streams.err().write(f"cec: warning: {message}\n")


def error(message: str) -> None:
    """Print ``cec: error: message`` on stderr."""
    _streams.err().write(f"cec: error: {message}\n")


_OWN = tuple(
    str(Path(__file__).resolve().parents[2] / pkg) + os.sep for pkg in ("cec", "cec_distill")
)


def _issuer() -> str:
    """The file of the code that called ``warnings.warn`` (whatever its ``stacklevel``)."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_code.co_filename in (warnings.__file__, __file__):
        frame = frame.f_back
    return frame.f_code.co_filename if frame is not None else ""


def _is_own(category: type) -> bool:
    """Whether a warning is cec's: a cec warning class, or issued by cec's own code."""
    if getattr(category, "__module__", "").split(".")[0] in ("cec", "cec_distill"):
        return True
    try:
        where = str(Path(_issuer()).resolve())
    except (OSError, ValueError):
        return False
    return where.startswith(_OWN)


def showwarning(
    message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None
) -> None:
    """A ``warnings.showwarning`` that prints one ``cec: warning:`` line (no source line).

    A third party's warning is written to ``sys.stderr`` instead, which a command holds back
    with the rest of third-party output (:mod:`cec._streams`; ``--verbose`` shows it).
    """
    if _is_own(category):
        warn(f"{message} ({category.__name__})")
    else:
        sys.stderr.write(f"{filename}:{lineno}: {category.__name__}: {message}\n")
