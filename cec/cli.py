"""The ``cec`` console command: ``cec score`` files, ``cec explain`` one pair.

Exit codes: 0 success; 2 usage error or bad input (missing or unreadable file, missing field,
mismatched line counts, bad option value, a model that is not there, an optional dependency
that is not installed), with one line on stderr naming the file and line; 1 an unexpected error
(a bug); 130 interrupted. Set ``CEC_DEBUG=1`` to see tracebacks. Nothing is written to the
output before the input is known good: files are checked before the model loads, and rows are
held back until the first chunk has scored.

Example (shell)::

    cec score examples/pairs.jsonl
    cec score --pred preds.txt --ref refs.txt --format json -o scores.json
    cec explain "CO2 traps heat. Seas rise." "Seas rise because CO2 traps heat." --heatmap sim.png
    cec baseline corpus.txt --model ./my-model -o my-baseline.json
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import os
import sys
import time
import warnings
from collections import deque
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from cec import _typer_help
from cec._missing import missing_dependency
from cec._version import __version__
from cec.io import (
    DeferredOutput,
    InputError,
    ItemWriter,
    Record,
    output_format_for,
    read_item_rows,
    read_records,
    read_text_pairs,
)
from cec.segment import DEFAULT_SPLITTER, available_splitters

_typer_help.tidy()

__all__ = ["app", "main", "Summary", "EXIT_OK", "EXIT_UNEXPECTED", "EXIT_BAD_INPUT"]

EXIT_OK, EXIT_UNEXPECTED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130

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


class OutputFormat(str, Enum):
    table = "table"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"
    tsv = "tsv"


class InputFormat(str, Enum):
    jsonl = "jsonl"
    csv = "csv"
    tsv = "tsv"


class EmptyPolicy(str, Enum):
    zero = "zero"
    nan = "nan"
    error = "error"


# ---------------------------------------------------------------------------------------------
# scorer options shared by the subcommands (map 1:1 to cec.CEC keyword arguments)
# ---------------------------------------------------------------------------------------------
ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="Sentence-transformers model directory, or a Hugging Face name already in the "
        "local cache (default: the embedded all-MiniLM-L6-v2). cec runs offline: see "
        "--allow-download.",
        rich_help_panel="Scorer",
    ),
]
DeviceOpt = Annotated[
    str | None,
    typer.Option(
        "--device",
        help="cpu, cuda, cuda:1... (default: CUDA when present).",
        rich_help_panel="Scorer",
    ),
]
BatchOpt = Annotated[
    int,
    typer.Option(
        "--batch-size", min=1, help="Sentences per encoder forward pass.", rich_help_panel="Scorer"
    ),
]
SplitterOpt = Annotated[
    str | None,
    typer.Option(
        "--splitter",
        help="Sentence splitter: "
        + ", ".join(available_splitters())
        + f" (default {DEFAULT_SPLITTER}); lines: one sentence per line, for pre-split steps;"
        " see docs/segmentation.md.",
        rich_help_panel="Scorer",
    ),
]
AllowDownloadOpt = Annotated[
    bool,
    typer.Option(
        "--allow-download",
        help="Let a --model name that is not in the local Hugging Face cache be downloaded "
        "(cec never uses the network otherwise).",
        rich_help_panel="Scorer",
    ),
]
RescaleOpt = Annotated[
    bool,
    typer.Option(
        "--rescale",
        help="Baseline rescaling (x - b) / (1 - b), off by default; uses the baseline shipped "
        "for the default model, or --baseline. Recorded in the signature (docs/rescaling.md).",
        rich_help_panel="Scorer",
    ),
]
BaselineOpt = Annotated[
    Path | None,
    typer.Option(
        "--baseline",
        help="Baseline JSON made by `cec baseline` (implies --rescale).",
        rich_help_panel="Scorer",
    ),
]
EmptyOpt = Annotated[
    EmptyPolicy,
    typer.Option(
        "--empty",
        help="Score of a pair with no sentences on a side: zero (warns), nan (left out of "
        "the mean), error (exit 2).",
        rich_help_panel="Scorer",
    ),
]


def scorer_options(
    model: str | None,
    device: str | None,
    batch_size: int,
    splitter: str | None,
    empty: EmptyPolicy,
    **extra: Any,
) -> dict[str, Any]:
    """Keyword arguments for :class:`cec.CEC` from the CLI options (``None`` means default)."""
    opts: dict[str, Any] = {"batch_size": batch_size, "empty": empty.value}
    for key, value in {"model": model, "device": device, "splitter": splitter, **extra}.items():
        if value is not None:
            opts[key] = value
    return opts


_USER_OFFLINE: bool | None = None  # whether the user set HF_HUB_OFFLINE (main() records it)


def build_scorer(options: dict[str, Any], *, load: bool = False) -> Any:
    """A :class:`cec.CEC` for the options; bad option values become :class:`InputError`.

    The CLI runs offline (``HF_HUB_OFFLINE=1``) unless ``allow_download`` is set. With
    ``load``, the model is loaded here (and a model given by the user that does not load is a
    user error), so that nothing is printed before the model is ready.
    """
    user_offline = _USER_OFFLINE if _USER_OFFLINE is not None else "HF_HUB_OFFLINE" in os.environ
    if not options.get("allow_download"):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from cec.scorer import CEC

    try:
        scorer = CEC(**options)
    except (TypeError, ValueError, FileNotFoundError) as exc:
        message = str(exc)
        if "not in the Hugging Face cache" in message and not user_offline:
            name = options.get("model")
            message = (
                f"--model: {name!r} is not a local directory and not in the Hugging Face cache; "
                "cec runs offline by default: add --allow-download to download it, or give a "
                "local model directory"
            )
        raise InputError(message) from None
    if load:
        try:
            scorer.encoder.encode_array(["cec"])  # load the weights and run them once
        except ImportError:
            raise
        except Exception as exc:  # noqa: BLE001 - a user-given model that does not load
            if options.get("model") is None:
                raise
            raise InputError(
                f"--model: {options['model']!r} could not be loaded as a sentence-transformers "
                f"model ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
            ) from None
    return scorer


# ---------------------------------------------------------------------------------------------
# summary with running sums only
# ---------------------------------------------------------------------------------------------
class Summary:
    """Corpus summary from running sums (bounded memory); NaN scores are left out of the means.

    Examples:
        >>> s = Summary()
        >>> s.add(1.0, 0.5, 0.75, False, 1); s.add(0.0, 0.0, 0.0, True, 1)
        >>> round(s.mean, 3), s.n, s.n_empty
        (0.375, 2, 1)
    """

    def __init__(self) -> None:
        self.n = self.n_empty = self.n_scored = 0
        self.sum_fwd = self.sum_bwd = self.sum_sym = 0.0
        self.nrefs: set[int] = set()

    def add(self, forward: float, backward: float, sym: float, empty: bool, nrefs: int) -> None:
        self.n += 1
        self.n_empty += bool(empty)
        self.nrefs.add(nrefs)
        if not math.isnan(sym):
            self.n_scored += 1
            self.sum_fwd += forward
            self.sum_bwd += backward
            self.sum_sym += sym

    def _avg(self, total: float) -> float:
        return total / self.n_scored if self.n_scored else math.nan

    @property
    def mean(self) -> float:
        return self._avg(self.sum_sym)

    @property
    def nrefs_label(self) -> str:
        return (
            str(next(iter(self.nrefs))) if len(self.nrefs) == 1 else ("var" if self.nrefs else "1")
        )

    def to_dict(self, signature: str) -> dict[str, Any]:
        def plain(x: float) -> float | None:
            return None if math.isnan(x) else x

        return {
            "cec": plain(self.mean),
            "forward": plain(self._avg(self.sum_fwd)),
            "backward": plain(self._avg(self.sum_bwd)),
            "n": self.n,
            "n_empty": self.n_empty,
            "signature": signature,
        }

    def format(self, signature: str, width: int = 4) -> str:
        d = self.to_dict(signature)

        def f(x: float | None) -> str:
            return "nan" if x is None else f"{x:.{width}f}"

        return (
            f"CEC = {f(d['cec'])} (forward {f(d['forward'])}, backward {f(d['backward'])}; "
            f"n={self.n}, empty={self.n_empty})\nsignature: {signature}"
        )


# ---------------------------------------------------------------------------------------------
# cec score
# ---------------------------------------------------------------------------------------------
def _records(
    input_path: Path | None,
    pred: Path | None,
    refs: list[Path] | None,
    input_format: InputFormat | None,
    pred_field: str,
    ref_fields: list[str],
    id_field: str,
) -> Iterator[Record]:
    if input_path is not None:
        return read_records(
            input_path,
            fmt=input_format.value if input_format else None,
            pred_field=pred_field,
            ref_fields=ref_fields,
            id_field=id_field or None,
        )
    return read_text_pairs(pred, refs or [])  # type: ignore[arg-type]


def _progress(total: int | None, quiet: bool) -> Any:
    """A tqdm bar on stderr, shown only on a terminal and without --quiet."""
    from tqdm.auto import tqdm

    disable = quiet or not sys.stderr.isatty()
    try:  # a terminal that reports no size (0 x 0) still gets a bar
        size = os.get_terminal_size(sys.stderr.fileno())
        ncols, nrows = size.columns or 80, size.lines or 24
    except (OSError, ValueError):
        ncols, nrows = 80, 24
    return tqdm(
        total=total,
        unit="pair",
        file=sys.stderr,
        disable=disable,
        ncols=ncols,
        nrows=nrows,
        mininterval=0.5,
    )


@app.command("score")
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
    input_format: Annotated[
        InputFormat | None,
        typer.Option(
            "--input-format",
            help="Input format (default: from the suffix).",
            rich_help_panel="Input",
        ),
    ] = None,
    pred_field: Annotated[
        str,
        typer.Option(
            "--pred-field",
            help="Field/column with the generated explanation.",
            rich_help_panel="Input",
        ),
    ] = "prediction",
    ref_field: Annotated[
        list[str] | None,
        typer.Option(
            "--ref-field",
            help="Field/column with the reference; a JSONL field may hold a list. "
            "Repeat for several references.  [default: reference]",
            rich_help_panel="Input",
            show_default=False,
        ),
    ] = None,
    id_field: Annotated[
        str,
        typer.Option(
            "--id-field",
            help="Field/column with the item id (items without one are numbered).",
            rich_help_panel="Input",
        ),
    ] = "id",
    fmt: Annotated[
        OutputFormat | None,
        typer.Option(
            "--format",
            "-f",
            help="Output: table, json, jsonl (one row per item), csv or tsv. Default: from the "
            "suffix of --output (.json, .jsonl, .csv, .tsv), else table.",
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
    model: ModelOpt = None,
    allow_download: AllowDownloadOpt = False,
    device: DeviceOpt = None,
    batch_size: BatchOpt = 64,
    splitter: SplitterOpt = None,
    empty: EmptyOpt = EmptyPolicy.zero,
    directional: Annotated[
        bool,
        typer.Option(
            "--directional",
            help="Direction-aware CEC: a cause -> effect link stated the other way round "
            "lowers the score (docs/directional.md). Off by default (Eq. 2); in the signature.",
            rich_help_panel="Scorer",
        ),
    ] = False,
    rescale: RescaleOpt = False,
    baseline: BaselineOpt = None,
    chunk_size: Annotated[
        int,
        typer.Option(
            "--chunk-size",
            min=1,
            help="Items scored together (memory bound).",
            rich_help_panel="Scorer",
        ),
    ] = 1024,
    precision: Annotated[
        str,
        typer.Option(
            "--precision",
            help="Encoder numeric path: fp32, bf16, fp16 (CUDA), int8, onnx, onnx-int8; "
            "see docs/performance.md. Recorded in the signature.",
            rich_help_panel="Scorer",
        ),
    ] = "fp32",
    cache: Annotated[
        Path | None,
        typer.Option(
            "--cache",
            help="SQLite embedding cache file, shared safely between runs and processes "
            "(sentences seen before are not encoded again; scores are unchanged).",
            rich_help_panel="Scorer",
        ),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue a stopped run: keep the rows already in --output (jsonl, csv or tsv) "
            "and score only the items after them. One input; the summary covers all items.",
            rich_help_panel="Output",
        ),
    ] = False,
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
    ref_fields = ref_field or ["reference"]
    out_fmt = fmt.value if fmt is not None else output_format_for(output)
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

    def records(src: Path | None) -> Iterator[Record]:
        return _records(src, pred, ref, input_format, pred_field, ref_fields, id_field)

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
        totals.append(count)
    options = scorer_options(
        model,
        device,
        batch_size,
        splitter,
        empty,
        precision=precision,
        cache=cache,
        allow_download=allow_download or None,
        directional=directional or None,
        rescale=baseline if baseline is not None else (True if rescale else None),
    )
    show_steps = not quiet and sys.stderr.isatty()
    if show_steps:  # loading is its own step; the bar starts once the model is ready
        sys.stderr.write(f"cec: loading model {model or 'all-MiniLM-L6-v2'} ... ")
        sys.stderr.flush()
    t0 = time.perf_counter()
    scorer = build_scorer(options, load=True)
    if show_steps:
        sys.stderr.write(f"ready ({time.perf_counter() - t0:.1f} s)\n")
    base_signature = scorer.signature
    run_record = None if multi else _run_record(output, out_fmt, summary_only)
    done: Iterator[tuple[str, float, float, float, bool]] | None = None
    if resuming:
        assert output is not None and run_record is not None
        _check_run_record(run_record, str(base_signature), output)
        done = read_item_rows(output, out_fmt)  # cuts a half-written last row now

    def record_run() -> None:  # beside the output, just before the output file is created
        if run_record is not None and not resuming:
            text = json.dumps({"signature": str(base_signature)}) + "\n"
            run_record.write_text(text, encoding="utf-8")

    # 2. score lazily; the output is held back until the first rows scored without error (on
    # --resume, new rows are appended to the stopped run's rows once the first chunk is good)
    out = DeferredOutput(output, append=resuming, on_commit=record_run)
    side = sys.stdout if not out.to_stdout else sys.stderr  # where summaries beside rows go
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
            _warn(f"{where}no items to score: n=0, CEC is undefined (nan)")
        elif empty is EmptyPolicy.zero and summary.n_empty and not quiet:
            _warn(
                f"{where}{summary.n_empty} of {summary.n} item(s) have no sentences on a side "
                "and score 0 (--empty zero); use --empty nan to leave them out of the mean"
            )
    _prepare_fast_start(scorer)


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
    output: Path | None = None,
) -> Summary:
    """Score one input's records into ``out``; return its summary.

    ``done`` holds the rows of a stopped run (``--resume``): they are checked against the first
    records and counted in the summary, and only the records after them are scored.
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
        for n, row in enumerate(done or (), start=1):  # rows of the stopped run (--resume)
            rec = next(recs, None)
            if rec is None:
                raise InputError(f"--resume: {output} has more rows than the input has items")
            if rec.id != row[0]:
                raise InputError(
                    f"--resume: row {n} of {output} has id {row[0]!r} but item {n} of the input "
                    f"has id {rec.id!r}; not the same input"
                )
            summary.add(row[1], row[2], row[3], row[4], len(rec.references))
            bar.update(1)
        for rec in recs:
            pending.append(rec)
            yield rec.prediction, rec.references if len(rec.references) > 1 else rec.references[0]

    with _progress(total, quiet) as bar, warnings.catch_warnings():
        from cec.scorer import EmptyTextWarning

        warnings.simplefilter("ignore", EmptyTextWarning)
        try:
            for ps in scorer.score_iter(pairs(), chunk_size=chunk_size):
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


