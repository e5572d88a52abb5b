"""``cec score``: files of items in, per-item rows and a summary with its signature out.

Files are read twice: once to check them (and count items) before the model loads, once to
score them lazily, ``--chunk-size`` items at a time. Output is held back until the first chunk
has scored, then flushed after every chunk (so a killed run leaves whole rows, see ``--resume``).
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import time
import warnings
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from cec import _streams
from cec.cli._app import command, warn
from cec.cli.options import (
    EmptyPolicy,
    InputFields,
    OutputFormat,
    ScorerOptions,
    build_scorer,
    shared,
)
from cec.cli.outputs import check_output, same_file
from cec.cli.resume import (
    RESUME_FORMATS,
    RunRecord,
    check_resumed_row,
    check_run_record,
    run_record,
)
from cec.cli.summary import Summary
from cec.io import (
    DeferredOutput,
    InputError,
    ItemWriter,
    Record,
    output_format_for,
    read_item_rows,
    read_text_pairs,
)

__all__ = ["score_command"]


def _records(
    input_path: Path | None, pred: Path | None, refs: list[Path] | None, fields: InputFields
) -> Iterator[Record]:
    if input_path is not None:
        return fields.read(input_path)
    return read_text_pairs(pred, refs or [])  # type: ignore[arg-type]


def _progress(total: int | None, quiet: bool) -> Any:
    """A tqdm bar on stderr, shown only on a terminal and without --quiet."""
    from tqdm import tqdm  # not tqdm.auto: it imports asyncio (~0.15 s), and this bar is on stderr

    disable = quiet or not _streams.err().isatty()
    try:  # a terminal that reports no size (0 x 0) still gets a bar
        size = os.get_terminal_size(_streams.err().fileno())
        ncols, nrows = size.columns or 80, size.lines or 24
    except (OSError, ValueError):
        ncols, nrows = 80, 24
    return tqdm(
        total=total,
        unit="pair",
        file=_streams.err(),
        disable=disable,
        ncols=ncols,
        nrows=nrows,
        mininterval=0.5,
    )


@command("score")
@shared(InputFields, "fields")
@shared(ScorerOptions, "scorer_options")
def score_command(
    input_paths: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="INPUT",
            help="JSONL, CSV or TSV file(s) of items (- reads JSONL from stdin). Several files "
            "are scored in one run (the model loads once), each with its own summary.",
            show_default=False,
        ),
    ] = None,
    pred: Annotated[
        Path | None,
        typer.Option(
            "--pred",
            "-p",
            help="Plain-text predictions, one explanation per line.",
            rich_help_panel="Input",
        ),
    ] = None,
    ref: Annotated[
        list[Path] | None,
        typer.Option(
            "--ref",
            "-r",
            help="Plain-text references, one per line (repeat for several references).",
            rich_help_panel="Input",
        ),
    ] = None,
    fields: InputFields = InputFields(),  # noqa: B008 - frozen; options (see shared)
    fmt: Annotated[
        OutputFormat | None,
        typer.Option(
            "--format",
            "-f",
            help="Output: table, json, jsonl (one row per item), csv or tsv. Default: from the "
            "suffix of --output (.json, .jsonl, .csv, .tsv; .txt, none or stdout: table; "
            "another suffix needs --format).",
            rich_help_panel="Output",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write the output here instead of stdout (the suffix picks the format).",
            rich_help_panel="Output",
        ),
    ] = None,
    summary_only: Annotated[
        bool,
        typer.Option(
            "--summary-only",
            help="Only the corpus summary, no per-item rows.",
            rich_help_panel="Output",
        ),
    ] = False,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet",
            "-q",
            help="No progress bar and no warnings on stderr.",
            rich_help_panel="Output",
        ),
    ] = False,
    scorer_options: ScorerOptions = ScorerOptions(),  # noqa: B008 - as fields
    directional: Annotated[
        bool,
        typer.Option(
            "--directional",
            help="Direction-aware CEC: a cause -> effect link stated the other way round "
            "lowers the score (docs/directional.md). Off by default (Eq. 2); in the signature.",
            rich_help_panel="Scorer",
        ),
    ] = False,
    rescale: Annotated[
        bool,
        typer.Option(
            "--rescale",
            help="Baseline rescaling (x - b) / (1 - b), off by default; uses the baseline shipped "
            "for the default model, or --baseline. Recorded in the signature (docs/rescaling.md).",
            rich_help_panel="Scorer",
        ),
    ] = False,
    baseline: Annotated[
        Path | None,
        typer.Option(
            "--baseline",
            help="Baseline JSON made by `cec baseline` (implies --rescale).",
            rich_help_panel="Scorer",
        ),
    ] = None,
    chunk_size: Annotated[
        int,
        typer.Option(
            "--chunk-size",
            min=1,
            help="Items scored together (memory bound).",
            rich_help_panel="Scorer",
        ),
    ] = 1024,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue a stopped run: keep the rows already in --output (jsonl, csv or tsv) "
            "and score only the items after them. One input; the summary covers all items.",
            rich_help_panel="Output",
        ),
    ] = False,
    run_record_path: Annotated[
        str | None,
        typer.Option(
            "--run-record",
            metavar="PATH|none",
            help="Where to keep the run record (the signature --resume checks) of a jsonl, csv "
            "or tsv --output; none writes no record (the run cannot be resumed).  "
            "[default: OUTPUT.cec-run.json]",
            rich_help_panel="Output",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Score files of predictions against references; print per-item scores and the summary.

    Input is one or more JSONL/CSV/TSV files of items, or --pred and --ref plain-text files with
    one explanation per line. The summary always carries the signature to report with the score.
    """
    inputs = list(input_paths or [])
    if bool(inputs) == (pred is not None):
        raise InputError("give either INPUT file(s) or --pred with --ref (not both)")
    if pred is not None and not ref:
        raise InputError("--pred needs at least one --ref file")
    if inputs and ref:
        raise InputError("--ref goes with --pred; for an INPUT file use --ref-field")
    if sum(str(p) == "-" for p in inputs) > 1:
        raise InputError("INPUT: stdin (-) can be read only once")
    try:
        out_fmt = fmt.value if fmt is not None else output_format_for(output)
    except ValueError as exc:
        raise InputError(
            f"--output {output}: {exc}; give --format table, json, jsonl, csv or tsv"
        ) from None
    sources: list[Path | None] = list(inputs) if inputs else [None]
    multi = len(sources) > 1
    if resume and (output is None or str(output) == "-" or summary_only):
        raise InputError("--resume needs --output FILE with per-item rows (not --summary-only)")
    if resume and out_fmt not in RESUME_FORMATS:
        raise InputError(f"--resume needs --format jsonl, csv or tsv, got {out_fmt}")
    if resume and multi:
        raise InputError("--resume takes one INPUT file; resume each file's run on its own")
    if resume and output is not None and output.is_dir():
        raise InputError("--resume: --output is a folder", output)
    resuming = resume and output is not None and output.is_file()
    record = None if multi else run_record(output, out_fmt, summary_only)
    if record is not None and run_record_path is None and _is_device(output):
        record = None  # /dev/null, a pipe: no record beside it
    record = _chosen_record(record, run_record_path, resume)
    # every path written is checked before anything is read to score or the model loads
    read = [*inputs, pred, *(ref or []), baseline, scorer_options.cache]
    check_output("--output", output, read)
    check_output("--run-record" if run_record_path else "run record", record, read)
    check_output("--cache", scorer_options.cache, read[:-1])  # written too (SQLite)
    if record is not None and output is not None and same_file(record, output):
        raise InputError(f"--run-record {record} is the --output file; give another path")

    def records(src: Path | None) -> Iterator[Record]:
        return _records(src, pred, ref, fields)

    # the run record pins the input items the output's rows come from (--resume checks it)
    pin = RunRecord(record) if record is not None else None
    # 1. a validating pass over files before the model loads (counts items for the progress bar)
    totals: list[int | None] = []
    streams: dict[int, Iterator[Record]] = {}
    id_width = 12
    for k, src in enumerate(sources):
        if src is not None and str(src) == "-":
            # stdin is read once: its first chunk is read (and checked) before the model loads
            stream = records(src)
            head = list(itertools.islice(stream, chunk_size))
            streams[k] = itertools.chain(head, stream)
            totals.append(None)
            continue
        count = 0
        for rec in records(src):
            count += 1
            id_width = max(id_width, min(len(rec.id), 40))
            if pin is not None:
                pin.add(rec)
        totals.append(count)
    options = scorer_options.cec_kwargs(
        directional=directional or None,
        rescale=baseline if baseline is not None else (True if rescale else None),
    )
    show_steps = not quiet and _streams.err().isatty()
    if show_steps:  # loading is its own step; the bar starts once the model is ready
        _streams.err().write(
            f"cec: loading model {scorer_options.model or 'all-MiniLM-L6-v2'} ... "
        )
        _streams.err().flush()
    t0 = time.perf_counter()
    scorer = build_scorer(options, load=True)
    if show_steps:
        _streams.err().write(f"ready ({time.perf_counter() - t0:.1f} s)\n")
    base_signature = scorer.signature
    done: Iterator[tuple[str, float, float, float, bool]] | None = None
    earlier: bytes | None = None
    if resuming:
        assert output is not None and record is not None
        earlier = check_run_record(record, str(base_signature), output)
        done = read_item_rows(output, out_fmt)  # cuts a half-written last row now

    def record_run() -> None:  # beside the output, just before rows reach it (resumed too)
        if pin is not None:
            pin.save(str(base_signature))

    # 2. score lazily; the output is held back until the first rows scored without error (on
    # --resume, new rows are appended to the stopped run's rows once the first chunk is good)
    out = DeferredOutput(output, append=resuming, on_commit=record_run)
    side = _streams.out() if not out.to_stdout else _streams.err()  # where summaries beside rows go
    if multi and out_fmt == "json":
        out.write('{"files": [')
    summaries: list[tuple[str, Summary]] = []
    try:
        for k, src in enumerate(sources):
            label = str(src) if src is not None else str(pred)
            summary = _score_one(
                scorer,
                streams[k] if k in streams else records(src),
                totals[k],
                out,
                out_fmt,
                summary_only=summary_only,
                quiet=quiet,
                id_width=id_width,
                source=label if multi else None,
                first=k == 0,
                header=not (resuming and output is not None and output.stat().st_size > 0),
                done=done,
                earlier=earlier,
                pin=pin,
                output=output,
                last=k == len(sources) - 1,
                base_signature=base_signature,
                side=side,
                chunk_size=chunk_size,
            )
            summaries.append((label, summary))
        if multi and out_fmt == "json":
            out.write("\n]}\n")
        out.close()
    except BaseException:
        if out.committed:  # rows already out: finish the file, then report the error
            out.flush()
        raise
    for label, summary in summaries:
        where = f"{label}: " if multi else ""
        if summary.n == 0 and not quiet:
            warn(f"{where}no items to score: n=0, CEC is undefined (nan)")
        elif scorer_options.empty is EmptyPolicy.zero and summary.n_empty and not quiet:
            warn(
                f"{where}{summary.n_empty} of {summary.n} item(s) have no sentences on a side "
                "and score 0 (--empty zero); use --empty nan to leave them out of the mean"
            )
    _prepare_fast_start(scorer, quiet=quiet)


