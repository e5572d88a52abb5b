"""Explicit cause -> effect links in explanation text (connective and verb patterns, no model).

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

Links carried by a causative or change verb (``kind="verb"``; ``find_links(..., verbs=False)``
leaves them out) come from a lexicon (:data:`VERB_CLASSES`) and patterns: active ``X lowers /
emits / destroys Y`` (cause = subject, effect = object), passive ``Y is thinned / was released
by X``, a relative pronoun taking its antecedent (``X emits Y, which cools Z``) and coordinated
verbs sharing a subject. Nouns, adjectives, intransitive uses ("emissions increased 40%"),
agentless passives and participle clauses give no link.

Everything is regular expressions over each sentence: linear in the text's length, offline.

Examples:
    >>> [(l.cause, l.effect) for l in find_links(["Sea levels rise because the oceans warm."])]
    [('the oceans warm', 'Sea levels rise')]
    >>> [(l.cause, l.effect, l.sentences, l.kind)
    ...  for l in find_links(["Greenhouse gases trap heat.", "As a result, the surface warms."])]
    [('Greenhouse gases', 'heat', (0,), 'verb'), ('Greenhouse gases trap heat', 'the surface warms', (0, 1), 'connective')]
    >>> find_links(["Sea ice has declined since the late 1970s."])
    []
    >>> [str(l) for l in find_links(["The ozone layer is thinned by CFCs."])]
    ['[CFCs] --thinned (verb)--> [The ozone layer]']
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

__all__ = ["CausalLink", "find_links", "extract_links", "RULES_VERSION"]

#: Bumped whenever the patterns change what is found (recorded in docs, see the signature note).
RULES_VERSION = "2"


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
        kind: ``"connective"`` (stated with a connective) or ``"verb"`` (carried by a causative
            verb: "Aerosols reflect sunlight"; ``connective`` then holds the verb as written).
    """

    cause: str
    effect: str
    connective: str
    sentences: tuple[int, ...]
    negated: bool = False
    kind: str = "connective"

    def to_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["sentences"] = list(self.sentences)
        return out

    def __str__(self) -> str:
        neg = "NOT " if self.negated else ""
        verb = " (verb)" if self.kind == "verb" else ""
        return f"[{self.cause}] --{neg}{self.connective}{verb}--> [{self.effect}]"


# --------------------------------------------------------------------------------------------
# patterns
# --------------------------------------------------------------------------------------------
_FWD, _BWD, _FRONT, _XS, _ADV = "fwd", "bwd", "front", "xs", "adv"

_COP = r"(?:(?:is|are|was|were|be|been|being|has\s+been|have\s+been|had\s+been)\s+)?"
_ADVB = r"(?:(?:\w+ly|in\s+part|at\s+least\s+partly)\s+)?"
# "Y is the result of X" (not the noun phrase "the effects of X")
_COP_REQ = r"(?:is|are|was|were|be|been|being|has\s+been|have\s+been|had\s+been)\s+"
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
        rf"\b{_COP_REQ}{_ADVB}(?:a|an|the)\s+(?:\w+\s+)?"
        r"(?:consequence|result|effect|outcome|product)s?\s+of\b",
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


def _sentence_links(sentences: Sequence[str], i: int, verbs: bool = False) -> list[CausalLink]:
    sentence = _STEP.sub("", sentences[i].strip())  # "Step 2 - ..." (step-by-step chains)
    hits = [
        (m, _RULES[int(m.lastgroup[1:])])  # type: ignore[index]
        for m in _MASTER.finditer(sentence)
    ]
    hits = [(m, rule) for m, rule in hits if _accept(rule[0], rule[1], sentence, m)]
    previous = _clean(sentences[i - 1]) if i > 0 else ""
    links: list[tuple[int, CausalLink]] = []
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
        links.append((m.start(), CausalLink(cause, effect, _connective(m.group(0)), span, negated)))
    if verbs:
        links += _verb_links(sentence, i, [m.span() for m, _ in hits])
        links.sort(key=lambda pair: pair[0])
    return [link for _, link in links]