RESUME_FORMATS = ("jsonl", "csv", "tsv")


def _run_record(output: Path | None, out_fmt: str, summary_only: bool) -> Path | None:
    """The file beside a per-item row output that records the run's signature (``--resume``)."""
    if output is None or str(output) == "-" or summary_only or out_fmt not in RESUME_FORMATS:
        return None
    return output.with_name(output.name + ".cec-run.json")


def _check_run_record(record: Path, signature: str, output: Path) -> None:
    """Refuse to resume rows that another scorer (model, options, version) wrote."""
    try:
        earlier = json.loads(record.read_text(encoding="utf-8"))["signature"]
    except (OSError, ValueError, KeyError, TypeError):
        raise InputError(
            f"--resume: {output} has no readable run record {record.name} (written by cec score "
            "at the start of a run), so its rows cannot be checked; score again without --resume"
        ) from None
    if earlier != signature:
        raise InputError(
            f"--resume: the rows in {output} were scored with signature {earlier}, but these "
            f"options give {signature}; resume with the same options or score again"
        )


def _prepare_fast_start(scorer: Any) -> None:
    """After an fp32 CPU run on torch, keep a checked ONNX copy of the model for fast starts."""
    from cec import _fast
    from cec.encode import SentenceTransformerEncoder

    enc = scorer.encoder
    if not isinstance(enc, SentenceTransformerEncoder) or enc._model is None:
        return  # not this kind of model, or it already ran from the copy
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _fast.prepare(enc)


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


