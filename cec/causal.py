"""Explicit cause -> effect links in explanation text (connective patterns, no model).

A link is stated with a connective, and the connective says which side is the cause:

- forward, cause first: ``X causes / leads to / results in / gives rise to / triggers /
  contributes to Y``, ``X, so Y``, ``X; therefore / thus / hence / consequently / as a result, Y``,
  ``X, which is why Y``, ``X is the cause of / is responsible for Y``;
- backward, effect first: ``Y because (of) X``, ``Y due to / owing to / thanks to X``,
  ``Y as a result / consequence of X``, ``Y is caused / driven / triggered by X``,
  ``Y is a consequence / the result / an effect of X``, ``Y results / stems / arises from X``,
  ``Y is attributable to X``, ``Y, since X``;
- fronted: ``Because (of) X, Y``, ``Due to X, Y``, ``Since X, Y``, ``As a result of X, Y``;
- across a sentence boundary: ``X. Therefore / Thus / Hence / Consequently / As a result / So /
  That is why Y.``, ``X. Y is therefore Z.`` and ``X. This leads to / causes Y.`` take the
  previous sentence as the cause.

"so", "since" and "thus" are guarded: "so that", "so far", "so-called", "so hot", "even so",
"since 1850", "since then", "since the industrial revolution", "thus far" are not links. A
negation right before the connective ("does not cause", "is not due to") marks the link
``negated``. Implicit links ("As temperatures rise, ice melts"; "CO2 traps heat. The planet
warms.") and "as"/"for" as causal conjunctions are not found: see docs/directional.md.

Everything is regular expressions over each sentence: linear in the text's length, offline.

Examples:
    >>> [(l.cause, l.effect) for l in find_links(["Sea levels rise because the oceans warm."])]
    [('the oceans warm', 'Sea levels rise')]
    >>> [(l.cause, l.effect, l.sentences)
    ...  for l in find_links(["Greenhouse gases trap heat.", "As a result, the surface warms."])]
    [('Greenhouse gases trap heat', 'the surface warms', (0, 1))]
    >>> find_links(["Sea ice has declined since the late 1970s."])
    []
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

__all__ = ["CausalLink", "find_links", "extract_links", "RULES_VERSION"]

#: Bumped whenever the patterns change what is found (recorded in docs, see the signature note).
RULES_VERSION = "1"


@dataclass(frozen=True)
class CausalLink:
    """One stated cause -> effect link.

    Attributes:
        cause: The cause span (text), as written.
        effect: The effect span (text), as written.
        connective: The connective that states the link, lower-cased (e.g. ``"because"``).
        sentences: Indices of the sentences the link spans: one, or two when the cause is the
            previous sentence.
        negated: True when the connective is negated ("does not cause"); such links are
            reported but not used for scoring.
    """

    cause: str
    effect: str
    connective: str
    sentences: tuple[int, ...]
    negated: bool = False

    def to_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["sentences"] = list(self.sentences)
        return out

    def __str__(self) -> str:
        neg = "NOT " if self.negated else ""
        return f"[{self.cause}] --{neg}{self.connective}--> [{self.effect}]"


# --------------------------------------------------------------------------------------------
# patterns
# --------------------------------------------------------------------------------------------
_FWD, _BWD, _FRONT, _XS, _ADV = "fwd", "bwd", "front", "xs", "adv"

_COP = r"(?:(?:is|are|was|were|be|been|being|has\s+been|have\s+been|had\s+been)\s+)?"
_ADVB = r"(?:(?:\w+ly|in\s+part|at\s+least\s+partly)\s+)?"
_RESULT_ADV = r"as\s+a\s+(?:direct\s+)?(?:result|consequence)"
_ADVERBS = rf"(?:therefore|thus|hence|consequently|{_RESULT_ADV}|for\s+this\s+reason)"

# (kind, canonical connective, pattern); order matters where two start at the same place
_RULES: list[tuple[str, str, str]] = [
    # sentence-initial: fronted subordinate clause, or an adverbial linking to the previous one
    (_FRONT, "because of", r"^because\s+of\b"),
    (_FRONT, "because", r"^because\b"),
    (_FRONT, "due to", r"^(?:due|owing)\s+to\b"),
    (_FRONT, "as a result of", rf"^{_RESULT_ADV}\s+of\b"),
    (_FRONT, "since", r"^since\b"),
    (_FRONT, "given that", r"^given\s+that\b"),
    (_XS, "therefore", rf"^(?:and\s+)?{_ADVERBS}\b,?"),
    (_XS, "that is why", r"^(?:this|that|which)\s+is\s+(?:why|the\s+reason\s+why)\b"),
    (_XS, "so", r"^(?:and\s+)?so\b(?!-)"),
    # backward: effect first
    (_BWD, "because of", r"\bbecause\s+of\b"),
    (_BWD, "because", r"\bbecause\b"),
    (_BWD, "due to", rf"\b{_COP}{_ADVB}(?:due|owing)\s+to\b"),
    (_BWD, "thanks to", r"\bthanks\s+to\b"),
    (_BWD, "as a result of", rf"\b{_COP}{_ADVB}{_RESULT_ADV}\s+of\b"),
    (
        _BWD,
        "caused by",
        rf"\b{_COP}{_ADVB}(?:caused|driven|triggered|induced|brought\s+about)\s+(?:{_ADVB})by\b",
    ),
    (
        _BWD,
        "is a consequence of",
        rf"\b{_COP}{_ADVB}(?:a|an|the)\s+(?:\w+\s+)?(?:consequence|result|effect|outcome|product)s?\s+of\b",
    ),
    (
        _BWD,
        "results from",
        r"\b(?:results?|resulted|resulting|stems?|stemmed|stemming|arises?|arose|arising)\s+from\b",
    ),
    (_BWD, "attributable to", rf"\b{_COP}{_ADVB}(?:attributable|attributed)\s+to\b"),
    (_BWD, "since", r",\s*since\b|\bsince\b"),
    # forward: cause first
    (
        _FWD,
        "is the cause of",
        rf"\b{_COP}{_ADVB}(?:a|an|the)\s+(?:\w+\s+)?(?:cause|causes|reason|driver|drivers)\s+(?:of|for)\b",
    ),
    (_FWD, "is responsible for", rf"\b{_COP}{_ADVB}responsible\s+for\b"),
    (_FWD, "causes", r"\b(?:causes?|caused|causing)\b(?!\s+(?:of|and\s+effects?)\b)"),
    (_FWD, "leads to", r"\b(?:leads?|led|leading)\s+to\b"),
    (_FWD, "results in", r"\b(?:results?|resulted|resulting)\s+in\b"),
    (_FWD, "gives rise to", r"\b(?:gives?|gave|given|giving)\s+rise\s+to\b"),
    (_FWD, "triggers", r"\b(?:triggers?|triggered|triggering)\b"),
    (_FWD, "contributes to", r"\b(?:contributes?|contributed|contributing)\s+to\b"),
    (_FWD, "brings about", r"\b(?:brings?|brought|bringing)\s+about\b"),
    (_FWD, "which is why", r"[,;]?\s*(?:which|this|that)\s+is\s+(?:why|the\s+reason\s+why)\b"),
    (_FWD, "therefore", rf"(?:[,;]\s*|\band\s+){_ADVERBS}\b,?"),
    (_FWD, "so", r"(?:[,;]\s*(?:and\s+)?|\band\s+|\b)so\b(?!-)"),
    # a linking adverb inside the clause ("the claim is therefore false"): cause = previous one
    (_ADV, "therefore", r"\b(?:therefore|thus|hence|consequently)\b,?"),
]

_MASTER = re.compile(
    "|".join(f"(?P<r{k}>{pattern})" for k, (_, _, pattern) in enumerate(_RULES)), re.IGNORECASE
)

# "so" is a connective only before a clause, and not in these uses
_SO_NOT_AFTER = re.compile(
    r"\s*(?:that|far|much|many|long|as|on|to|called|forth|what|too|and|is|are|was|were|am|do|"
    r"does|did|has|have|had|can|could|will|would|should|shall|must)\b|\s*[-,.;:!?)]|\s*$",
    re.IGNORECASE,
)
_SO_NOT_BEFORE = re.compile(
    r"\b(?:even|think|thought|do|does|did|done|doing|said|say|says|hope|if|not|why|is|was|are|"
    r"were|be|been|or)\s*$",
    re.IGNORECASE,
)
_CLAUSE_START = re.compile(
    r"\s*(?:the|a|an|it|its|they|their|them|we|our|he|his|she|her|there|this|these|those|that|"
    r"i|you|your|one|no|some|many|most|all|each|every|any|such|more|less|fewer|both|either|"
    r"neither)\b",
    re.IGNORECASE,
)
_SINCE_TIME = re.compile(
    r"\s*(?:\d|then\b|ever\b|last\b|early\b|late\b|mid\b|before\b|after\b|records\b|"
    r"(?:january|february|march|april|may|june|july|august|september|october|november|"
    r"december|yesterday|today|childhood)\b|"
    r"(?:the|that|this|those|these|its|their)\s+(?:[\w-]+\s+){0,3}?"
    r"(?:\d\w*|century|centuries|decades?|years?|era|age|revolution|times|beginning|start|"
    r"dawn|end|days?|months?|weeks?|morning|war|period|1800s|1900s)\b)",
    re.IGNORECASE,
)
_SUBJECT = re.compile(r"\s*(?:it|they|he|she|we|i|you|there)\b", re.IGNORECASE)
_NOUN_BEFORE = re.compile(
    r"\b(?:the|a|an|its|their|his|her|our|possible|main|many|several|root|common|primary|other|"
    r"no|known|two|three|word|of|what|underlying|real|likely|probable|major)\s*$",
    re.IGNORECASE,
)
_THUS_NOT = re.compile(r"\s*far\b", re.IGNORECASE)

# clause boundaries a span does not cross
_BOUNDARY = re.compile(
    r";|:\s|,\s*(?:but|while|whereas|although|though|yet|however)\b|\bbut\b|\bwhereas\b",
    re.IGNORECASE,
)
_RIGHT_STOP = re.compile(
    r";|:\s|,\s*(?:but|while|whereas|although|though|yet|however|which|who)\b|\bbut\b|\bwhereas\b",
    re.IGNORECASE,
)
_REPORTING = re.compile(
    r"^.*\b(?:shows?|showed|shown|suggests?|suggested|means?|meant|indicates?|indicated|says?|"
    r"said|states?|stated|argues?|argued|claims?|claimed|believes?|believed|agrees?|agreed|"
    r"found|finds?|notes?|noted|explains?|explained|know|knows|known|is\s+that|is\s+true)"
    r"\s+that\s+",
    re.IGNORECASE,
)
# negation of the connective itself ("does not cause", "not because", "is not due to") ...
_NEGATION = re.compile(
    r"(?:\b(?:not|never|no\s+longer|hardly|cannot)|n't)\s+"
    r"(?:(?:necessarily|directly|always|only|simply|just|entirely|solely|really)\s+)?$",
    re.IGNORECASE,
)
# ... or of its scope ("not all X do Y because Z", "just because X does not mean Y"); a plain
# negative clause ("the claim is not supported because X") still states a link
_SCOPE_NEGATION = re.compile(
    r"\b(?:not\s+(?:all|always|every|necessarily)|n't\s+(?:always|necessarily)|just\s+because)\b",
    re.IGNORECASE,
)
_STEP = re.compile(r"^\s*step\s*\d+\s*[-:.)]\s*", re.IGNORECASE)
_STRIP_TAIL = re.compile(
    r"(?:[\s,;:]+|\b(?:is|are|was|were|be|been|being|has|have|had|can|could|may|might|will|"
    r"would|should|must|does|do|did|which|that|who|also|often|ultimately|eventually|"
    r"directly|indirectly|largely|mainly|mostly|partly|partially|primarily|probably|likely|"
    r"entirely|in\s+turn|in\s+part|all|only|simply|just|not|never|then|and|or|therefore|"
    r"thus|hence|so|generally|usually|typically|further|further\s+more)\b)+$",
    re.IGNORECASE,
)
_STRIP_HEAD = re.compile(
    r"^(?:[\s,;:\-–—]+|step\s*\d+\s*[-:.)]|\b(?:and|but|or|then|that|which|in\s+turn|also|so|thus|therefore|"
    r"hence|consequently)\b)+",
    re.IGNORECASE,
)
_PRONOUN = re.compile(
    r"^(?:this|that|it|these|those|which|this\s+\w+|that\s+\w+|these\s+\w+|those\s+\w+)$",
    re.IGNORECASE,
)
_TERMINAL = re.compile(r"[\s.!?…\"'”’)\]]+$")
_WORD = re.compile(r"\w")


def _clean(span: str) -> str:
    span = _TERMINAL.sub("", span)
    previous = None
    while previous != span:
        previous = span
        span = _STRIP_HEAD.sub("", span)
        span = _STRIP_TAIL.sub("", span).strip()
    return span.strip("\"'“”‘’()[] ")


def _left_clause(text: str, reporting: bool = True) -> str:
    """The clause that ends at the end of ``text`` (after the last boundary and, when
    ``reporting``, after a reporting verb: "studies show that X")."""
    cut = 0
    for m in _BOUNDARY.finditer(text):
        cut = m.end()
    text = text[cut:]
    m = _REPORTING.match(text) if reporting else None
    return text[m.end() :] if m else text


def _right_clause(text: str) -> str:
    """The clause that starts at the start of ``text`` (up to the first boundary)."""
    m = _RIGHT_STOP.search(text)
    return text[: m.start()] if m else text


def _accept(kind: str, canonical: str, sentence: str, m: re.Match[str]) -> bool:
    """Guards for the ambiguous connectives ("so", "since", "thus")."""
    after = sentence[m.end() :]
    matched = m.group(0).lower()
    if canonical == "so":
        if _SO_NOT_AFTER.match(after):
            return False
        if kind == _XS:
            return True
        before = sentence[: m.start()]
        if re.search(r"[,;]|\band\s*$", matched) or re.search(r"\band\s*$", before):
            return not _SO_NOT_BEFORE.search(before)
        # bare "X so Y": only before the start of a clause ("... melted so the sea rose")
        return bool(_CLAUSE_START.match(after)) and not _SO_NOT_BEFORE.search(before)
    if canonical == "since":
        if kind == _BWD and not matched.startswith(","):
            return bool(_SUBJECT.match(after))  # "Y since it is X"; never "Y since the storm"
        return not _SINCE_TIME.match(after)
    if canonical == "causes" and _NOUN_BEFORE.search(sentence[: m.start()]):
        return False  # "the causes of", "possible causes", "the word cause"
    return not ("thus" in matched and _THUS_NOT.match(after))


def _sentence_links(sentences: Sequence[str], i: int) -> list[CausalLink]:
    sentence = _STEP.sub("", sentences[i].strip())  # "Step 2 - ..." (step-by-step chains)
    hits = [
        (m, _RULES[int(m.lastgroup[1:])])  # type: ignore[index]
        for m in _MASTER.finditer(sentence)
    ]
    hits = [(m, rule) for m, rule in hits if _accept(rule[0], rule[1], sentence, m)]
    previous = _clean(sentences[i - 1]) if i > 0 else ""
    links: list[CausalLink] = []
    for k, (m, (kind, _, _)) in enumerate(hits):
        lo = hits[k - 1][0].end() if k else 0
        hi = hits[k + 1][0].start() if k + 1 < len(hits) else len(sentence)
        left, right = sentence[lo : m.start()], sentence[m.end() : hi]
        span: tuple[int, ...] = (i,)
        if kind == _FRONT:
            cause, _, effect = right.partition(",")
            if not effect.strip():
                continue  # "Because of X Y" without a comma: cannot split
        elif kind == _XS:
            cause, effect, span = previous, _right_clause(right), (i - 1, i)
        elif kind == _ADV and _CLAUSE_START.match(right) and _WORD.search(left):
            cause, effect = _left_clause(left), _right_clause(right)  # "X therefore the Y"
        elif kind == _ADV:
            cause, effect, span = previous, left + " " + right, (i - 1, i)
        elif kind == _BWD:
            effect, cause = _left_clause(_after_front(hits, k, left)), _right_clause(right)
        else:
            cause, effect = _left_clause(_after_front(hits, k, left)), _right_clause(right)
        cause, effect = _clean(cause), _clean(effect)
        if _PRONOUN.match(cause) and kind in (_FWD, _BWD) and previous:
            cause, span = previous, (i - 1, i)  # "This leads to Y": the previous sentence
        if not (_WORD.search(cause) and _WORD.search(effect)) or span[0] < 0:
            continue
        negated = kind in (_FWD, _BWD) and bool(
            _NEGATION.search(left)
            or _SCOPE_NEGATION.search(_left_clause(sentence[: m.start()], reporting=False))
        )
        links.append(CausalLink(cause, effect, _connective(m.group(0)), span, negated))
    return links


def _connective(matched: str) -> str:
    """The connective as written, lower-cased, without punctuation or a leading "and"."""
    words = re.sub(r"[^\w\s-]", " ", matched.lower()).split()
    return " ".join(words[1:] if len(words) > 1 and words[0] == "and" else words)


def _after_front(hits: list, k: int, left: str) -> str:
    """After a fronted clause ("Because A, B so C"), the left side of the next starts at B."""
    if k and hits[k - 1][1][0] == _FRONT and "," in left:
        return left.split(",", 1)[1]
    return left


def find_links(sentences: Sequence[str]) -> list[CausalLink]:
    """The explicit cause -> effect links stated in a sequence of sentences.

    Args:
        sentences: The sentences of one text, in order (as a splitter returns them).

    Returns:
        Links in order of appearance; ``link.sentences`` index into ``sentences``.

    Raises:
        TypeError: ``sentences`` is a string or holds a non-string.

    Examples:
        >>> [str(l) for l in find_links(["Deforestation leads to erosion, which causes floods."])]
        ['[Deforestation] --leads to--> [erosion]', '[erosion] --causes--> [floods]']
    """
    if isinstance(sentences, str):
        raise TypeError("sentences must be a sequence of sentences, not a single str")
    for k, s in enumerate(sentences):
        if not isinstance(s, str):
            raise TypeError(f"sentences[{k}] must be a str, got {type(s).__name__}")
    links: list[CausalLink] = []
    for i in range(len(sentences)):
        links.extend(_sentence_links(sentences, i))
    return links


def extract_links(
    text: str, splitter: str | Callable[[str], list[str]] | None = None
) -> list[CausalLink]:
    """Split ``text`` into sentences (default splitter) and find its links.

    Examples:
        >>> [str(l) for l in extract_links("CO2 traps heat. Therefore, the planet warms.")]
        ['[CO2 traps heat] --therefore--> [the planet warms]']
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    from cec.segment import get_splitter

    return find_links(get_splitter(splitter)(text))
