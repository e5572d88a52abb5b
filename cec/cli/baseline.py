"""``cec baseline``: the rescaling baseline of a model, from a corpus of explanations."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated

import typer

from cec import _streams
from cec.cli._app import command
from cec.cli.options import ScorerOptions, build_scorer, shared
from cec.cli.outputs import check_output
from cec.io import InputError

__all__ = ["baseline_command"]


@command("baseline")
@shared(ScorerOptions, "scorer_options", skip=("empty", "cache"))
def baseline_command(
    corpus: Annotated[
        Path,
        typer.Argument(
            metavar="CORPUS",
            help="Plain-text file, one explanation per line, each about a different item "
            "(blank lines are skipped).",
            show_default=False,
        ),
    ],
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="Where to write the baseline JSON."),
    ] = Path("baseline.json"),
    seed: Annotated[int, typer.Option("--seed", help="Seed of the unrelated pairing.")] = 0,
    name: Annotated[
        str | None,
        typer.Option("--name", help="Corpus name stored in the baseline (default: file name)."),
    ] = None,
    scorer_options: ScorerOptions = ScorerOptions(),  # noqa: B008 - frozen (see shared)
) -> None:
    """Make a rescaling baseline for a model: the mean CEC of unrelated explanation pairs.

    Each line of CORPUS is paired with another, random line (never itself) and the pair is
    scored; b is the mean, for the model and --precision given (a baseline holds for one
    precision). Use it with cec score --baseline FILE (or rescale=FILE in Python).
    The baseline shipped for the default model is made by
    cec baseline build/esnli-test-expl-2000.txt -o cec/baselines/all-MiniLM-L6-v2.json
    --name esnli-test-expl-2000 after python benchmarks/make_baseline_corpus.py
    (docs/rescaling.md).
    """
    from cec.io import check_readable

    check_readable(corpus)
    check_output("--output", output, [corpus])
    with open(corpus, encoding="utf-8") as fh:
        texts = [line.strip() for line in fh if line.strip()]
    if len(texts) < 2:
        raise InputError(f"needs at least 2 non-blank lines, found {len(texts)}", corpus)
    # pairs with an empty side are left out of b (not counted as 0)
    scorer = build_scorer(scorer_options.cec_kwargs(empty="nan"), load=True)
    from cec.rescale import compute_baseline

    with warnings.catch_warnings():
        from cec.scorer import EmptyTextWarning

        warnings.simplefilter("ignore", EmptyTextWarning)
        try:  # e.g. b outside the range a baseline of unrelated texts can have
            baseline = compute_baseline(scorer, texts, corpus=name or corpus.name, seed=seed)
        except ValueError as exc:
            raise InputError(str(exc), corpus) from None
    try:
        baseline.save(output)
    except OSError as exc:
        raise InputError(f"cannot write ({exc.strerror or exc})", output) from None
    _streams.out().write(
        f"baseline b = {baseline.value:.6f} (forward {baseline.forward:.6f}, backward "
        f"{baseline.backward:.6f}; {baseline.n_pairs} unrelated pairs of {baseline.corpus}) "
        f"for {baseline.model}@{baseline.weights}, hash {baseline.hash}\nwritten to {output}\n"
    )