# ---------------------------------------------------------------------------------------------
# cec explain
# ---------------------------------------------------------------------------------------------
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


@app.command("explain")
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
    input_format: Annotated[
        InputFormat | None,
        typer.Option(
            "--input-format",
            help="Format of --input (default: from the suffix).",
            rich_help_panel="Input",
        ),
    ] = None,
    pred_field: Annotated[
        str,
        typer.Option(
            "--pred-field",
            help="Field/column of --input with the generated explanation.",
            rich_help_panel="Input",
        ),
    ] = "prediction",
    ref_field: Annotated[
        list[str] | None,
        typer.Option(
            "--ref-field",
            help="Field/column of --input with the reference; a JSONL field may hold a list. "
            "Repeat for several references.  [default: reference]",
            rich_help_panel="Input",
            show_default=False,
        ),
    ] = None,
    id_field: Annotated[
        str,
        typer.Option(
            "--id-field",
            help="Field/column of --input with the item id that --item looks for.",
            rich_help_panel="Input",
        ),
    ] = "id",
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
    model: ModelOpt = None,
    allow_download: AllowDownloadOpt = False,
    device: DeviceOpt = None,
    batch_size: BatchOpt = 64,
    splitter: SplitterOpt = None,
    empty: EmptyOpt = EmptyPolicy.zero,
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
        records = read_records(
            input_path,
            fmt=input_format.value if input_format else None,
            pred_field=pred_field,
            ref_fields=ref_field or ["reference"],
            id_field=id_field or None,
        )
        rec = _find_item(records, item, input_path)
        gen_text, refs = rec.prediction, rec.references
    else:
        if generated is None or reference is None:
            raise InputError("give GENERATED and REFERENCE texts, or --input FILE --item ID")
        gen_text, refs = generated, [reference]
    if heatmap is not None and heatmap.suffix.lower() not in HEATMAP_SUFFIXES:
        raise InputError(
            f"--heatmap must end in one of {', '.join(HEATMAP_SUFFIXES)}, got {heatmap.name!r}"
        )
    if heatmap is not None:  # a missing matplotlib is found before anything is printed
        try:
            import matplotlib  # noqa: F401
        except ImportError as exc:
            raise InputError(f"--heatmap: {missing_dependency(exc) or exc}") from None
    options = scorer_options(
        model, device, batch_size, splitter, empty, allow_download=allow_download or None
    )
    scorer = build_scorer(options, load=True)
    try:
        alignment = scorer.align(gen_text, refs if len(refs) > 1 else refs[0], threshold=threshold)
    except ValueError as exc:  # an empty side under --empty error
        raise InputError(str(exc)) from None
    sections = []
    if directional:  # links on each side, matches and verdicts (cec.links_view)
        from cec.links_view import add_link_section

        sections.append(add_link_section(scorer, alignment, gen_text, refs[alignment.best_ref]))
    if as_json:
        sys.stdout.write(json.dumps(alignment.to_dict(), indent=2) + "\n")
    else:
        sys.stdout.write(alignment.format(width=width, sections=sections) + "\n")
    if heatmap is not None:
        written = alignment.heatmap(heatmap)
        (sys.stderr if as_json else sys.stdout).write(f"heatmap written to {written}\n")