def _connective(matched: str) -> str:
    """The connective as written, lower-cased, without punctuation or a leading "and"."""
    words = re.sub(r"[^\w\s-]", " ", matched.lower()).split()
    return " ".join(words[1:] if len(words) > 1 and words[0] == "and" else words)


def _after_front(hits: list, k: int, left: str) -> str:
    """After a fronted clause ("Because A, B so C"), the left side of the next starts at B."""
    if k and hits[k - 1][1][0] == _FRONT and "," in left:
        return left.split(",", 1)[1]
    return left


# --------------------------------------------------------------------------------------------
# verb-carried links ("Aerosols reflect sunlight", "The ozone layer is thinned by CFCs")
# --------------------------------------------------------------------------------------------
#: Causative and change verbs, by class (docs/directional.md lists them). "cause", "trigger",
#: "lead to", "result in" are connectives above; "drive" is here for its active and
#: "driven up by" forms ("is driven by" is the connective).
VERB_CLASSES: dict[str, tuple[str, ...]] = {
    name: tuple(v.strip() for v in verbs.split(","))
    for name, verbs in {
        "increase": "increase, raise, boost, elevate, enhance, amplify, intensify, strengthen, "
        "worsen, exacerbate, aggravate, accelerate, speed up, drive up, push up, expand, spread, "
        "promote, stimulate",
        "decrease": "reduce, lower, decrease, diminish, cut, curb, lessen, weaken, slow, "
        "slow down, suppress, inhibit, impair, limit, offset, shrink, thin, deplete, drive down, "
        "push down, bring down",
        "produce": "produce, create, generate, release, emit, spark, set off, drive, fuel, feed, "
        "form",
        "damage": "damage, destroy, threaten, harm, kill, endanger, erode, degrade, contaminate, "
        "pollute, poison, disrupt, wipe out, smother, bleach, eject, acidify, flood",
        "heat": "cool, warm, heat, melt, dry out, darken, cool off, heat up, warm up",
        "block": "block, prevent, absorb, reflect, trap, remove, protect, insulate, control, "
        "affect, impact, alter, ionize, ionise",
    }.items()
}
#: Verbs that also name a change of their subject ("temperatures increased 40%"): an object that
#: is a quantity is not an effect.
_CHANGE = set(VERB_CLASSES["increase"] + VERB_CLASSES["decrease"] + VERB_CLASSES["heat"])
_IRREGULAR = {
    "cut": ("cut", "cuts", "cut", "cutting"),
    "set": ("set", "sets", "set", "setting"),
    "spread": ("spread", "spreads", "spread", "spreading"),
    "drive": ("drive", "drives", "drove|driven", "driving"),
    "feed": ("feed", "feeds", "fed", "feeding"),
    "shrink": ("shrink", "shrinks", "shrank|shrunk|shrunken", "shrinking"),
    "bring": ("bring", "brings", "brought", "bringing"),
    "thin": ("thin", "thins", "thinned", "thinning"),
    "wipe": ("wipe", "wipes", "wiped", "wiping"),
    "emit": ("emit", "emits", "emitted", "emitting"),
    "control": ("control", "controls", "controlled", "controlling"),
    "offset": ("offset", "offsets", "offset", "offsetting"),
}


def _forms(base: str) -> tuple[str, str, str, str]:
    """Base, third person, past (and participle), -ing of a regular verb."""
    if base in _IRREGULAR:
        return _IRREGULAR[base]
    third = base + ("es" if base.endswith(("s", "sh", "ch", "x", "z")) else "s")
    if base.endswith("y") and base[-2] not in "aeiou":
        third = base[:-1] + "ies"
    if base.endswith("e"):
        return base, third, base + "d", base[:-1] + "ing"
    if base.endswith("y") and base[-2] not in "aeiou":
        return base, third, base[:-1] + "ied", base + "ing"
    return base, third, base + "ed", base + "ing"


