"""The LLM judge's rubric: the prompt it is sent, and the strict parse of its answer.

The built-in rubric is ``cec_distill/prompts/judge-rubric-v1.txt`` (:data:`RUBRIC_VERSION` 1).
Its text is hashed (sha256, first 16 hex digits) and the hash goes into the metric's signature
and into every record, so a changed rubric is never mistaken for the old one. A user rubric is
a file in the same format (``judge_rubric=PATH``, ``--judge-rubric PATH``):

* sections headed by a line ``### system`` or ``### user`` (a file without headers is one user
  message), as the teacher's templates (:mod:`cec_distill.prompts`);
* the placeholders ``{context}`` (the instance's claim/evidence or premise/hypothesis block,
  empty when the item has none), ``{reference}`` (the reference explanation, or a numbered list
  of them) and ``{generated}`` (the explanation to grade); ``{reference}`` and ``{generated}``
  must appear; ``{{``/``}}`` are literal braces; any other placeholder is an error at load time.

The answer must be exactly two lines (surrounding blank space and the labels' case aside)::

    Score: 4
    Reason: Same cause and effect as the reference, but it omits the evidence about ice.

:func:`parse_judgement` accepts nothing else: a score outside 1-5, a fraction (``4.5``,
``4/5``), Markdown (``**Score:** 4``), text before ``Score:`` or no ``Reason:`` line is *unparsed*
(``None``), never a zero.

Examples:
    >>> parse_judgement("Score: 4\\nReason: It names the same cause.")
    (4, 'It names the same cause.')
    >>> parse_judgement("I would give it a 4.") is None
    True
    >>> rubric = load_rubric()
    >>> msgs = rubric.render({"claim": "Seas rise.", "evidence": ["Ice melts."]}, ["Melting ice raises seas."], "Ice melts, so seas rise.")
    >>> [m["role"] for m in msgs], msgs[1]["content"].splitlines()[0]
    (['system', 'user'], '[Claim]: Seas rise.')
    >>> rubric.version, len(rubric.hash)
    (1, 16)
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cec_distill.prompts import check_placeholders, fill_sections, split_sections

__all__ = [
    "RUBRIC_VERSION",
    "DEFAULT_RUBRIC",
    "FOLLOW_UP",
    "Rubric",
    "load_rubric",
    "format_context",
    "context_of_instance",
    "parse_judgement",
]

#: Version of the built-in rubric; a new wording is a new file and a new version.
RUBRIC_VERSION = 1
#: The built-in rubric file.
DEFAULT_RUBRIC = (
    Path(__file__).resolve().parents[1] / "prompts" / f"judge-rubric-v{RUBRIC_VERSION}.txt"
)

#: Sent (after the judge's own answer) when that answer did not parse: the one retry.
FOLLOW_UP = (
    "Your answer did not follow the required format. Answer again in exactly two lines and "
    "nothing else:\nScore: <one integer from 1 to 5>\nReason: <one short sentence>"
)

PLACEHOLDERS = ("context", "reference", "generated")
_HEADER = re.compile(r"^###\s*(system|user)\s*$", re.IGNORECASE)
_ANSWER = re.compile(
    r"\A\s*score:[ \t]*([1-5])[ \t]*\r?\n\s*reason:[ \t]*(\S.*?)\s*\Z", re.IGNORECASE | re.DOTALL
)


def parse_judgement(text: Any) -> tuple[int, str] | None:
    """``(score, reason)`` from an answer in the rubric's two-line format, else None."""
    if not isinstance(text, str):
        return None
    m = _ANSWER.match(text)
    if m is None:
        return None
    return int(m.group(1)), " ".join(m.group(2).split())


def _evidence_lines(evidence: Any) -> list[str]:
    if evidence is None:
        return []
    if isinstance(evidence, str):
        return [evidence.strip()] if evidence.strip() else []
    lines = []
    for ev in evidence:
        if isinstance(ev, Mapping):  # {"text": ..., "label": ...} as in an instances file
            tag = ev.get("label")
            text = str(ev.get("text", "")).strip()
            lines.append(f"[{tag}] {text}" if tag and tag != "premise" else text)
        else:
            lines.append(str(ev).strip())
    return [x for x in lines if x]


