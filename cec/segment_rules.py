"""cec's own text rules, used by the named splitters of :mod:`cec.segment`.

:func:`to_blocks` cuts a text into blocks at line breaks that end a unit (hard-wrapped prose
joined back, list markers stripped); :func:`refine` adds the sentence boundaries Punkt-style
engines miss (a lower-case word before ". " + capital, units after numbers, "p.m.", e-SNLI's
" ; ", the CJK sentence ends "。！？", dotted numbers, the pronoun "I") and removes the few they
add wrongly (after "!"/"?" before a lower-case word, after a number sign before digits);
:func:`refine_block` runs an engine and :func:`refine` item by item over an inline enumeration
("1) a 2) b"). All are left-to-right scans: linear time, offline. :func:`to_blocks` and
:func:`refine` are re-exported by :mod:`cec.segment`.
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = [
    "RULES_VERSION",
    "to_blocks",
    "refine",
    "refine_block",
    "enumeration",
    "enumeration_items",
]

RULES_VERSION = "3"
"""Version of cec's own block and boundary rules; part of the ``"cec"`` splitter's label.

3: inline enumerations (``1) a 2) b``, ``a. x b. y``, ``• x • y``) split before each marker,
the marker kept with its item; ``!``/``?`` before a lower-case word and a number sign before
digits (``No. 5``, ``N°. 12``) no longer end a sentence; the pronoun ``I.`` after a lower-case
word and a dotted number (``12.40.3.``) end one before a capital.
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


# Inline enumerations: "1) heat the flask 2) add the salt", "a. x b. y", "• 9. x • 10. y".
# A candidate marker stands after whitespace (or at the start) and before whitespace: a bullet
# character (optionally followed by a number or letter marker), or a number, a letter or a
# lower-case Roman numeral with ")", ".)" or "." (or in brackets, "(b)"). Upper-case letters and
# Roman numerals count only with a bracket ("A)", "(II)"): "J. R. R. Tolkien" and "I." are not
# markers.
_BULLETS = "•‣◦▪⁃●"
_ENUM = re.compile(
    r"(?<!\S)(?:(?P<bullet>[•‣◦▪⁃●])(?:\s*(?:\d{1,3}|[a-z])(?:\.\)|\)|\.))?"
    r"|(?P<open>\()?(?P<value>\d{1,3}|[a-zA-Z]|[ivx]{2,4}|[IVX]{2,4})(?P<close>\.\)|\)|\.))"
    r"(?=\s)"
)
# Where an enumeration may begin: the start of the block, or after a colon ("Steps: 1) heat").
_ENUM_START = re.compile(r":[\"'”’)\]]*\s+")
# A quick test for a colon followed by something shaped like a marker (the regex engine jumps
# from one ":" to the next).
_ENUM_HINT = re.compile(r":[\"'”’)\]]*\s+\(?\w{1,4}[.)]\s")
_ROMAN = {
    r: k
    for k, r in enumerate(
        ["i", "ii", "iii", "iv", "v", "vi", "vii", "viii", "ix", "x", "xi", "xii", "xiii"], 1
    )
}


def _enum_key(m: re.Match) -> tuple[tuple[str, ...], frozenset[tuple[str, int]]] | None:
    """The style of a candidate marker and the positions it can stand for in a sequence.

    ``None`` for a match that is no marker ("(b." or "A." ). ``i`` is both the ninth letter and
    the Roman 1, so "h. x i. y" and "i. x ii. y" are both sequences.
    """
    if m.group("bullet"):
        return ("bullet", m.group("bullet")), frozenset()
    value, close = m.group("value"), m.group("close")
    opened = bool(m.group("open"))
    if opened and close != ")":
        return None
    if value.isdigit():
        return ("n", str(opened), close), frozenset({("n", int(value))})
    upper = value.isupper()
    if upper and close == "." and not opened:
        return None
    low = value.lower()
    keys = set()
    if len(low) == 1:
        keys.add(("a", ord(low) - ord("a")))
    if low in _ROMAN:
        keys.add(("r", _ROMAN[low]))
    if not keys:
        return None
    return ("l", str(opened), close, str(upper)), frozenset(keys)


def _follows(previous: tuple, current: tuple) -> bool:
    """Whether marker ``current`` continues the sequence of ``previous`` (same style, next value)."""
    if previous[0] != current[0]:
        return False
    if current[0][0] == "bullet":
        return True
    return any((kind, value + 1) in current[1] for kind, value in previous[1])


def _gap_ends_item(gap: str) -> bool:
    """Whether the text between two markers can be a whole item: not empty, not ending in a comma
    or a word that cannot end a sentence ("(a) and (b) are wrong" is no enumeration)."""
    gap = gap.strip()
    if not gap or gap.endswith(","):
        return False
    last = _LAST_WORD.search(gap[-12:])
    return not (last and last.group(1).lower() in _NO_END_WORDS)