def _verb_pattern() -> tuple[re.Pattern[str], dict[str, str]]:
    alternatives, canon = [], {}
    for entries in VERB_CLASSES.values():
        for entry in entries:
            head, _, particle = entry.partition(" ")
            base, third, past, ing = _forms(head)
            for tag, form in (("b", base), ("s", third), ("d", past), ("g", ing)):
                for f in form.split("|"):
                    key = f"{f} {particle}".strip()
                    if key in canon:
                        continue
                    canon[key] = f"{entry}|{tag}"
                    alternatives.append((key, tag))
    return re.compile(rf"\b{_trie([k for k, _ in alternatives])}\b", re.IGNORECASE), canon


def _trie(words: list[str]) -> str:
    """One regex for many words, as a trie (much faster than a flat alternation); at each
    node the longer continuation is tried first, so "warmed up" wins over "warmed"."""
    root: dict = {}
    for word in words:
        node = root
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict) -> str:
        alts = [
            (r"\s+" if ch == " " else re.escape(ch)) + build(child)
            for ch, child in sorted(node.items())
            if ch
        ]
        if not alts:
            return ""
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        return f"(?:{body})?" if "" in node else body

    return build(root)


_VERB, _VERB_CANON = _verb_pattern()
# what can stand between the subject and the verb: auxiliaries, modals, negation, adverbs,
# "help (to)", "is expected to", "has been"
_ADVERB_OK = (
    r"(?!(?:supply|family|assembly|anomaly|monopoly|italy|july|reply|rally|ally|only)\b)\w{3,}ly"
)
_AUX_WORD = (
    r"is|are|was|were|be|been|being|has|have|had|having|do|does|did|can|could|may|might|will|"
    r"would|shall|should|must|also|not|never|n't|cannot|still|already|often|usually|generally|"
    r"typically|further|then|thus|therefore|ultimately|eventually|in\s+turn|even|only|both|"
    r"help|helps|helped|helping|to|tend|tends|tended|continue|continues|continued|likely|"
    r"unlikely|expected|predicted|projected|known|thought|believed|able|seem|seems|seemed|"
    r"appear|appears|appeared|begin|begins|began|start|starts|started|going|no\s+longer|"
    r"more|less|" + _ADVERB_OK
)
_AUX_TAIL = re.compile(rf"(?:(?<=\s)|^)(?:(?:{_AUX_WORD})\b[\s,]*)+$", re.IGNORECASE)
_BE = re.compile(r"\b(?:is|are|was|were|be|been|being)\b", re.IGNORECASE)
_TO_OK = re.compile(
    r"\b(?:help|helps|helped|helping|tend|tends|tended|continue|continues|continued|likely|"
    r"unlikely|expected|predicted|projected|known|thought|believed|able|seem|seems|seemed|"
    r"appear|appears|appeared|begin|begins|began|start|starts|started|going|used)\s+to\b",
    re.IGNORECASE,
)
_VERB_NEGATION = re.compile(r"\b(?:not|never|cannot|no\s+longer)\b|n't", re.IGNORECASE)
# a word before the verb form that makes it a noun or adjective ("the increase", "of reduced")
_NOT_VERB_BEFORE = re.compile(
    r"(?:\b(?:the|a|an|this|these|those|its|their|his|her|our|my|your|of|in|on|for|with|"
    r"by|from|into|any|no|some|each|every|such|further|net|sharp|large|small|big|rapid|"
    r"significant|gradual|sudden|major|slight|annual|average|global|overall|total|more|less|"
    r"much|many|than|most|least|greater|higher|lower|slower|faster|as|without|"
    r"after|before|during|per|via|against|toward|towards|among|between|over|under|about|"
    r"whose|what|be|been|being|to|'s)|[(\"'“‘\-–—/])\s*$",
    re.IGNORECASE,
)
_NOT_VERB_AFTER = re.compile(
    r"\s*(?:in|of|to|on|for|from|with|at(?!\s+least)|is|are|was|were)\b",
    re.IGNORECASE,
)
_QUANTITY = re.compile(
    r"\s*(?:by\s+)?(?:about|around|nearly|almost|roughly|approximately|some|over|more\s+than|"
    r"less\s+than|up\s+to|at\s+least|only|just)?\s*(?:\d|half\b|twofold|threefold|a\s+factor|"
    r"a\s+third|a\s+quarter|one\b|two\b|three\b|four\b|five\b|ten\b|several\s+(?:times|fold)|"
    r"a\s+few\s+(?:percent|degrees)|percent|significantly\b|substantially\b|sharply\b)",
    re.IGNORECASE,
)
_OBJECT_BAD_START = re.compile(
    r"\s*(?:$|[,.;:!?)\]]|at(?!\s+least\b)|between(?!\s+\d)|(?:by|to|from|with|in|on|into|during|over|since|as|than|and|or|"
    r"but|when|while|if|because|itself|themselves|up|down|off|out|away|back|is|are|was|were|"
    r"be|been|for|through|across|under|after|before|until|per|each|every|so|then|too|very|"
    r"than|there|here|much|twice|again|whether|which|who|that|what|how)\b)",
    re.IGNORECASE,
)
_NOUN_COMPOUND = re.compile(
    r"(?<=fossil\s)fuels?\b|(?<=jet\s)fuels?\b|(?<=diesel\s)fuels?\b|"
    r"heat\s+(?:waves?|islands?|stress|content|flux|transfer|energy|loss|capacity|exhaustion|"
    r"stroke|sources?|pumps?|sinks?|budget|uptake|domes?|records?)\b",
    re.IGNORECASE,
)
_PARTICLE = re.compile(r"\s*(?:up|down|off|out|away|back)\b", re.IGNORECASE)
_LEADING_ADVERB = re.compile(rf"\s*(?:(?:{_ADVERB_OK}|also|further|even)\b\s*)+", re.IGNORECASE)
# where an object (effect of an active verb, agent of a passive one) ends
_OBJECT_END = re.compile(
    r"\s*[,;:]|\s[—–-]{1,2}\s|\b(?:which|who|whom|whose|that|when|while|whereas|although|"
    r"though|if|because|since|unless|until|as|than|thereby|thus|therefore|so|by|to|from|"
    r"at(?!\s+least)|"
    r"into|onto|with|without|during|through|throughout|across|over|under|per|via|toward|"
    r"towards|between(?!\s+\d)|among|after|before|far\s+more|much\s+more|more\s+than|"
    r"(?:each|every|per|last|this|next)\s+(?:year|day|decade|century|summer|winter|month|week)|"
    r"annually|yearly|back|away|up|down|in\s+(?:many|several|various|different)\s+ways|"
    r"and\s+(?:is|are|was|were|has|have|had|can|could|may|might|will|would|should|must|does|"
    r"do|did|also|then|thus|so))\b",
    re.IGNORECASE,
)
# what a subject does not start with: subordinate clauses, examples, linking adverbs
_SUBJECT_SKIP = re.compile(
    r"^\s*(?:when|while|whilst|whereas|although|though|if|because|since|unless|until|after|before|"
    r"once|where|as|such\s+as|including|like|especially|particularly|notably|mainly|mostly|"
    r"partly|for\s+example|for\s+instance|e\.g\.|i\.e\.|in\s+turn|in\s+fact|in\s+particular|"
    r"however|therefore|thus|also|moreover|furthermore|indeed|too|meanwhile|then|"
    r"according\s+to)",
    re.IGNORECASE,
)
_SUBORDINATOR = re.compile(
    r"\b(?:when|while|whilst|whereas|although|though|if|because|since|unless|until|whether|"
    r"than|once|where|(?<!such\s)(?<!well\s)(?<!so\s)as)\s+",
    re.IGNORECASE,
)
_THAT_CLAUSE = re.compile(r"\bthat\s+(?=\S)", re.IGNORECASE)
_RELATIVE_END = re.compile(r"(?:,?\s*\b(?:which|that|who)\s*)$", re.IGNORECASE)
_COORDINATED = re.compile(
    r"^[^,;]*?(?:,\s*(?:and\s+|or\s+)?|\s(?:and|or)\s+)$|^\s*(?:and|or)\s+$", re.IGNORECASE
)
_DASHED = re.compile(r"\s[—–-]{1,2}\s.*?\s[—–-]{1,2}\s")