def _score_one(
    scorer: Any,
    recs: Iterator[Record],
    total: int | None,
    out: DeferredOutput,
    out_fmt: str,
    *,
    summary_only: bool,
    quiet: bool,
    id_width: int,
    source: str | None,
    first: bool,
    last: bool,
    base_signature: Any,
    side: Any,
    chunk_size: int,
    header: bool = True,
    done: Iterator[tuple[str, float, float, float, bool]] | None = None,
    earlier: bytes | None = None,
    pin: RunRecord | None = None,
    output: Path | None = None,
) -> Summary:
    """Score one input's records into ``out``; return its summary.

    ``done`` holds the rows of a stopped run (``--resume``): they are checked against the first
    records (ids, and the digests ``earlier`` of its run record) and counted in the summary, and
    only the records after them are scored. ``pin`` collects the digests of the records read
    (the run record of this run).
    """
    summary = Summary()
    item_fmt = None if summary_only else out_fmt
    if item_fmt is not None and source is not None and out_fmt == "table":
        out.write(("" if first else "\n") + f"== {source} ==\n")
    if item_fmt == "json" and source is not None and not first:
        out.write(",\n")
    writer = (
        ItemWriter(out, item_fmt, id_width=id_width, source=source, header=first and header)
        if item_fmt
        else None
    )
    pending: deque[Record] = deque()

    def pairs() -> Iterator[tuple[str, Any]]:
        n = 0
        for n, row in enumerate(done or (), start=1):  # rows of the stopped run (--resume)
            rec = next(recs, None)
            if rec is None:
                raise InputError(f"--resume: {output} has more rows than the input has items")
            if rec.id != row[0]:
                raise InputError(
                    f"--resume: row {n} of {output} has id {row[0]!r} but item {n} of the input "
                    f"has id {rec.id!r}; not the same input"
                )
            check_resumed_row(n, rec, earlier or b"", output)
            if pin is not None:
                pin.consume(n - 1, rec)
            summary.add(row[1], row[2], row[3], row[4], len(rec.references))
            bar.update(1)
        for k, rec in enumerate(recs, start=n):
            if pin is not None:
                pin.consume(k, rec)
            pending.append(rec)
            yield rec.prediction, rec.references if len(rec.references) > 1 else rec.references[0]

    with _progress(total, quiet) as bar, warnings.catch_warnings():
        from cec.scorer import EmptyTextWarning

        warnings.simplefilter("ignore", EmptyTextWarning)
        try:
            for ps in scorer.score_iter(pairs(), chunk_size=chunk_size):
                if pin is not None:  # stdin: the record holds every item read before its row
                    pin.cover()  # can reach the output
                rec = pending.popleft()
                summary.add(ps.forward, ps.backward, ps.sym, ps.empty, len(rec.references))
                if writer is not None:
                    writer.write(rec.id, ps.forward, ps.backward, ps.sym, ps.empty, ps.best_ref)
                if not pending:  # a whole chunk scored without error: let the output through,
                    out.commit()  # and flush it, so a killed run leaves every finished chunk
                    out.flush()
                bar.update(1)
        except InputError:
            raise
        except ValueError as exc:
            raise _locate(exc, pending, scorer) from None
    signature = str(base_signature.with_(nrefs=summary.nrefs_label))
    result = summary.to_dict(signature)
    if source is not None:
        result = {"input": source, **result}
    text = summary.format(signature)
    if source is not None:
        text = f"{source}: {text}"
    if writer is not None:
        writer.close(result, end="" if (source is not None and out_fmt == "json") else "\n")
    if out_fmt == "table":
        out.write(("\n" if writer else "") + text + "\n")
    elif summary_only and out_fmt == "json":
        if source is None:
            out.write(json.dumps(result, indent=2) + "\n")
        else:
            out.write(("" if first else ",") + "\n" + json.dumps(result, indent=2))
    elif summary_only and out_fmt == "jsonl":
        out.write(json.dumps(result) + "\n")
    elif summary_only and out_fmt in ("csv", "tsv"):
        w = csv.writer(out, lineterminator="\n", delimiter="\t" if out_fmt == "tsv" else ",")
        if first:
            w.writerow(list(result))
        w.writerow(["" if v is None else v for v in result.values()])
    elif out_fmt in ("jsonl", "csv", "tsv"):
        # rows went to the output; the summary goes beside them
        side.write(text + "\n")
    return summary


