"""The lexicon of :mod:`cec.causal`: connective rules, causative verbs, the guarding word lists.

Data only (tables and the regular expressions built from them); the code that applies them to a
sentence, and :data:`cec.causal.RULES_VERSION` (bump it when anything here changes what is found),
live in :mod:`cec.causal`. ``cec.causal.VERB_CLASSES`` is this module's :data:`VERB_CLASSES`.

Examples:
    >>> "emit" in VERB_CLASSES["produce"]
    True
    >>> [canonical for kind, canonical, _ in RULES if kind == FRONT][:2]
    ['because of', 'because']
"""

from __future__ import annotations

import re

# --------------------------------------------------------------------------------------------
# connectives
# --------------------------------------------------------------------------------------------
FWD, BWD, FRONT, XS, ADV = "fwd", "bwd", "front", "xs", "adv"

COP = r"(?:(?:is|are|was|were|be|been|being|has\s+been|have\s+been|had\s+been)\s+)?"
ADVB = r"(?:(?:\w+ly|in\s+part|at\s+least\s+partly)\s+)?"
# "Y is the result of X" (not the noun phrase "the effects of X")
COP_REQ = r"(?:is|are|was|were|be|been|being|has\s+been|have\s+been|had\s+been)\s+"
RESULT_ADV = r"as\s+a\s+(?:direct\s+)?(?:result|consequence)"
ADVERBS = rf"(?:therefore|thus|hence|consequently|{RESULT_ADV}|for\s+this\s+reason)"

# (kind, canonical connective, pattern); order matters where two start at the same place
RULES: list[tuple[str, str, str]] = [
    # sentence-initial: fronted subordinate clause, or an adverbial linking to the previous one
    (FRONT, "because of", r"^because\s+of\b"),
    (FRONT, "because", r"^because\b"),
    (FRONT, "due to", r"^(?:due|owing)\s+to\b"),
    (FRONT, "as a result of", rf"^{RESULT_ADV}\s+of\b"),
    (FRONT, "since", r"^since\b"),
    (FRONT, "given that", r"^given\s+that\b"),
    (XS, "therefore", rf"^(?:and\s+)?{ADVERBS}\b,?"),
    (XS, "that is why", r"^(?:this|that|which)\s+is\s+(?:why|the\s+reason\s+why)\b"),
    (XS, "so", r"^(?:and\s+)?so\b(?!-)"),
    # backward: effect first
    (BWD, "because of", r"\bbecause\s+of\b"),
    (BWD, "because", r"\bbecause\b"),
    (BWD, "due to", rf"\b{COP}{ADVB}(?:due|owing)\s+to\b"),
    (BWD, "thanks to", r"\bthanks\s+to\b"),
    (BWD, "as a result of", rf"\b{COP}{ADVB}{RESULT_ADV}\s+of\b"),
    (
        BWD,
        "caused by",
        rf"\b{COP}{ADVB}(?:caused|driven|triggered|induced|brought\s+about)\s+(?:{ADVB})by\b",
    ),
    (
        BWD,
        "is a consequence of",
        rf"\b{COP_REQ}{ADVB}(?:a|an|the)\s+(?:\w+\s+)?"
        r"(?:consequence|result|effect|outcome|product)s?\s+of\b",
    ),
    (
        BWD,
        "results from",
        r"\b(?:results?|resulted|resulting|stems?|stemmed|stemming|arises?|arose|arising)\s+from\b",
    ),
    (BWD, "attributable to", rf"\b{COP}{ADVB}(?:attributable|attributed)\s+to\b"),
    (BWD, "since", r",\s*since\b|\bsince\b"),
    # forward: cause first
    (
        FWD,
        "is the cause of",
        rf"\b{COP}{ADVB}(?:a|an|the)\s+(?:\w+\s+)?(?:cause|causes|reason|driver|drivers)\s+(?:of|for)\b",
    ),
    (FWD, "is responsible for", rf"\b{COP}{ADVB}responsible\s+for\b"),
    (FWD, "causes", r"\b(?:causes?|caused|causing)\b(?!\s+(?:of|and\s+effects?)\b)"),
    (FWD, "leads to", r"\b(?:leads?|led|leading)\s+to\b"),
    (FWD, "results in", r"\b(?:results?|resulted|resulting)\s+in\b"),
    (FWD, "gives rise to", r"\b(?:gives?|gave|given|giving)\s+rise\s+to\b"),
    (FWD, "triggers", r"\b(?:triggers?|triggered|triggering)\b"),
    (FWD, "contributes to", r"\b(?:contributes?|contributed|contributing)\s+to\b"),
    (FWD, "brings about", r"\b(?:brings?|brought|bringing)\s+about\b"),
    (FWD, "which is why", r"[,;]?\s*(?:which|this|that)\s+is\s+(?:why|the\s+reason\s+why)\b"),
    (FWD, "therefore", rf"(?:[,;]\s*|\band\s+){ADVERBS}\b,?"),
    (FWD, "so", r"(?:[,;]\s*(?:and\s+)?|\band\s+|\b)so\b(?!-)"),
    # a linking adverb inside the clause ("the claim is therefore false"): cause = previous one
    (ADV, "therefore", r"\b(?:therefore|thus|hence|consequently)\b,?"),
]