def _subject(text: str) -> str:
    """The noun phrase that ends at the end of ``text`` (the subject of the verb after it)."""
    text = _left_clause(_DASHED.sub(" ", text))
    cuts = [m.end() for m in _THAT_CLAUSE.finditer(text)]
    if cuts:
        text = text[cuts[-1] :]
    segments = [s for s in text.split(",") if _WORD.search(s)]
    while segments and _SUBJECT_SKIP.match(segments[-1]):
        rest = segments[-1][_SUBJECT_SKIP.match(segments[-1]).end() :]  # type: ignore[union-attr]
        if (
            _SUBORDINATOR.match(segments[-1].strip() + " ")
            and re.match(r"\s*\w+", rest)
            and not re.match(r"\s*\w+(?:ed|ing)\b", rest)
        ):
            segments[-1] = rest  # "if he": the subject is "he"
            break
        segments.pop()
    if not segments:
        return ""
    text = segments[-1]
    cuts = [m.end() for m in _SUBORDINATOR.finditer(text)]
    return text[cuts[-1] :] if cuts else text


def _object(text: str) -> str:
    """The noun phrase that starts at the start of ``text``."""
    text = _right_clause(text)
    m = _OBJECT_END.search(text, 1)
    return text[: m.start()] if m else text


def _verb_hits(sentence: str, taken: list[tuple[int, int]]) -> list[re.Match[str]]:
    """Verb forms of the lexicon used as verbs (not "the increase", "reduced ice", "Floods")."""
    hits: list[re.Match[str]] = []
    for m in _VERB.finditer(sentence):
        if any(m.start() < hi and lo < m.end() for lo, hi in taken):
            continue
        prefix = sentence[: m.start()]
        aux = _AUX_TAIL.search(prefix)
        rest = prefix[: aux.start()] if aux else prefix
        if not _WORD.search(rest) or _NOT_VERB_BEFORE.search(rest):
            continue
        if hits and not rest[hits[-1].end() :].strip() and not aux:
            continue  # "release absorbed carbon": a participle used as an adjective
        if _NOUN_COMPOUND.match(sentence, m.start()):
            continue  # "heat waves", "fossil fuel subsidies"
        hits.append(m)
    return hits