def format_context(context: Mapping[str, Any] | None) -> str:
    """The instance block of the prompt: premise/hypothesis, or claim/evidence (with the label
    when given), ending in a blank line; ``""`` when the item has neither."""
    if not context:
        return ""
    parts: list[str] = []
    if context.get("premise") or context.get("hypothesis"):
        if context.get("premise"):
            parts.append(f"[Premise]: {str(context['premise']).strip()}")
        if context.get("hypothesis"):
            parts.append(f"[Hypothesis]: {str(context['hypothesis']).strip()}")
    else:
        if context.get("claim"):
            parts.append(f"[Claim]: {str(context['claim']).strip()}")
        lines = _evidence_lines(context.get("evidence"))
        if lines:
            parts.append("[Evidence]:\n" + "\n".join(f"- {x}" for x in lines))
    if parts and context.get("label"):
        parts.append(f"[Label]: {str(context['label']).strip()}")
    return "\n".join(parts) + "\n\n" if parts else ""


def context_of_instance(instance: Any) -> dict[str, Any]:
    """The context of a :class:`cec_distill.data.Instance`: premise/hypothesis for e-SNLI,
    claim/evidence otherwise, with the label."""
    from cec_distill.data import ESNLI

    if instance.dataset == ESNLI:
        return {"premise": instance.premise, "hypothesis": instance.claim, "label": instance.label}
    evidence = [{"text": ev.text, "label": ev.label} for ev in instance.evidence]
    return {"claim": instance.claim, "evidence": evidence, "label": instance.label}


def _references_block(references: Sequence[str]) -> str:
    refs = [" ".join(str(r).split()) for r in references]
    if len(refs) == 1:
        return refs[0]
    return "\n".join(f"{k}. {r}" for k, r in enumerate(refs, 1))


@dataclass(frozen=True)
class Rubric:
    """A parsed rubric: ``sections`` of (role, text with placeholders).

    Attributes:
        name: ``builtin:v1`` or the file's path.
        text: The raw file text (what :attr:`hash` is of).
        sections: (role, body) pairs in order.
        version: :data:`RUBRIC_VERSION` for the built-in rubric, None for a user file.
    """

    name: str
    text: str
    sections: tuple[tuple[str, str], ...]
    version: int | None = None

    @classmethod
    def parse(cls, text: str, name: str = "<rubric>", version: int | None = None) -> Rubric:
        """Parse rubric text; ``ValueError`` naming the rubric on a bad placeholder."""
        if not isinstance(text, str):
            raise TypeError(f"judge_rubric text must be a string, got {type(text).__name__}")
        parsed = split_sections(text, _HEADER)
        seen = check_placeholders(parsed, PLACEHOLDERS, f"judge_rubric {name}")
        missing = [p for p in ("reference", "generated") if p not in seen]
        if missing:
            raise ValueError(
                f"judge_rubric {name}: no {', '.join('{' + p + '}' for p in missing)} placeholder; "
                "the judge must see the reference and the explanation to grade"
            )
        return cls(name=name, text=text, sections=parsed, version=version)

    @property
    def hash(self) -> str:
        """sha256 of the rubric text (first 16 hex digits)."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()[:16]

    @property
    def label(self) -> str:
        """``v1@<hash>`` for the built-in rubric, ``file@<hash>`` for a user's."""
        return f"{'v' + str(self.version) if self.version else 'file'}@{self.hash}"

    def render(
        self, context: Mapping[str, Any] | None, references: Sequence[str], generated: str
    ) -> list[dict[str, str]]:
        """Chat messages for one item."""
        values = {
            "context": format_context(context),
            "reference": _references_block(references),
            "generated": " ".join(str(generated).split()) or "(empty)",
        }
        return fill_sections(self.sections, values)


@functools.cache
def _builtin() -> Rubric:
    return Rubric.parse(
        DEFAULT_RUBRIC.read_text(encoding="utf-8"), f"builtin:v{RUBRIC_VERSION}", RUBRIC_VERSION
    )


def load_rubric(rubric: str | os.PathLike[str] | Rubric | None = None) -> Rubric:
    """The built-in rubric (None), a :class:`Rubric`, or one read from a file."""
    if rubric is None:
        return _builtin()
    if isinstance(rubric, Rubric):
        return rubric
    path = Path(rubric)
    if not path.is_file():
        raise FileNotFoundError(f"judge_rubric: no such file {path}")
    return Rubric.parse(path.read_text(encoding="utf-8"), str(path))
