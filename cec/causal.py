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

import cec.causal_lexicon as lex
from cec.causal_lexicon import VERB_CLASSES

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


def _clean(span: str) -> str:
    span = lex.TERMINAL.sub("", span)
    previous = None
    while previous != span:
        previous = span
        span = lex.STRIP_HEAD.sub("", span)
        span = lex.STRIP_TAIL.sub("", span).strip()
    return span.strip("\"'“”‘’()[] ")


def _left_clause(text: str, reporting: bool = True) -> str:
    """The clause that ends at the end of ``text`` (after the last boundary and, when
    ``reporting``, after a reporting verb: "studies show that X")."""
    cut = 0
    for m in lex.BOUNDARY.finditer(text):
        cut = m.end()
    text = text[cut:]
    m = lex.REPORTING.match(text) if reporting else None
    return text[m.end() :] if m else text


def _right_clause(text: str) -> str:
    """The clause that starts at the start of ``text`` (up to the first boundary)."""
    m = lex.RIGHT_STOP.search(text)
    return text[: m.start()] if m else text


def _accept(kind: str, canonical: str, sentence: str, m: re.Match[str]) -> bool:
    """Guards for the ambiguous connectives ("so", "since", "thus")."""
    after = sentence[m.end() :]
    matched = m.group(0).lower()
    if canonical == "so":
        if lex.SO_NOT_AFTER.match(after):
            return False
        if kind == lex.XS:
            return True
        before = sentence[: m.start()]
        if re.search(r"[,;]|\band\s*$", matched) or re.search(r"\band\s*$", before):
            return not lex.SO_NOT_BEFORE.search(before)
        # bare "X so Y": only before the start of a clause ("... melted so the sea rose")
        return bool(lex.CLAUSE_START.match(after)) and not lex.SO_NOT_BEFORE.search(before)
    if canonical == "since":
        if kind == lex.BWD and not matched.startswith(","):
            return bool(lex.SUBJECT.match(after))  # "Y since it is X"; never "Y since the storm"
        return not lex.SINCE_TIME.match(after)
    if canonical == "causes" and lex.NOUN_BEFORE.search(sentence[: m.start()]):
        return False  # "the causes of", "possible causes", "the word cause"
    return not ("thus" in matched and lex.THUS_NOT.match(after))