def _verb_links(
    sentence: str, i: int, taken: list[tuple[int, int]]
) -> list[tuple[int, CausalLink]]:
    """Verb-carried links of one sentence; ``taken`` are the connective hits' spans."""
    hits = _verb_hits(sentence, taken)
    stops = sorted({lo for lo, _ in taken} | {hi for _, hi in taken})
    out: list[tuple[int, CausalLink]] = []
    previous: tuple[int, CausalLink | None, bool] = (-1, None, False)  # end, link, passive
    for k, m in enumerate(hits):
        lo = max([0, *[s for s in stops if s <= m.start()]])
        if k and hits[k - 1].end() > lo:
            lo = hits[k - 1].end()
        hi = min([len(sentence), *[s for s in stops if s >= m.end()]])
        if k + 1 < len(hits):
            hi = min(hi, hits[k + 1].start())
        left, right = sentence[lo : m.start()], sentence[m.end() : hi]
        word = re.sub(r"\s+", " ", m.group(0).lower())
        entry, tag = _VERB_CANON[word].split("|")
        head = word.split(" ")[0]
        is_past = tag == "d" or head in ("cut", "set", "spread", "offset")
        is_ing = tag == "g"
        aux_m = _AUX_TAIL.search(left)
        aux = aux_m.group(0) if aux_m else ""
        subject_text = left[: aux_m.start()] if aux_m else left
        passive = bool(_BE.search(aux)) and is_past
        progressive = bool(_BE.search(aux)) and is_ing
        if _BE.search(aux) and not (passive or progressive):
            continue  # "temperatures are lower": an adjective
        if is_ing and not progressive:
            continue  # a gerund or participle clause: no stated subject
        if re.search(r"\bto\s*$", aux, re.IGNORECASE) and not _TO_OK.search(aux):
            continue  # "policies to reduce emissions": a purpose, not a claim
        noun_after = " " not in word and _NOT_VERB_AFTER.match(right) and not passive
        if noun_after and not (is_past and re.match(r"\s*by\b", right)):
            continue  # "increases in temperature", "the release of methane"
        if _PARTICLE.match(right) and " " not in entry:
            right = right[_PARTICLE.match(right).end() :]  # type: ignore[union-attr]
        bare_by = (
            is_past
            and not aux
            and re.match(rf"(?:{_LEADING_ADVERB.pattern})?\s*by\b", right, re.IGNORECASE)
        )
        if passive or bare_by:
            agents = [
                a
                for a in re.finditer(r"\bby\b", right, re.IGNORECASE)
                if not _QUANTITY.match(right[a.end() :])
            ]
            if not agents:
                previous = (m.end(), None, True)
                continue  # "the report was released in April": no agent, no link
            cause = _object(right[agents[0].end() :])
            effect = subject_text
        else:
            obj = (
                right[_LEADING_ADVERB.match(right).end() :]
                if _LEADING_ADVERB.match(right)
                else right
            )
            if _OBJECT_BAD_START.match(obj):
                continue  # intransitive: "ice melts at 0 °C", "prices rose sharply"
            if entry in _CHANGE and _QUANTITY.match(obj):
                continue  # "emissions increased 40 percent"
            cause, effect = subject_text, _object(obj)
        subject = effect if (passive or bare_by) else cause
        prev_end, prev_link, prev_passive = previous
        coordinated = (
            prev_link is not None
            and not prev_passive
            and not (passive or bare_by)
            and prev_end == lo
            and _COORDINATED.match(subject)
        )
        if coordinated:
            subject = prev_link.cause  # type: ignore[union-attr]
        else:
            stripped = _RELATIVE_END.sub("", subject)
            relative = stripped != subject
            subject = stripped if relative else _subject(subject)
            if relative and prev_link is None and not _WORD.search(subject):
                subject = ""
            if prev_link is not None and prev_end == lo and not relative:
                tail = re.split(r",\s*(?:and\s+|or\s+)?|\s(?:and|or)\s+", subject)
                subject = tail[-1]  # "A raises B and C lowers D": the subject is C
        subject = _clean(subject)
        if passive or bare_by:
            effect, cause = subject, _clean(cause)
        else:
            cause, effect = subject, _clean(effect)
        if not (_WORD.search(cause) and _WORD.search(effect)):
            previous = (m.end(), None, passive)
            continue
        negated = bool(_VERB_NEGATION.search(aux))
        link = CausalLink(cause, effect, word, (i,), negated, "verb")
        out.append((m.start(), link))
        previous = (m.end(), link, passive or bool(bare_by))
    return out