MASTER = re.compile(
    "|".join(f"(?P<r{k}>{pattern})" for k, (_, _, pattern) in enumerate(RULES)), re.IGNORECASE
)

# "so" is a connective only before a clause, and not in these uses
SO_NOT_AFTER = re.compile(
    r"\s*(?:that|far|much|many|long|as|on|to|called|forth|what|too|and|is|are|was|were|am|do|"
    r"does|did|has|have|had|can|could|will|would|should|shall|must)\b|\s*[-,.;:!?)]|\s*$",
    re.IGNORECASE,
)
SO_NOT_BEFORE = re.compile(
    r"\b(?:even|think|thought|do|does|did|done|doing|said|say|says|hope|if|not|why|is|was|are|"
    r"were|be|been|or)\s*$",
    re.IGNORECASE,
)
CLAUSE_START = re.compile(
    r"\s*(?:the|a|an|it|its|they|their|them|we|our|he|his|she|her|there|this|these|those|that|"
    r"i|you|your|one|no|some|many|most|all|each|every|any|such|more|less|fewer|both|either|"
    r"neither)\b",
    re.IGNORECASE,
)
SINCE_TIME = re.compile(
    r"\s*(?:\d|then\b|ever\b|last\b|early\b|late\b|mid\b|before\b|after\b|records\b|"
    r"(?:january|february|march|april|may|june|july|august|september|october|november|"
    r"december|yesterday|today|childhood)\b|"
    r"(?:the|that|this|those|these|its|their)\s+(?:[\w-]+\s+){0,3}?"
    r"(?:\d\w*|century|centuries|decades?|years?|era|age|revolution|times|beginning|start|"
    r"dawn|end|days?|months?|weeks?|morning|war|period|1800s|1900s)\b)",
    re.IGNORECASE,
)
SUBJECT = re.compile(r"\s*(?:it|they|he|she|we|i|you|there)\b", re.IGNORECASE)
NOUN_BEFORE = re.compile(
    r"\b(?:the|a|an|its|their|his|her|our|possible|main|many|several|root|common|primary|other|"
    r"no|known|two|three|word|of|what|underlying|real|likely|probable|major)\s*$",
    re.IGNORECASE,
)
THUS_NOT = re.compile(r"\s*far\b", re.IGNORECASE)