def enumeration(block: str) -> list[tuple[int, int]]:
    """Spans of the markers of the inline enumerations in ``block``; ``[]`` when it has none.

    An enumeration is two or more markers of one style with consecutive values (``1)`` then
    ``2)``, ``a.`` then ``b.``, ``i.`` then ``ii.``, or the same bullet character twice). The
    first stands at the start of the block or after a colon (a bullet character anywhere);
    each later one follows an item that can end (see :func:`_gap_ends_item`). Only blocks with
    a bullet character or a marker at such a start are scanned in full, so ordinary prose
    costs a few substring tests.

    Examples:
        >>> enumeration("1) heat the flask 2) add the salt")
        [(0, 2), (18, 20)]
        >>> enumeration("Options (a) and (b) are wrong.")
        []
    """
    at_start = _ENUM.match(block)
    bullets = any(c in block for c in _BULLETS)
    if not (at_start or bullets or (":" in block and _ENUM_HINT.search(block))):
        return []
    starts = {0} if at_start else set()
    starts.update(m.end() for m in _ENUM_START.finditer(block) if _ENUM.match(block, m.end()))
    spans: list[tuple[int, int]] = []
    chain: list[tuple[re.Match, tuple]] = []
    for m in _ENUM.finditer(block):
        key = _enum_key(m)
        if key is None:
            continue
        last = chain[-1] if chain else None
        if (
            last is not None
            and _follows(last[1], key)
            and _gap_ends_item(block[last[0].end() : m.start()])
        ):
            chain.append((m, key))
        elif m.start() in starts or key[0][0] == "bullet":
            if len(chain) >= 2:
                spans.extend(c.span() for c, _ in chain)
            chain = [(m, key)]
    if len(chain) >= 2:
        spans.extend(c.span() for c, _ in chain)
    return spans


def enumeration_items(block: str) -> list[tuple[str, str]]:
    """Cut ``block`` before each marker of an inline enumeration: ``(marker, item text)`` pairs.

    Text before the first marker is an item with the marker ``""``; a block without an
    enumeration is ``[("", block)]``.

    Examples:
        >>> enumeration_items("Steps: 1) heat the flask 2) add the salt")
        [('', 'Steps:'), ('1)', 'heat the flask'), ('2)', 'add the salt')]
    """
    spans = enumeration(block)
    if not spans:
        return [("", block)]
    items: list[tuple[str, str]] = []
    head = block[: spans[0][0]].strip()
    if head:
        items.append(("", head))
    for k, (start, end) in enumerate(spans):
        stop = spans[k + 1][0] if k + 1 < len(spans) else len(block)
        items.append((block[start:end], block[end:stop].strip()))
    return items