def find_links(sentences: Sequence[str], verbs: bool = True) -> list[CausalLink]:
    """The explicit cause -> effect links stated in a sequence of sentences.

    Args:
        sentences: The sentences of one text, in order (as a splitter returns them).
        verbs: Also find links carried by a causative verb ("Insulin lowers blood sugar",
            "The ozone layer is thinned by CFCs"); ``False`` gives the connective links only.

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
    if not isinstance(verbs, bool):
        raise TypeError(f"verbs must be a bool, got {type(verbs).__name__}")
    links: list[CausalLink] = []
    for i in range(len(sentences)):
        links.extend(_sentence_links(sentences, i, verbs))
    return links


def extract_links(
    text: str, splitter: str | Callable[[str], list[str]] | None = None, verbs: bool = True
) -> list[CausalLink]:
    """Split ``text`` into sentences (default splitter) and find its links.

    Examples:
        >>> [str(l) for l in extract_links("CO2 traps heat. Therefore, the planet warms.")]
        ['[CO2] --traps (verb)--> [heat]', '[CO2 traps heat] --therefore--> [the planet warms]']
        >>> [str(l) for l in extract_links("CO2 traps heat. Thus the planet warms.", verbs=False)]
        ['[CO2 traps heat] --thus--> [the planet warms]']
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    from cec.segment import get_splitter

    return find_links(get_splitter(splitter)(text), verbs=verbs)