# clause boundaries a span does not cross
BOUNDARY = re.compile(
    r";|:\s|,\s*(?:but|while|whereas|although|though|yet|however)\b|\bbut\b|\bwhereas\b",
    re.IGNORECASE,
)
RIGHT_STOP = re.compile(
    r";|:\s|,\s*(?:but|while|whereas|although|though|yet|however|which|who)\b|\bbut\b|\bwhereas\b",
    re.IGNORECASE,
)
REPORTING = re.compile(
    r"^.*\b(?:shows?|showed|shown|suggests?|suggested|means?|meant|indicates?|indicated|says?|"
    r"said|states?|stated|argues?|argued|claims?|claimed|believes?|believed|agrees?|agreed|"
    r"found|finds?|notes?|noted|explains?|explained|know|knows|known|is\s+that|is\s+true)"
    r"\s+that\s+",
    re.IGNORECASE,
)
# negation of the connective itself ("does not cause", "not because", "is not due to") ...
NEGATION = re.compile(
    r"(?:\b(?:not|never|no\s+longer|hardly|cannot)|n't)\s+"
    r"(?:(?:necessarily|directly|always|only|simply|just|entirely|solely|really)\s+)?$",
    re.IGNORECASE,
)
# ... or of its scope ("not all X do Y because Z", "just because X does not mean Y"); a plain
# negative clause ("the claim is not supported because X") still states a link
SCOPE_NEGATION = re.compile(
    r"\b(?:not\s+(?:all|always|every|necessarily)|n't\s+(?:always|necessarily)|just\s+because)\b",
    re.IGNORECASE,
)
STEP = re.compile(r"^\s*step\s*\d+\s*[-:.)]\s*", re.IGNORECASE)
STRIP_TAIL = re.compile(
    r"(?:[\s,;:]+|\b(?:is|are|was|were|be|been|being|has|have|had|can|could|may|might|will|"
    r"would|should|must|does|do|did|which|that|who|also|often|ultimately|eventually|"
    r"directly|indirectly|largely|mainly|mostly|partly|partially|primarily|probably|likely|"
    r"entirely|in\s+turn|in\s+part|all|only|simply|just|not|never|then|and|or|therefore|"
    r"thus|hence|so|generally|usually|typically|further|further\s+more)\b)+$",
    re.IGNORECASE,
)
STRIP_HEAD = re.compile(
    r"^(?:[\s,;:\-–—]+|step\s*\d+\s*[-:.)]|\b(?:and|but|or|then|that|which|in\s+turn|also|so|thus|therefore|"
    r"hence|consequently)\b)+",
    re.IGNORECASE,
)
PRONOUN = re.compile(
    r"^(?:this|that|it|these|those|which|this\s+\w+|that\s+\w+|these\s+\w+|those\s+\w+)$",
    re.IGNORECASE,
)
TERMINAL = re.compile(r"[\s.!?…\"'”’)\]]+$")
WORD = re.compile(r"\w")
# --------------------------------------------------------------------------------------------
# causative and change verbs
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
CHANGE = set(VERB_CLASSES["increase"] + VERB_CLASSES["decrease"] + VERB_CLASSES["heat"])
IRREGULAR = {
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
# what can stand between the subject and the verb: auxiliaries, modals, negation, adverbs,
# "help (to)", "is expected to", "has been"
ADVERB_OK = (
    r"(?!(?:supply|family|assembly|anomaly|monopoly|italy|july|reply|rally|ally|only)\b)\w{3,}ly"
)
AUX_WORD = (
    r"is|are|was|were|be|been|being|has|have|had|having|do|does|did|can|could|may|might|will|"
    r"would|shall|should|must|also|not|never|n't|cannot|still|already|often|usually|generally|"
    r"typically|further|then|thus|therefore|ultimately|eventually|in\s+turn|even|only|both|"
    r"help|helps|helped|helping|to|tend|tends|tended|continue|continues|continued|likely|"
    r"unlikely|expected|predicted|projected|known|thought|believed|able|seem|seems|seemed|"
    r"appear|appears|appeared|begin|begins|began|start|starts|started|going|no\s+longer|"
    r"more|less|" + ADVERB_OK
)
AUX_TAIL = re.compile(rf"(?:(?<=\s)|^)(?:(?:{AUX_WORD})\b[\s,]*)+$", re.IGNORECASE)
BE = re.compile(r"\b(?:is|are|was|were|be|been|being)\b", re.IGNORECASE)
TO_OK = re.compile(
    r"\b(?:help|helps|helped|helping|tend|tends|tended|continue|continues|continued|likely|"
    r"unlikely|expected|predicted|projected|known|thought|believed|able|seem|seems|seemed|"
    r"appear|appears|appeared|begin|begins|began|start|starts|started|going|used)\s+to\b",
    re.IGNORECASE,
)
VERB_NEGATION = re.compile(r"\b(?:not|never|cannot|no\s+longer)\b|n't", re.IGNORECASE)
# a word before the verb form that makes it a noun or adjective ("the increase", "of reduced")
NOT_VERB_BEFORE = re.compile(
    r"(?:\b(?:the|a|an|this|these|those|its|their|his|her|our|my|your|of|in|on|for|with|"
    r"by|from|into|any|no|some|each|every|such|further|net|sharp|large|small|big|rapid|"
    r"significant|gradual|sudden|major|slight|annual|average|global|overall|total|more|less|"
    r"much|many|than|most|least|greater|higher|lower|slower|faster|as|without|"
    r"after|before|during|per|via|against|toward|towards|among|between|over|under|about|"
    r"whose|what|be|been|being|to|'s)|[(\"'“‘\-–—/])\s*$",
    re.IGNORECASE,
)
NOT_VERB_AFTER = re.compile(
    r"\s*(?:in|of|to|on|for|from|with|at(?!\s+least)|is|are|was|were)\b",
    re.IGNORECASE,
)
QUANTITY = re.compile(
    r"\s*(?:by\s+)?(?:about|around|nearly|almost|roughly|approximately|some|over|more\s+than|"
    r"less\s+than|up\s+to|at\s+least|only|just)?\s*(?:\d|half\b|twofold|threefold|a\s+factor|"
    r"a\s+third|a\s+quarter|one\b|two\b|three\b|four\b|five\b|ten\b|several\s+(?:times|fold)|"
    r"a\s+few\s+(?:percent|degrees)|percent|significantly\b|substantially\b|sharply\b)",
    re.IGNORECASE,
)
OBJECT_BAD_START = re.compile(
    r"\s*(?:$|[,.;:!?)\]]|at(?!\s+least\b)|between(?!\s+\d)|(?:by|to|from|with|in|on|into|during|over|since|as|than|and|or|"
    r"but|when|while|if|because|itself|themselves|up|down|off|out|away|back|is|are|was|were|"
    r"be|been|for|through|across|under|after|before|until|per|each|every|so|then|too|very|"
    r"than|there|here|much|twice|again|whether|which|who|that|what|how)\b)",
    re.IGNORECASE,
)
NOUN_COMPOUND = re.compile(
    r"(?<=fossil\s)fuels?\b|(?<=jet\s)fuels?\b|(?<=diesel\s)fuels?\b|"
    r"heat\s+(?:waves?|islands?|stress|content|flux|transfer|energy|loss|capacity|exhaustion|"
    r"stroke|sources?|pumps?|sinks?|budget|uptake|domes?|records?)\b",
    re.IGNORECASE,
)
PARTICLE = re.compile(r"\s*(?:up|down|off|out|away|back)\b", re.IGNORECASE)
LEADING_ADVERB = re.compile(rf"\s*(?:(?:{ADVERB_OK}|also|further|even)\b\s*)+", re.IGNORECASE)
# where an object (effect of an active verb, agent of a passive one) ends
OBJECT_END = re.compile(
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
SUBJECT_SKIP = re.compile(
    r"^\s*(?:when|while|whilst|whereas|although|though|if|because|since|unless|until|after|before|"
    r"once|where|as|such\s+as|including|like|especially|particularly|notably|mainly|mostly|"
    r"partly|for\s+example|for\s+instance|e\.g\.|i\.e\.|in\s+turn|in\s+fact|in\s+particular|"
    r"however|therefore|thus|also|moreover|furthermore|indeed|too|meanwhile|then|"
    r"according\s+to)",
    re.IGNORECASE,
)
SUBORDINATOR = re.compile(
    r"\b(?:when|while|whilst|whereas|although|though|if|because|since|unless|until|whether|"
    r"than|once|where|(?<!such\s)(?<!well\s)(?<!so\s)as)\s+",
    re.IGNORECASE,
)
THAT_CLAUSE = re.compile(r"\bthat\s+(?=\S)", re.IGNORECASE)
RELATIVE_END = re.compile(r"(?:,?\s*\b(?:which|that|who)\s*)$", re.IGNORECASE)
COORDINATED = re.compile(
    r"^[^,;]*?(?:,\s*(?:and\s+|or\s+)?|\s(?:and|or)\s+)$|^\s*(?:and|or)\s+$", re.IGNORECASE
)
DASHED = re.compile(r"\s[—–-]{1,2}\s.*?\s[—–-]{1,2}\s")
