"""``cec-distill``: one subcommand per stage of the study.

Each stage module defines its own typer command function; this file only registers them.
Registration imports the stage modules (for their options); a stage whose optional
dependencies (the ``distill`` extra) are not installed is still listed, and running it says
what to install.

Exit codes, as for ``cec``: 0 success; 2 a user error (a missing or unreadable file, a bad
option value or config key, ``-k`` larger than the data, an extra that is not installed), with
one line on stderr naming the argument or file; 1 an unexpected error (a bug); 130
interrupted. Set ``CEC_DEBUG=1`` to see tracebacks.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Annotated, Any

import typer

from cec import _typer_help
from cec._missing import missing_dependency
from cec._typer_help import with_version
from cec._version import __version__

_typer_help.tidy()

EXIT_OK, EXIT_UNEXPECTED, EXIT_USER_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130

HELP = "The causal-distillation study: label, train, generate, evaluate, compare, report, run."

app = typer.Typer(
    name="cec-distill",
    help=HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        sys.stdout.write(f"cec-distill {__version__}\n")
        raise typer.Exit()


@app.callback(help=HELP)
def _root(
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
    # A callback keeps typer in group mode even while only one subcommand is registered
    # (with one command and no callback, typer would run it without its name).
    pass


# (subcommand, module, function). Each helper/stage adds its line here.
COMMANDS: list[tuple[str, str, str]] = [
    ("label", "cec_distill.teacher", "label_command"),
    ("evaluate", "cec_distill.evaluate", "evaluate_command"),
    ("compare", "cec_distill.evaluate", "compare_command"),
    ("report", "cec_distill.evaluate", "report_command"),
    ("meta-eval", "cec_distill.meta_eval", "meta_eval_command"),
    ("train", "cec_distill.train", "train_command"),
    ("generate", "cec_distill.generate", "generate_command"),
    ("run", "cec_distill.pipeline", "run_command"),
    ("plan", "cec_distill.plan", "plan_command"),
]


class UserError(Exception):
    """A condition the user can fix; main() prints its message and exits 2."""


def _unavailable(name: str, message: str) -> Any:
    def command(args: Annotated[list[str] | None, typer.Argument(hidden=True)] = None) -> None:
        raise UserError(f"{name}: {message}")

    command.__doc__ = f"(not available: {message})"
    return command


def _register() -> None:
    if app.registered_commands:
        return
    for name, module, func in COMMANDS:
        try:
            fn = getattr(importlib.import_module(module), func)
        except ImportError as exc:
            message = missing_dependency(exc)
            if message is None:
                raise
            app.command(
                name,
                context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
            )(with_version(_unavailable(name, message), _print_version))
            continue
        app.command(name)(with_version(fn, _print_version))  # `cec-distill run --version`


def _user_message(exc: BaseException) -> str | None:
    """One line for an exception that is the user's to fix, else None (a bug)."""
    if isinstance(exc, UserError):
        return str(exc)
    missing = missing_dependency(exc)
    if missing is not None:
        return missing
    if isinstance(exc, FileNotFoundError):
        if exc.filename is not None:
            return f"{exc.filename}: no such file or directory"
        return str(exc)
    if isinstance(exc, (IsADirectoryError, PermissionError, NotADirectoryError)):
        return f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc)
    if isinstance(exc, ValueError):  # bad values: options, config keys, data (ConfigError too)
        return " ".join(str(exc).split()) or type(exc).__name__
    return None


def main(argv: list[str] | None = None) -> int:
    """Console entry point; returns the exit code (0, 2 user error, 1 unexpected, 130)."""
    debug = os.environ.get("CEC_DEBUG", "") not in ("", "0")
    try:
        _register()
        app(args=argv, prog_name="cec-distill")
        return EXIT_OK
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (EXIT_OK if code is None else EXIT_UNEXPECTED)
    except KeyboardInterrupt:
        sys.stderr.write("cec-distill: error: interrupted\n")
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the one place that decides exit 1 or 2
        if debug:
            raise
        message = _user_message(exc)
        if message is not None:
            sys.stderr.write(f"cec-distill: error: {message}\n")
            return EXIT_USER_ERROR
        sys.stderr.write(
            f"cec-distill: error: unexpected {type(exc).__name__}: {exc} "
            "(set CEC_DEBUG=1 for a traceback)\n"
        )
        return EXIT_UNEXPECTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