# ---------------------------------------------------------------------------------------------
# cec baseline
# ---------------------------------------------------------------------------------------------
@app.command("baseline")
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
    model: ModelOpt = None,
    allow_download: AllowDownloadOpt = False,
    device: DeviceOpt = None,
    batch_size: BatchOpt = 64,
    splitter: SplitterOpt = None,
    precision: Annotated[
        str,
        typer.Option(
            "--precision",
            help="Encoder numeric path (as for cec score); a baseline holds for one precision.",
            rich_help_panel="Scorer",
        ),
    ] = "fp32",
) -> None:
    """Make a rescaling baseline for a model: the mean CEC of unrelated explanation pairs.

    Each line of CORPUS is paired with another, random line (never itself) and the pair is
    scored; b is the mean. Use it with cec score --baseline FILE (or rescale=FILE in Python).
    The baseline shipped for the default model is made by
    cec baseline build/esnli-test-expl-2000.txt -o cec/baselines/all-MiniLM-L6-v2.json
    --name esnli-test-expl-2000 after python benchmarks/make_baseline_corpus.py
    (docs/rescaling.md).
    """
    from cec.io import check_readable

    check_readable(corpus)
    with open(corpus, encoding="utf-8") as fh:
        texts = [line.strip() for line in fh if line.strip()]
    if len(texts) < 2:
        raise InputError(f"needs at least 2 non-blank lines, found {len(texts)}", corpus)
    options = scorer_options(
        model,
        device,
        batch_size,
        splitter,
        EmptyPolicy.nan,
        precision=precision,
        allow_download=allow_download or None,
    )
    scorer = build_scorer(options, load=True)
    from cec.rescale import compute_baseline

    with warnings.catch_warnings():
        from cec.scorer import EmptyTextWarning

        warnings.simplefilter("ignore", EmptyTextWarning)
        baseline = compute_baseline(scorer, texts, corpus=name or corpus.name, seed=seed)
    try:
        baseline.save(output)
    except OSError as exc:
        raise InputError(f"cannot write ({exc.strerror or exc})", output) from None
    sys.stdout.write(
        f"baseline b = {baseline.value:.6f} (forward {baseline.forward:.6f}, backward "
        f"{baseline.backward:.6f}; {baseline.n_pairs} unrelated pairs of {baseline.corpus}) "
        f"for {baseline.model}@{baseline.weights}, hash {baseline.hash}\nwritten to {output}\n"
    )


