"""``cec explain``: why one pair scored as it did (sentences, best matches, heat map)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from cec import _streams
from cec._missing import missing_dependency
from cec.cli._app import command
from cec.cli.options import InputFields, ScorerOptions, build_scorer, shared
from cec.cli.outputs import check_output
from cec.io import InputError, Record

__all__ = ["explain_command"]


def _find_item(records: Iterator[Record], item: str, path: Path) -> Record:
    """The record whose id is ``item``, else the ``item``-th record (1-based) when numeric."""
    nth = int(item) if item.isdigit() else None
    count, by_number = 0, None
    for rec in records:
        count += 1
        if rec.id == item:
            return rec
        if count == nth:
            by_number = rec
    if by_number is not None:
        return by_number
    raise InputError(f"no item with id {item!r} (and not an item number 1..{count})", path)


@command("explain")
@shared(InputFields, "fields")
@shared(ScorerOptions, "scorer_options")
def explain_command(
    generated: Annotated[
        str | None, typer.Argument(help="Generated explanation text.", show_default=False)
    ] = None,
    reference: Annotated[
        str | None, typer.Argument(help="Reference explanation text.", show_default=False)
    ] = None,
    input_path: Annotated[
        Path | None,
        typer.Option(
            "--input",
            "-i",
            help="Take the pair from this JSONL/CSV/TSV file.",
            rich_help_panel="Input",
        ),
    ] = None,
    item: Annotated[
        str | None,
        typer.Option(
            "--item", help="Item id (or 1-based item number) in --input.", rich_help_panel="Input"
        ),
    ] = None,
    fields: InputFields = InputFields(),  # noqa: B008 - frozen; options (see shared)
    threshold: Annotated[
        float,
        typer.Option(
            "--threshold",
            "-t",
            help="Best-match cosine under which a sentence is "
            "unsupported (generated) or uncovered (reference).",
            rich_help_panel="Output",
        ),
    ] = 0.5,
    heatmap: Annotated[
        Path | None,
        typer.Option(
            "--heatmap",
            help="Write the similarity heatmap here (.png, .svg or .pdf).",
            rich_help_panel="Output",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the alignment as JSON.", rich_help_panel="Output")
    ] = False,
    width: Annotated[
        int,
        typer.Option(
            "--width", min=20, help="Characters of each sentence shown.", rich_help_panel="Output"
        ),
    ] = 72,
    directional: Annotated[
        bool,
        typer.Option(
            "--directional",
            help="Also show the cause -> effect links found on each side, which were matched, "
            "agreeing or reversed, and the direction-aware score (docs/directional.md).",
            rich_help_panel="Output",
        ),
    ] = False,
    scorer_options: ScorerOptions = ScorerOptions(),  # noqa: B008 - as fields
) -> None:
    """Show why a pair scored as it did: sentences, best matches, what is uncovered/unsupported.

    Give the two texts, or --input FILE --item ID. With several references, the best-scoring one
    is shown.
    """
    from cec.align import HEATMAP_SUFFIXES

    if input_path is not None:
        if generated is not None or reference is not None:
            raise InputError("give either the two texts or --input with --item (not both)")
        if item is None:
            raise InputError("--input needs --item ID (an item id or a 1-based item number)")
        rec = _find_item(fields.read(input_path), item, input_path)
        gen_text, refs = rec.prediction, rec.references
    else:
        if generated is None or reference is None:
            raise InputError("give GENERATED and REFERENCE texts, or --input FILE --item ID")
        gen_text, refs = generated, [reference]
    if heatmap is not None and heatmap.suffix.lower() not in HEATMAP_SUFFIXES:
        raise InputError(
            f"--heatmap must end in one of {', '.join(HEATMAP_SUFFIXES)}, got {heatmap.name!r}"
        )
    check_output("--heatmap", heatmap, [input_path])
    if heatmap is not None:  # a missing matplotlib is found before anything is printed
        try:
            import matplotlib  # noqa: F401
        except ImportError as exc:
            raise InputError(f"--heatmap: {missing_dependency(exc) or exc}") from None
    scorer = build_scorer(scorer_options.cec_kwargs(), load=True)
    try:
        alignment = scorer.align(gen_text, refs if len(refs) > 1 else refs[0], threshold=threshold)
    except ValueError as exc:  # an empty side under --empty error
        raise InputError(str(exc)) from None
    sections = []
    if directional:  # links on each side, matches and verdicts (cec.links_view)
        from cec.links_view import add_link_section

        sections.append(add_link_section(scorer, alignment, gen_text, refs[alignment.best_ref]))
    if as_json:
        _streams.out().write(json.dumps(alignment.to_dict(), indent=2) + "\n")
    else:
        text = alignment.format(width=width, sections=sections)
        links = alignment.extras.get("causal_links") if directional else None
        if links and not links.get("empty"):
            from cec.directional import PairLinks

            # the score --directional asks for leads; the Eq. 2 breakdown below explains it
            report = PairLinks.from_dict(links)
            n_rev = len(report.reversed)
            text = (
                f"directional CEC = {report.sym:.3f}  (Eq. 2 {report.eq2:.3f}; {n_rev} "
                f"reversed link{'s' if n_rev != 1 else ''}: see Causal links below)\n"
                f"signature: {links['signature']}\n\n" + text
            )
        _streams.out().write(text + "\n")
    if heatmap is not None:
        try:
            written = alignment.heatmap(heatmap)
        except OSError as exc:  # a full disk: found only when writing
            raise InputError(f"cannot write ({exc.strerror or exc})", heatmap) from None
        (_streams.err() if as_json else _streams.out()).write(f"heatmap written to {written}\n")