def _chosen_record(default: Path | None, given: str | None, resume: bool) -> Path | None:
    """The run record file: ``--run-record PATH``, none for ``--run-record none``, else the
    default beside the output (``None`` where a run writes none: stdout, table, json...)."""
    if given is not None and default is None:
        raise InputError(
            "--run-record goes with a jsonl, csv or tsv --output FILE of per-item rows and "
            "one INPUT (no run record is kept otherwise)"
        )
    if given is not None and given.strip().lower() == "none":
        if resume:
            raise InputError("--resume checks the run record: it cannot be --run-record none")
        return None
    return Path(given) if given is not None else default


def _is_device(path: Path | None) -> bool:
    """Whether ``path`` exists and is not a regular file (``/dev/null``, a named pipe)."""
    return path is not None and path.exists() and not path.is_file() and not path.is_dir()


def _prepare_fast_start(scorer: Any, *, quiet: bool = False) -> None:
    """After an fp32 CPU run on torch, keep a checked ONNX copy of the model for fast starts.

    The one-time preparation is announced on stderr in one line (unless ``--quiet``); where it
    cannot be made (a read-only cache folder) that line says so, and the run still succeeds.
    """
    from cec import _fast
    from cec.encode import SentenceTransformerEncoder

    enc = scorer.encoder
    if not isinstance(enc, SentenceTransformerEncoder) or enc._model is None:
        return  # not this kind of model, or it already ran from the copy

    line_open = [False]

    def announce(text: str) -> None:  # parts of one line: "cec: " starts it, "\n" ends it
        if quiet:
            return
        _streams.err().write(("" if line_open[0] else "cec: ") + text)
        _streams.err().flush()
        line_open[0] = not text.endswith("\n")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _fast.prepare(enc, announce=announce)


def _locate(exc: ValueError, pending: deque[Record], scorer: Any) -> InputError:
    """Name the file line of the item a scorer error is about.

    The only data error the scorer raises mid-stream is an empty text under ``--empty error``;
    the culprit is the first pending (read but not yet scored) item with an empty side.
    """
    if scorer.empty == "error":
        for rec in pending:
            if not scorer.segment(rec.prediction):
                return InputError(
                    f"{rec.source}: item {rec.id!r}: the prediction has no "
                    "sentences (--empty error)"
                )
            if not any(scorer.segment(r) for r in rec.references):
                return InputError(
                    f"{rec.source}: item {rec.id!r}: the reference has no sentences (--empty error)"
                )
    return InputError(str(exc))