def to_blocks(text: str, *, keep_enumerations: bool = False) -> list[str]:
    """Cut text into blocks at line breaks that end a unit; strip list markers.

    A line break is kept as a boundary when the next line is blank or starts a list item, or the
    line before ends in terminal punctuation (``.!?;:…``). Otherwise the lines are joined (a hard
    wrap inside a sentence) when the next line starts in lower case or the line before ends with a
    comma or a word that cannot end a sentence ("the", "of", "and", ...); any other break is kept.
    Runs in one pass over the lines.

    Args:
        text: Any text.
        keep_enumerations: Keep the marker at the start of a line that holds an inline
            enumeration (``1) a 2) b``, see :func:`enumeration`): its markers belong to its
            items. Set by cec's rule splitters (rules version 3); the bare engines and
            ``"newline"`` strip it as before.

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
        if marker and not (keep_enumerations and enumeration(line)):
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
    "al etc approx vs cf ca esp incl viz resp ibid cit op seq sq pp vol vols ed eds trans "
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
        if not word and dot > 0 and sentence[dot - 1].isdigit():
            if _dotted_number_end(sentence, dot):  # "the code is 12.40.3. Then"
                cuts.append(m.end())
            continue
        token_start = start == 0 or sentence[start - 1].isspace()
        token_start = token_start or sentence[start - 1] in _WORD_OPENERS
        if not word or not (token_start or sentence[start - 1].isdigit()):
            continue
        if word == "I":  # "than you or I. Then" ends; "Albert I. Jones" does not
            if token_start and _after_lower_word(sentence, start):
                cuts.append(m.end())
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


def _dotted_number_end(sentence: str, dot: int) -> bool:
    """Whether the number before the period at ``dot`` is a dotted number ("12.40.3", "1.5",
    "1026.253.553") standing alone after other text: then ". " + capital ends the sentence.

    A number that opens the sentence is a heading number ("3.1. The model") and does not end it.
    The walk back covers only the number's own characters, so the scan stays linear.
    """
    start = dot
    while start > 0 and (sentence[start - 1].isdigit() or sentence[start - 1] == "."):
        start -= 1
    number = sentence[start:dot]
    if not number[:1].isdigit() or "." not in number:
        return False
    if start > 0 and not (sentence[start - 1].isspace() or sentence[start - 1] in "$€£¥(["):
        return False
    return bool(sentence[:start].strip())


def _after_lower_word(sentence: str, start: int) -> bool:
    """Whether the word before offset ``start`` begins in lower case (the pronoun in "you and
    I." follows one; the initial in "Albert I. Jones" follows a name)."""
    end = start
    while end > 0 and sentence[end - 1] in _SPACE:
        end -= 1
    begin = end
    while begin > 0 and not sentence[begin - 1].isspace():
        begin -= 1
    word = sentence[begin:end].lstrip(_WORD_OPENERS)
    return word[:1].islower()


# An engine boundary after "!" or "?" (and closing quotes) before a lower-case word is no
# sentence end: "She works at Yahoo! in the accounting department." Nor is one after a number
# sign before digits: "at N°. 1026", "Nr. 5".
_OPEN_END = re.compile(r"[!?][\"'”’)\]]*$")
_LONE_NUMBER = re.compile(r"\d{1,3}(?:\.\d{1,3})*\.")
_NUMBER_SIGN = re.compile(r"(?:(?<![^\s(\[])(?:[Nn]os?|[Nn]rs?|NOS?|NRS?|[Nn][°º])\.|#)$")


def _goes_on(previous: str, sentence: str) -> bool:
    """Whether ``sentence`` continues ``previous`` across an engine boundary."""
    if len(previous) <= 12 and _LONE_NUMBER.fullmatch(previous):
        return True  # "3.1." alone is a heading number: "3.1. The model is simple."
    first = sentence[:1]
    if first.islower():
        return bool(_OPEN_END.search(previous[-4:]))
    if first.isdigit():
        return bool(_NUMBER_SIGN.search(previous[-6:]))
    return False


def _join(sentences: list[str]) -> list[str]:
    """The engine's sentences, stripped, with the boundaries :func:`_goes_on` rejects removed.

    Joined pieces are collected and concatenated once, so a long run of joins stays linear.
    """
    groups: list[list[str]] = []
    for sentence in sentences:
        sentence = sentence.strip()
        if not sentence:
            continue
        if groups and _goes_on(groups[-1][-1], sentence):
            groups[-1].append(sentence)
        else:
            groups.append([sentence])
    return [" ".join(group) for group in groups]


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
      ("「行く。」と言った。" is one sentence; "雨が降った。風が吹いた。" two);
    - (rules 3) a dotted number after other text, then ``.``, whitespace and a capital
      ("the code is 12.40.3. Then..."); a heading number that opens the sentence stays;
    - (rules 3) the pronoun ``I`` after a word that starts in lower case, then ``.``,
      whitespace and a capital ("you and I. Did..."; "Albert I. Jones" stays one).

    Before cutting, two kinds of engine boundary are removed (the pieces joined by one space):
    after ``!`` or ``?`` (and closing quotes) when the next piece starts with a lower-case letter
    ("Yahoo! in the accounting department"), and after a number sign (``No.``, ``Nr.``, ``N°.``,
    ``#``...) or a lone heading number ("3.1.") when the next piece starts with a digit (for
    the heading number: with anything). Characters are never dropped or reordered.

    Args:
        sentences: Sentences from an engine.

    Returns:
        The sentences, some cut in two or more, stripped and non-empty.

    Examples:
        >>> refine(["She works at Yahoo!", "in sales, you and I. Then we left."])
        ['She works at Yahoo! in sales, you and I.', 'Then we left.']
        >>> refine(["The sea rose 2 m. Towns were abandoned at 5 p.m. Nobody stayed."])
        ['The sea rose 2 m.', 'Towns were abandoned at 5 p.m.', 'Nobody stayed.']
        >>> refine(["海面が上昇した。町は放棄された！「なぜ？」と彼は聞いた。"])
        ['海面が上昇した。', '町は放棄された！', '「なぜ？」と彼は聞いた。']
    """
    out: list[str] = []
    for sentence in _join(sentences):
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


def refine_block(engine: Callable[[str], list[str]], block: str) -> list[str]:
    """Run ``engine`` and then :func:`refine` on one block, item by item.

    An inline enumeration (see :func:`enumeration`) is cut before each marker first; the engine
    sees each item's text without its marker, and the marker is put back in front of the item's
    first sentence, so "1) The first item 2) The second item" gives one sentence per item, never
    one per marker.

    Examples:
        >>> refine_block(str.splitlines, "Steps: 1) heat the flask 2) add the salt")
        ['Steps:', '1) heat the flask', '2) add the salt']
    """
    out: list[str] = []
    for marker, body in enumeration_items(block):
        sentences = refine(engine(body)) if body else []
        if marker:
            sentences = [f"{marker} {sentences[0]}", *sentences[1:]] if sentences else [marker]
        out.extend(sentences)
    return out
