"""Prompt templates: instance -> chat messages for the teacher, and a hash of what was sent.

The paper lays out each instance as ``[Claim]; [Evidence]; [Label]`` followed by an open request
for a causal explanation of how the evidence supports or contradicts the claim. The built-in
templates (``cec_distill/prompts/climate-fever.txt`` and ``esnli.txt``) do exactly that; users
pass their own file with ``--template PATH``.

Template file format: plain text with sections headed by a line ``### system``, ``### user`` or
``### assistant`` (a file without headers is one user message). Placeholders in braces are filled
from the instance: ``{claim}``, ``{evidence}`` (one line per sentence, ``- [LABEL] text``),
``{evidence_with_articles}`` (adds ``(source: Article)``), ``{label}``, ``{premise}``,
``{hypothesis}``, ``{id}``, ``{dataset}``. Write ``{{`` and ``}}`` for literal braces. An
unknown placeholder is an error when the template is loaded.

Examples:
    >>> from cec_distill.data import Evidence, Instance
    >>> inst = Instance("x:1", "climate-fever", "Seas rise.", (Evidence("Ice melts.", "SUPPORTS"),), "SUPPORTS")
    >>> msgs = render_prompt(inst)
    >>> [m["role"] for m in msgs]
    ['system', 'user']
    >>> print(msgs[1]["content"].splitlines()[0])
    [Claim]: Seas rise.
    >>> len(prompt_hash(msgs))
    16
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cec_distill.data import CLIMATE_FEVER, ESNLI, Instance

__all__ = [
    "PromptTemplate",
    "BUILTIN_TEMPLATES",
    "load_template",
    "render_prompt",
    "prompt_hash",
    "format_evidence",
    "format_instance",
    "split_sections",
    "check_placeholders",
    "fill_sections",
]

BUILTIN_TEMPLATES = {CLIMATE_FEVER: "climate-fever.txt", ESNLI: "esnli.txt"}
FIELDS = (
    "claim",
    "evidence",
    "evidence_with_articles",
    "label",
    "premise",
    "hypothesis",
    "id",
    "dataset",
)
ROLES = ("system", "user", "assistant")

_PROMPT_DIR = Path(__file__).resolve().parent / "prompts"
_HEADER = re.compile(r"^###\s*(system|user|assistant)\s*$", re.IGNORECASE)
_TOKEN = re.compile(r"\{\{|\}\}|\{([A-Za-z_]\w*)\}|[{}]")


def split_sections(text: str, header: re.Pattern[str]) -> tuple[tuple[str, str], ...]:
    """``text`` cut at its ``### role`` lines (``header`` matches them, group 1 the role) into
    (role, stripped body) pairs; text before the first header is a ``user`` section."""
    sections: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        m = header.match(line)
        if m:
            sections.append((m.group(1).lower(), []))
        elif sections:
            sections[-1][1].append(line)
        elif line.strip():
            sections.append(("user", [line]))
    return tuple((role, "\n".join(body).strip()) for role, body in sections)


def check_placeholders(
    sections: Sequence[tuple[str, str]], known: Sequence[str], what: str
) -> set[str]:
    """The placeholders ``sections`` use; ``ValueError`` naming ``what`` on a stray brace or a
    placeholder not in ``known`` (``{{`` and ``}}`` are literal braces)."""
    seen: set[str] = set()
    for _, body in sections:
        for m in _TOKEN.finditer(body):
            tok = m.group(0)
            if tok in ("{{", "}}"):
                continue
            if m.group(1) is None:
                raise ValueError(f"{what}: stray {tok!r}; write {tok * 2!r} for a literal brace")
            if m.group(1) not in known:
                raise ValueError(
                    f"{what}: unknown placeholder {tok}; known: "
                    + ", ".join("{" + k + "}" for k in known)
                )
            seen.add(m.group(1))
    return seen


def fill_sections(
    sections: Sequence[tuple[str, str]], values: Mapping[str, str]
) -> list[dict[str, str]]:
    """Chat messages: each non-empty section with its placeholders replaced by ``values``."""

    def sub(m: re.Match) -> str:
        tok = m.group(0)
        if tok == "{{":
            return "{"
        if tok == "}}":
            return "}"
        return values[m.group(1)]

    return [{"role": role, "content": _TOKEN.sub(sub, body)} for role, body in sections if body]


def format_evidence(instance: Instance, *, articles: bool = False) -> str:
    """One line per evidence sentence: ``- [LABEL] text`` (no tag for an e-SNLI premise)."""
    lines = []
    for ev in instance.evidence:
        tag = "" if ev.label == "premise" else f"[{ev.label}] "
        src = f" (source: {ev.article})" if articles and ev.article else ""
        lines.append(f"- {tag}{ev.text}{src}")
    return "\n".join(lines)


def format_instance(instance: Instance) -> str:
    """The paper's input layout ``[Claim]; [Evidence]; [Label]`` without the request (student input)."""
    return f"[Claim]: {instance.claim}\n[Evidence]:\n{format_evidence(instance)}\n[Label]: {instance.label}"


