"""The ``cec`` console command: ``cec score`` files, ``cec explain`` one pair, ``cec baseline``.

Exit codes: 0 success; 2 usage error or bad input (missing or unreadable file, missing field,
mismatched line counts, bad option value, a model that is not there, an optional dependency
that is not installed), with one line on stderr naming the file and line; 1 an unexpected error
(a bug); 130 interrupted. Set ``CEC_DEBUG=1`` to see tracebacks. Nothing is written to the
output before the input is known good: files are checked before the model loads, and rows are
held back until the first chunk has scored.

The package: ``_app`` (the typer app, ``--version``, stderr messages), ``options`` (the options
the commands share, defined once, and the scorer they build), ``summary`` and ``resume`` (what
``cec score`` keeps and checks), one module per command (``score``, ``explain``, ``baseline``),
and here the entry point :func:`main`.

Example (shell)::

    cec score examples/pairs.jsonl
    cec score --pred preds.txt --ref refs.txt --format json -o scores.json
    cec explain "CO2 traps heat. Seas rise." "Seas rise because CO2 traps heat." --heatmap sim.png
    cec baseline corpus.txt --model ./my-model -o my-baseline.json
"""

from __future__ import annotations

import os
import sys
import warnings

from cec import _streams
from cec._missing import missing_dependency
from cec._typer_help import with_version
from cec.cli import baseline as _baseline  # noqa: F401 - registers `cec baseline`
from cec.cli import explain as _explain  # noqa: F401 - registers `cec explain`
from cec.cli import score as _score  # noqa: F401 - registers `cec score`
from cec.cli._app import _print_version, app, error, showwarning
from cec.cli.options import record_user_offline
from cec.cli.summary import Summary
from cec.io import InputError

__all__ = ["app", "main", "Summary", "EXIT_OK", "EXIT_UNEXPECTED", "EXIT_BAD_INPUT"]

EXIT_OK, EXIT_UNEXPECTED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130

for _command in app.registered_commands:  # `cec score --version` works as `cec --version` does
    _command.callback = with_version(_command.callback, _print_version)  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code (0 ok, 2 usage/bad input, 1 unexpected, 130 interrupt).

    Called as a function (``cec.cli.main([...])``), it gives the process back what it changes
    while it runs: ``warnings.showwarning`` and the ``HF_HUB_OFFLINE`` variable.
    """
    offline_before = os.environ.get("HF_HUB_OFFLINE")
    showwarning_before = warnings.showwarning
    try:
        return _main(argv)
    finally:
        warnings.showwarning = showwarning_before
        if offline_before is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = offline_before


def _main(argv: list[str] | None) -> int:
    debug = os.environ.get("CEC_DEBUG", "") not in ("", "0")
    # build_scorer sets HF_HUB_OFFLINE unless downloads are on; its messages need the user's own
    record_user_offline("HF_HUB_OFFLINE" in os.environ)
    warnings.showwarning = showwarning
    try:
        app(args=argv, prog_name="cec")  # usage errors: typer prints them and exits 2
        return EXIT_OK
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (EXIT_OK if code is None else EXIT_UNEXPECTED)
    except KeyboardInterrupt:
        error("interrupted")
        return EXIT_INTERRUPTED
    except InputError as exc:
        if debug:
            raise
        error(str(exc))
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # e.g. `cec score ... | head`
        sys.stderr.close()
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - the one place that turns anything into exit 1
        if debug:
            raise
        missing = missing_dependency(exc)
        if missing is not None:  # an optional extra that is not installed: a user-facing case
            error(missing)
            return EXIT_BAD_INPUT
        hint = "; CEC_VERBOSE=1 shows what libraries printed" if _streams.held_text() else ""
        error(f"unexpected {type(exc).__name__}: {exc} (set CEC_DEBUG=1 for a traceback{hint})")
        return EXIT_UNEXPECTED
