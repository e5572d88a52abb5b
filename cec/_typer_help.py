"""Plain ``--help`` placeholders for the ``cec`` and ``cec-distill`` commands.

Typer >= 0.20 prints Python type names as value placeholders (``<bool>`` after a flag,
``<list[Path]>``, ``{results}`` in the usage line). These read as noise to a user of a command-line
tool; :func:`tidy` switches both commands to the usual click style: nothing after a flag,
``PATH``, ``TEXT``, ``INTEGER``, ``[a|b|c]`` for choices, ``RESULTS...`` in the usage line.
The change is to typer's parameter classes, once per process, and only to how help is shown.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin

_NAMES = {str: "TEXT", int: "INTEGER", float: "FLOAT", bool: "BOOLEAN", Path: "PATH"}
_done = False


def _label(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is list:  # a repeatable option: the placeholder of one value
        (inner,) = get_args(annotation) or (str,)
        return _label(inner)
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return "[" + "|".join(str(m.value) for m in annotation) + "]"
    return _NAMES.get(annotation, "VALUE")


def _type_placeholder(param: Any, ctx: Any) -> str | None:
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return None
    if param.metavar is not None:
        return param.metavar
    desc = getattr(param, "type_descriptor", None)
    if desc is not None and desc.is_choice and desc.choices is not None:
        return "[" + "|".join(str(getattr(c, "value", c)) for c in desc.choices) + "]"
    return _label(desc.annotation) if desc is not None else "VALUE"


def _argument_placeholder(param: Any, ctx: Any) -> str | None:
    return None  # the argument's name column already says what it is


def _usage_name(self: Any) -> str:
    name = (self.metavar or self.name or "ARG").upper()
    if self.nargs != 1:
        name += "..."
    return name if self.required else f"[{name}]"


def _rich_name(self: Any) -> str:
    name = (self.metavar or self.name or "ARG").upper()
    return name + ("..." if self.nargs != 1 else "")


def tidy() -> None:
    """Switch typer's help placeholders to plain click style (idempotent)."""
    global _done
    if _done:
        return
    from typer.core import TyperArgument, TyperOption

    TyperOption.display_type_rich = _type_placeholder  # type: ignore[assignment]
    TyperArgument.display_type_rich = _argument_placeholder  # type: ignore[assignment]
    if hasattr(TyperArgument, "_usage_display_name"):
        TyperArgument._usage_display_name = _usage_name  # type: ignore[attr-defined]
    if hasattr(TyperArgument, "_rich_display_name"):
        TyperArgument._rich_display_name = _rich_name  # type: ignore[attr-defined]
    _done = True


def with_version(command: Callable[..., Any], print_version: Callable[[bool], None]) -> Any:
    """``command`` with an eager ``--version`` flag, so ``cec score --version`` works as
    ``cec --version`` does (``print_version`` prints and exits, as the app's callback does).

    The flag is one more keyword parameter of the command's typer signature; the command itself
    never sees it. Wrapping twice adds it once.
    """
    if getattr(command, "_with_version", False):
        return command
    import typer

    sig = inspect.signature(command, eval_str=True)
    flag = inspect.Parameter(
        "_cec_version",
        inspect.Parameter.KEYWORD_ONLY,
        default=False,
        annotation=Annotated[
            bool,
            typer.Option(
                "--version",
                help="Print the version and exit.",
                callback=print_version,
                is_eager=True,
            ),
        ],
    )

    @functools.wraps(command)
    def versioned(*args: Any, **kwargs: Any) -> Any:
        kwargs.pop("_cec_version", None)
        return command(*args, **kwargs)

    params = [*sig.parameters.values(), flag]
    versioned.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    versioned.__annotations__ = {p.name: p.annotation for p in params}
    versioned._with_version = True  # type: ignore[attr-defined]
    return versioned
