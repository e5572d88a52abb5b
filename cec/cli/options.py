"""The options the ``cec`` commands share, each defined once, and the scorer they build.

An option group is a dataclass whose fields are typer options (type, flags, help and default in
one place). :func:`shared` adds a group's fields to a command as options and hands the command one
instance of the group, so ``cec score``, ``cec explain`` and ``cec baseline`` take the same
``--model``, ``--device``... with the same help and defaults.

Examples:
    >>> ScorerOptions(model="./m", batch_size=8).cec_kwargs(directional=None)
    {'batch_size': 8, 'empty': 'zero', 'precision': 'fp32', 'model': './m'}
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TypeVar, get_type_hints

import typer

from cec.io import InputError, Record, read_records
from cec.segment import DEFAULT_SPLITTER, available_splitters

__all__ = [
    "EmptyPolicy",
    "InputFields",
    "InputFormat",
    "OutputFormat",
    "ScorerOptions",
    "build_scorer",
    "record_user_offline",
    "shared",
]

F = TypeVar("F", bound=Callable[..., Any])


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


def _scorer(*flags: str, help: str, **kwargs: Any) -> Any:  # noqa: A002 - typer's name
    return typer.Option(*flags, help=help, rich_help_panel="Scorer", **kwargs)


def _input(*flags: str, help: str, **kwargs: Any) -> Any:  # noqa: A002 - typer's name
    return typer.Option(*flags, help=help, rich_help_panel="Input", **kwargs)


@dataclass(frozen=True)
class ScorerOptions:
    """The scorer options of the commands; each maps 1:1 to a :class:`cec.CEC` argument."""

    model: Annotated[
        str | None,
        _scorer(
            "--model",
            "-m",
            help="Sentence-transformers model directory, or a Hugging Face name already in the "
            "local cache (default: the embedded all-MiniLM-L6-v2). cec runs offline: see "
            "--allow-download.",
        ),
    ] = None
    allow_download: Annotated[
        bool,
        _scorer(
            "--allow-download",
            help="Let a --model name that is not in the local Hugging Face cache be downloaded "
            "(cec never uses the network otherwise).",
        ),
    ] = False
    device: Annotated[
        str | None, _scorer("--device", help="cpu, cuda, cuda:1... (default: CUDA when present).")
    ] = None
    batch_size: Annotated[
        int, _scorer("--batch-size", min=1, help="Sentences per encoder forward pass.")
    ] = 64
    splitter: Annotated[
        str | None,
        _scorer(
            "--splitter",
            help="Sentence splitter: "
            + ", ".join(available_splitters())
            + f" (default {DEFAULT_SPLITTER}); lines: one sentence per line, for pre-split steps;"
            " see docs/segmentation.md.",
        ),
    ] = None
    empty: Annotated[
        EmptyPolicy,
        _scorer(
            "--empty",
            help="Score of a pair with no sentences on a side: zero (warns), nan (left out of "
            "the mean), error (exit 2).",
        ),
    ] = EmptyPolicy.zero
    precision: Annotated[
        str,
        _scorer(
            "--precision",
            help="Encoder numeric path: fp32, bf16, fp16 (CUDA), int8, onnx, onnx-int8; "
            "see docs/performance.md. Recorded in the signature.",
        ),
    ] = "fp32"
    cache: Annotated[
        Path | None,
        _scorer(
            "--cache",
            help="SQLite embedding cache file, shared safely between runs and processes "
            "(sentences seen before are not encoded again; scores are unchanged).",
        ),
    ] = None

    def cec_kwargs(self, **extra: Any) -> dict[str, Any]:
        """Keyword arguments for :class:`cec.CEC`; ``None`` and an unset flag mean the default.

        Args:
            **extra: Further :class:`cec.CEC` arguments, or overrides (``empty="nan"``).
        """
        opts: dict[str, Any] = {
            "batch_size": self.batch_size,
            "empty": self.empty.value,
            "precision": self.precision,
        }
        given = {
            "model": self.model,
            "device": self.device,
            "splitter": self.splitter,
            "cache": self.cache,
            "allow_download": self.allow_download or None,
            **extra,
        }
        opts.update({key: value for key, value in given.items() if value is not None})
        return opts


@dataclass(frozen=True)
class InputFields:
    """Where an item file keeps its parts (``cec score INPUT``, ``cec explain --input``)."""

    input_format: Annotated[
        InputFormat | None,
        _input("--input-format", help="Format of the input file(s) (default: from the suffix)."),
    ] = None
    pred_field: Annotated[
        str, _input("--pred-field", help="Field/column with the generated explanation.")
    ] = "prediction"
    ref_field: Annotated[
        list[str] | None,
        _input(
            "--ref-field",
            help="Field/column with the reference; a JSONL field may hold a list. "
            "Repeat for several references.  [default: reference]",
            show_default=False,
        ),
    ] = None
    id_field: Annotated[
        str,
        _input(
            "--id-field", help="Field/column with the item id (items without one are numbered)."
        ),
    ] = "id"

    def read(self, path: Path) -> Iterator[Record]:
        """The records of ``path`` (``-`` is stdin), read lazily and checked as they come."""
        return read_records(
            path,
            fmt=self.input_format.value if self.input_format else None,
            pred_field=self.pred_field,
            ref_fields=self.ref_field or ["reference"],
            id_field=self.id_field or None,
        )


def shared(group: type, name: str, *, skip: tuple[str, ...] = ()) -> Callable[[F], F]:
    """Give a typer command the options of ``group`` (a dataclass), as one argument ``name``.

    The command declares ``name: Group``; in its typer signature that parameter is replaced by
    the group's fields (in field order, at that place), and the command is called with
    ``Group(**their values)``. Fields in ``skip`` are not offered and keep their defaults.

    Args:
        group: A dataclass whose fields are ``Annotated[type, typer.Option(...)] = default``.
        name: The command's parameter that receives the group.
        skip: Fields this command does not offer.
    """
    hints = get_type_hints(group, include_extras=True)
    fields = [f for f in dataclasses.fields(group) if f.name not in skip]
    unknown = set(skip) - {f.name for f in dataclasses.fields(group)}
    if unknown:
        raise ValueError(f"skip: {group.__name__} has no field(s) {sorted(unknown)}")

    def decorate(func: F) -> F:
        sig = inspect.signature(func, eval_str=True)
        if name not in sig.parameters:
            raise ValueError(f"{func.__name__} has no parameter {name!r} for {group.__name__}")
        params: list[inspect.Parameter] = []
        for param in sig.parameters.values():
            if param.name != name:
                params.append(param)
                continue
            params += [
                inspect.Parameter(f.name, param.kind, default=f.default, annotation=hints[f.name])
                for f in fields
            ]

        @functools.wraps(func)
        def command(**kwargs: Any) -> Any:
            kwargs[name] = group(**{f.name: kwargs.pop(f.name) for f in fields})
            return func(**kwargs)

        command.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        return command  # type: ignore[return-value]

    return decorate


_USER_OFFLINE: bool | None = None  # whether the user set HF_HUB_OFFLINE (main() records it)


def record_user_offline(flag: bool | None) -> None:
    """Remember whether the user set ``HF_HUB_OFFLINE`` before the CLI set it (for messages)."""
    global _USER_OFFLINE
    _USER_OFFLINE = flag


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