def _sentence_links(sentences: Sequence[str], i: int, verbs: bool = False) -> list[CausalLink]:
    sentence = lex.STEP.sub("", sentences[i].strip())  # "Step 2 - ..." (step-by-step chains)
    hits = [
        (m, lex.RULES[int(m.lastgroup[1:])])  # type: ignore[index]
        for m in lex.MASTER.finditer(sentence)
    ]
    hits = [(m, rule) for m, rule in hits if _accept(rule[0], rule[1], sentence, m)]
    previous = _clean(sentences[i - 1]) if i > 0 else ""
    links: list[tuple[int, CausalLink]] = []
    for k, (m, (kind, _, _)) in enumerate(hits):
        lo = hits[k - 1][0].end() if k else 0
        hi = hits[k + 1][0].start() if k + 1 < len(hits) else len(sentence)
        left, right = sentence[lo : m.start()], sentence[m.end() : hi]
        span: tuple[int, ...] = (i,)
        if kind == lex.FRONT:
            cause, _, effect = right.partition(",")
            if not effect.strip():
                continue  # "Because of X Y" without a comma: cannot split
        elif kind == lex.XS:
            cause, effect, span = previous, _right_clause(right), (i - 1, i)
        elif kind == lex.ADV and lex.CLAUSE_START.match(right) and lex.WORD.search(left):
            cause, effect = _left_clause(left), _right_clause(right)  # "X therefore the Y"
        elif kind == lex.ADV:
            cause, effect, span = previous, left + " " + right, (i - 1, i)
        elif kind == lex.BWD:
            effect, cause = _left_clause(_after_front(hits, k, left)), _right_clause(right)
        else:
            cause, effect = _left_clause(_after_front(hits, k, left)), _right_clause(right)
        cause, effect = _clean(cause), _clean(effect)
        if lex.PRONOUN.match(cause) and kind in (lex.FWD, lex.BWD) and previous:
            cause, span = previous, (i - 1, i)  # "This leads to Y": the previous sentence
        if not (lex.WORD.search(cause) and lex.WORD.search(effect)) or span[0] < 0:
            continue
        negated = kind in (lex.FWD, lex.BWD) and bool(
            lex.NEGATION.search(left)
            or lex.SCOPE_NEGATION.search(_left_clause(sentence[: m.start()], reporting=False))
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
    if k and hits[k - 1][1][0] == lex.FRONT and "," in left:
        return left.split(",", 1)[1]
    return left


# --------------------------------------------------------------------------------------------
# verb-carried links ("Aerosols reflect sunlight", "The ozone layer is thinned by CFCs")
# --------------------------------------------------------------------------------------------


def _forms(base: str) -> tuple[str, str, str, str]:
    """Base, third person, past (and participle), -ing of a regular verb."""
    if base in lex.IRREGULAR:
        return lex.IRREGULAR[base]
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


def _subject(text: str) -> str:
    """The noun phrase that ends at the end of ``text`` (the subject of the verb after it)."""
    text = _left_clause(lex.DASHED.sub(" ", text))
    cuts = [m.end() for m in lex.THAT_CLAUSE.finditer(text)]
    if cuts:
        text = text[cuts[-1] :]
    segments = [s for s in text.split(",") if lex.WORD.search(s)]
    while segments and lex.SUBJECT_SKIP.match(segments[-1]):
        rest = segments[-1][lex.SUBJECT_SKIP.match(segments[-1]).end() :]  # type: ignore[union-attr]
        if (
            lex.SUBORDINATOR.match(segments[-1].strip() + " ")
            and re.match(r"\s*\w+", rest)
            and not re.match(r"\s*\w+(?:ed|ing)\b", rest)
        ):
            segments[-1] = rest  # "if he": the subject is "he"
            break
        segments.pop()
    if not segments:
        return ""
    text = segments[-1]
    cuts = [m.end() for m in lex.SUBORDINATOR.finditer(text)]
    return text[cuts[-1] :] if cuts else text


def _object(text: str) -> str:
    """The noun phrase that starts at the start of ``text``."""
    text = _right_clause(text)
    m = lex.OBJECT_END.search(text, 1)
    return text[: m.start()] if m else text


def _verb_hits(sentence: str, taken: list[tuple[int, int]]) -> list[re.Match[str]]:
    """Verb forms of the lexicon used as verbs (not "the increase", "reduced ice", "Floods")."""
    hits: list[re.Match[str]] = []
    for m in _VERB.finditer(sentence):
        if any(m.start() < hi and lo < m.end() for lo, hi in taken):
            continue
        prefix = sentence[: m.start()]
        aux = lex.AUX_TAIL.search(prefix)
        rest = prefix[: aux.start()] if aux else prefix
        if not lex.WORD.search(rest) or lex.NOT_VERB_BEFORE.search(rest):
            continue
        if hits and not rest[hits[-1].end() :].strip() and not aux:
            continue  # "release absorbed carbon": a participle used as an adjective
        if lex.NOUN_COMPOUND.match(sentence, m.start()):
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
        aux_m = lex.AUX_TAIL.search(left)
        aux = aux_m.group(0) if aux_m else ""
        subject_text = left[: aux_m.start()] if aux_m else left
        passive = bool(lex.BE.search(aux)) and is_past
        progressive = bool(lex.BE.search(aux)) and is_ing
        if lex.BE.search(aux) and not (passive or progressive):
            continue  # "temperatures are lower": an adjective
        if is_ing and not progressive:
            continue  # a gerund or participle clause: no stated subject
        if re.search(r"\bto\s*$", aux, re.IGNORECASE) and not lex.TO_OK.search(aux):
            continue  # "policies to reduce emissions": a purpose, not a claim
        noun_after = " " not in word and lex.NOT_VERB_AFTER.match(right) and not passive
        if noun_after and not (is_past and re.match(r"\s*by\b", right)):
            continue  # "increases in temperature", "the release of methane"
        if lex.PARTICLE.match(right) and " " not in entry:
            right = right[lex.PARTICLE.match(right).end() :]  # type: ignore[union-attr]
        bare_by = (
            is_past
            and not aux
            and re.match(rf"(?:{lex.LEADING_ADVERB.pattern})?\s*by\b", right, re.IGNORECASE)
        )
        if passive or bare_by:
            agents = [
                a
                for a in re.finditer(r"\bby\b", right, re.IGNORECASE)
                if not lex.QUANTITY.match(right[a.end() :])
            ]
            if not agents:
                previous = (m.end(), None, True)
                continue  # "the report was released in April": no agent, no link
            cause = _object(right[agents[0].end() :])
            effect = subject_text
        else:
            obj = (
                right[lex.LEADING_ADVERB.match(right).end() :]
                if lex.LEADING_ADVERB.match(right)
                else right
            )
            if lex.OBJECT_BAD_START.match(obj):
                continue  # intransitive: "ice melts at 0 °C", "prices rose sharply"
            if entry in lex.CHANGE and lex.QUANTITY.match(obj):
                continue  # "emissions increased 40 percent"
            cause, effect = subject_text, _object(obj)
        subject = effect if (passive or bare_by) else cause
        prev_end, prev_link, prev_passive = previous
        coordinated = (
            prev_link is not None
            and not prev_passive
            and not (passive or bare_by)
            and prev_end == lo
            and lex.COORDINATED.match(subject)
        )
        if coordinated:
            subject = prev_link.cause  # type: ignore[union-attr]
        else:
            stripped = lex.RELATIVE_END.sub("", subject)
            relative = stripped != subject
            subject = stripped if relative else _subject(subject)
            if relative and prev_link is None and not lex.WORD.search(subject):
                subject = ""
            if prev_link is not None and prev_end == lo and not relative:
                tail = re.split(r",\s*(?:and\s+|or\s+)?|\s(?:and|or)\s+", subject)
                subject = tail[-1]  # "A raises B and C lowers D": the subject is C
        subject = _clean(subject)
        if passive or bare_by:
            effect, cause = subject, _clean(cause)
        else:
            cause, effect = subject, _clean(effect)
        if not (lex.WORD.search(cause) and lex.WORD.search(effect)):
            previous = (m.end(), None, passive)
            continue
        negated = bool(lex.VERB_NEGATION.search(aux))
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