# ---------------------------------------------------------------------------------------------
# entry point
# ---------------------------------------------------------------------------------------------
def _warn(message: str) -> None:
    sys.stderr.write(f"cec: warning: {message}\n")


def _showwarning(
    message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None
) -> None:
    _warn(f"{message} ({category.__name__})")


def _error(message: str) -> None:
    sys.stderr.write(f"cec: error: {message}\n")


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
    global _USER_OFFLINE
    debug = os.environ.get("CEC_DEBUG", "") not in ("", "0")
    _USER_OFFLINE = "HF_HUB_OFFLINE" in os.environ  # build_scorer sets it unless downloads are on
    warnings.showwarning = _showwarning
    try:
        app(args=argv, prog_name="cec")  # usage errors: typer prints them and exits 2
        return EXIT_OK
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (EXIT_OK if code is None else EXIT_UNEXPECTED)
    except KeyboardInterrupt:
        _error("interrupted")
        return EXIT_INTERRUPTED
    except InputError as exc:
        if debug:
            raise
        _error(str(exc))
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # e.g. `cec score ... | head`
        sys.stderr.close()
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - the one place that turns anything into exit 1
        if debug:
            raise
        missing = missing_dependency(exc)
        if missing is not None:  # an optional extra that is not installed: a user-facing case
            _error(missing)
            return EXIT_BAD_INPUT
        _error(f"unexpected {type(exc).__name__}: {exc} (set CEC_DEBUG=1 for a traceback)")
        return EXIT_UNEXPECTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
