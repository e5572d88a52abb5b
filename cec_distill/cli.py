"""``cec-distill``: one subcommand per stage of the study.

Each stage module defines its own typer command function; this file only registers them.
Registration is lazy (the stage module is imported when its subcommand runs or when --help
lists it), so ``cec-distill label`` never imports torch training code.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="cec-distill",
    help="The causal-distillation study: label, train, generate, evaluate, stats, report, run.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """The causal-distillation study: label, train, generate, evaluate, stats, report, run."""
    # A callback keeps typer in group mode even while only one subcommand is registered
    # (with one command and no callback, typer would run it without its name).


# (subcommand, module, function). Each helper/stage adds its line here.
COMMANDS: list[tuple[str, str, str]] = [
    ("label", "cec_distill.teacher", "label_command"),
    ("evaluate", "cec_distill.evaluate", "evaluate_command"),
    ("compare", "cec_distill.evaluate", "compare_command"),
    ("report", "cec_distill.evaluate", "report_command"),
    ("train", "cec_distill.train", "train_command"),
    ("generate", "cec_distill.generate", "generate_command"),
    ("run", "cec_distill.pipeline", "run_command"),
]


def _register() -> None:
    for name, module, func in COMMANDS:
        fn = getattr(importlib.import_module(module), func)
        app.command(name)(fn)


def main() -> None:
    """Console entry point."""
    _register()
    app()


if __name__ == "__main__":
    main()