def _fields(instance: Instance) -> dict[str, str]:
    return {
        "claim": instance.claim,
        "evidence": format_evidence(instance),
        "evidence_with_articles": format_evidence(instance, articles=True),
        "label": instance.label,
        "premise": instance.premise,
        "hypothesis": instance.claim,
        "id": instance.id,
        "dataset": instance.dataset,
    }


@dataclass(frozen=True)
class PromptTemplate:
    """A parsed template: ``sections`` is a tuple of (role, text-with-placeholders).

    Attributes:
        name: File name or path it came from (for messages).
        text: The raw file text.
        sections: Parsed (role, body) pairs, in order.
    """

    name: str
    text: str
    sections: tuple[tuple[str, str], ...]

    @classmethod
    def parse(cls, text: str, name: str = "<template>") -> PromptTemplate:
        """Parse template text; raises ``ValueError`` naming the template on bad input."""
        if not isinstance(text, str):
            raise TypeError(f"template text must be a string, got {type(text).__name__}")
        parsed = split_sections(text, _HEADER)
        if not any(role == "user" and body for role, body in parsed):
            raise ValueError(f"template {name}: no user message")
        check_placeholders(parsed, FIELDS, f"template {name}")
        return cls(name=name, text=text, sections=parsed)

    @property
    def hash(self) -> str:
        """sha256 of the template text (first 16 hex digits)."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()[:16]

    def render(self, instance: Instance) -> list[dict[str, str]]:
        """Fill the placeholders from ``instance``; returns chat messages."""
        return fill_sections(self.sections, _fields(instance))


def load_template(
    template: str | os.PathLike | PromptTemplate | None = None, dataset: str = CLIMATE_FEVER
) -> PromptTemplate:
    """A template from a path, a built-in name (``"climate-fever"``, ``"esnli"``), or the dataset default."""
    if isinstance(template, PromptTemplate):
        return template
    if template is None:
        if dataset not in BUILTIN_TEMPLATES:
            raise ValueError(f"no built-in template for dataset {dataset!r}; pass template=PATH")
        template = dataset
    key = str(template)
    if key in BUILTIN_TEMPLATES and not Path(key).exists():
        return _builtin(key)
    p = Path(template)
    if not p.is_file():
        raise FileNotFoundError(
            f"template: no such file {p} (built-in names: {', '.join(BUILTIN_TEMPLATES)})"
        )
    return PromptTemplate.parse(p.read_text(encoding="utf-8"), name=str(p))


@functools.cache
def _builtin(name: str) -> PromptTemplate:
    text = (_PROMPT_DIR / BUILTIN_TEMPLATES[name]).read_text(encoding="utf-8")
    return PromptTemplate.parse(text, name=f"builtin:{name}")


def render_prompt(
    instance: Instance, template: str | os.PathLike | PromptTemplate | None = None
) -> list[dict[str, str]]:
    """Chat messages for ``instance`` (the dataset's built-in template unless one is given)."""
    if not isinstance(instance, Instance):
        raise TypeError(f"instance must be an Instance, got {type(instance).__name__}")
    return load_template(template, instance.dataset).render(instance)


def prompt_hash(messages: list[dict[str, str]]) -> str:
    """sha256 (first 16 hex digits) of the canonical JSON of exactly the messages sent."""
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise TypeError("messages must be a list of {'role', 'content'} dicts")
    canon = json.dumps(messages, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode("utf-8")).hexdigest()[:16]
