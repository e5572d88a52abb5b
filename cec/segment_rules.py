"""cec's own text rules, used by the named splitters of :mod:`cec.segment`.

:func:`to_blocks` cuts a text into blocks at line breaks that end a unit (hard-wrapped prose
joined back, list markers stripped); :func:`refine` adds the sentence boundaries Punkt-style
engines miss (a lower-case word before ". " + capital, units after numbers, "p.m.", e-SNLI's
" ; ", the CJK sentence ends "。！？"). Both are one left-to-right scan: linear time, offline. Both are re-exported by
:mod:`cec.segment`.
"""

from __future__ import annotations

import re

__all__ = ["RULES_VERSION", "to_blocks", "refine"]

RULES_VERSION = "2"
"""Version of cec's own block and boundary rules; part of the ``"cec"`` splitter's label.

2: CJK sentence ends (``。！？``) split, and end a line for the hard-wrap test. 1: the first."""


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# A list marker at the start of a line: "-", "*", "•", "1.", "1)", "(a)", "a)", "a.", "iv.".
# An upper-case letter with a period ("J. R. R. Tolkien") is an initial, not a marker.
_MARKER = re.compile(
    r"^\s*(?:[-*•‣◦▪–—+]|\(?\d{1,3}[.)]|\(?[a-zA-Z]\)|[a-z]\."
    r"|\(?(?:i{1,3}|iv|v|vi{1,3}|ix|x)[.)])\s+"
)
_TERMINAL = re.compile(r"[.!?;:…。！？][\"'”’)\]」』）]*\s*$")
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
# CJK sentence ends, with the closing quotes and brackets that belong to the sentence they end
_CJK_STOP = re.compile(r"[。！？]+[」』）〕】》〉”’\"')\]]*")
_CJK_OPEN = "「『（〔【《〈“‘(["
_CJK_CLOSE = "」』）〕】》〉”’)]"
# After a closed quotation or bracket, a comma or a hiragana letter (a particle: と, の, で...)
# continues the sentence: 「行く。」と言った ("said 'I go.'")
_QUOTE_FOLLOWERS = frozenset("、，,").union(chr(c) for c in range(0x3041, 0x30A0))
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
    if "。" in sentence or "！" in sentence or "？" in sentence:
        cuts.extend(_cjk_cuts(sentence))
    return sorted(set(cuts))


def _depth(text: str) -> int:
    return sum(text.count(c) for c in _CJK_OPEN) - sum(text.count(c) for c in _CJK_CLOSE)


def _cjk_cuts(sentence: str) -> list[int]:
    """Offsets after the CJK sentence ends (``。！？``, with their closing quotes) in ``sentence``.

    Not inside quotes or brackets (「...。」 is one quoted sentence), and not where a comma or a
    hiragana particle goes on with the sentence after the closing quote (``」と言った``). Each stretch of text between two
    stops is counted once, so the scan is linear.
    """
    cuts: list[int] = []
    depth, pos = 0, 0
    for m in _CJK_STOP.finditer(sentence):
        depth = max(0, depth + _depth(sentence[pos : m.start()]))
        closes = _depth(m.group())  # <= 0: the quotes and brackets after the stop
        pos = m.end()
        if depth + closes > 0:  # still inside a quotation or brackets
            depth += closes
            continue
        quoted = depth > 0
        depth = 0
        if not (quoted and sentence[pos : pos + 1] in _QUOTE_FOLLOWERS):
            cuts.append(pos)
    return cuts


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
      period ("sisters ;  embracing..."); the ``;`` stays with the sentence it ends;
    - a CJK sentence end ``。``, ``！`` or ``？`` (with any closing quotes or brackets after it),
      outside quotes and brackets, and not before a particle that goes on with the sentence
      ("「行く。」と言った。" is one sentence; "雨が降った。風が吹いた。" two).

    Rules only add boundaries; characters are never dropped or reordered.

    Args:
        sentences: Sentences from an engine.

    Returns:
        The sentences, some cut in two or more, stripped and non-empty.

    Examples:
        >>> refine(["The sea rose 2 m. Towns were abandoned at 5 p.m. Nobody stayed."])
        ['The sea rose 2 m.', 'Towns were abandoned at 5 p.m.', 'Nobody stayed.']
        >>> refine(["海面が上昇した。町は放棄された！「なぜ？」と彼は聞いた。"])
        ['海面が上昇した。', '町は放棄された！', '「なぜ？」と彼は聞いた。']
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
