"""Instance -> prompt and target text -> token ids with the prompt masked out of the loss.

The student sees the paper's input layout ``[Claim]; [Evidence]; [Label]``
(:func:`cec_distill.prompts.format_instance`) followed by an instruction, wrapped in the model's
chat template when it has one. The target depends on the order:

* ``rationale_first`` with the label in the prompt (the paper): the explanation.
* ``rationale_first`` without it: the explanation, then ``Answer: LABEL``.
* ``answer_first`` (Post-Semantic-Thinking): ``Answer: LABEL``, then ``Explanation: ...``.

:func:`encode_example` tokenizes prompt and target pieces separately and concatenates them, so
the prompt ids are exactly those :func:`prompt_ids` gives at generation time; ``labels`` is
``-100`` on every prompt token and the target ids plus the end-of-sequence token elsewhere (the
EOS is learned, so generation stops). ``rationale_mask`` marks the explanation tokens (the
semantic loss pools over them).

Examples:
    >>> from cec_distill.config import FormatConfig
    >>> from cec_distill.data import Evidence, Instance
    >>> inst = Instance("x:1", "esnli", "A man sleeps.", (Evidence("A man runs.", "premise"),),
    ...                 "contradiction")
    >>> target_pieces(inst, "He cannot sleep and run.", FormatConfig(order="answer_first"))
    [('Answer: contradiction\\nExplanation: ', False), ('He cannot sleep and run.', True)]
    >>> parse_output("Answer: neutral\\nExplanation: Maybe.", FormatConfig(order="answer_first"))
    ('neutral', 'Maybe.')
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cec_distill.config import FormatConfig
from cec_distill.data import Instance
from cec_distill.prompts import format_evidence

__all__ = [
    "IGNORE_INDEX",
    "ANSWER_PREFIX",
    "EXPLANATION_PREFIX",
    "Example",
    "use_chat_template",
    "user_message",
    "prompt_text",
    "prompt_ids",
    "leading_bos",
    "target_pieces",
    "encode_example",
    "collate",
    "parse_output",
    "answer_complete",
]

IGNORE_INDEX = -100
ANSWER_PREFIX = "Answer: "
EXPLANATION_PREFIX = "Explanation: "


@dataclass(frozen=True)
class Example:
    """One tokenized training example.

    Attributes:
        id: The instance id.
        input_ids: Prompt ids + target ids + EOS.
        labels: ``-100`` on the prompt, the ids elsewhere.
        rationale_mask: 1 on the explanation tokens of the target, 0 elsewhere.
        n_prompt: Number of prompt tokens.
        truncated: The target was cut to fit ``max_length`` (its EOS dropped).
    """

    id: str
    input_ids: list[int]
    labels: list[int]
    rationale_mask: list[int]
    n_prompt: int
    truncated: bool = False


def use_chat_template(tokenizer: Any, mode: str = "auto") -> bool:
    """Whether prompts go through ``tokenizer.apply_chat_template``."""
    if mode not in ("auto", "none"):
        raise ValueError(f"chat_template must be 'auto' or 'none', got {mode!r}")
    return mode == "auto" and bool(getattr(tokenizer, "chat_template", None))


def user_message(instance: Instance, fmt: FormatConfig) -> str:
    """The instance in the paper's layout (label only when ``fmt.label_in_prompt``) + request."""
    if not isinstance(instance, Instance):
        raise TypeError(f"instance must be an Instance, got {type(instance).__name__}")
    body = f"[Claim]: {instance.claim}\n[Evidence]:\n{format_evidence(instance)}"
    if fmt.label_in_prompt:
        body += f"\n[Label]: {instance.label}"
    request = fmt.instruction
    if fmt.order == "answer_first":
        request += f" Start with '{ANSWER_PREFIX.strip()} <label>' on its own line."
    elif not fmt.label_in_prompt:
        request += f" End with '{ANSWER_PREFIX.strip()} <label>' on its own line."
    return f"{body}\n\n{request}"


def prompt_text(instance: Instance, tokenizer: Any, fmt: FormatConfig, chat: bool) -> str:
    """The full prompt string, ending where the student's answer starts."""
    msg = user_message(instance, fmt)
    if chat:
        messages = []
        if fmt.system:
            messages.append({"role": "system", "content": fmt.system})
        messages.append({"role": "user", "content": msg})
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return f"{msg}\n\n### Response:\n"


def prompt_ids(instance: Instance, tokenizer: Any, fmt: FormatConfig, chat: bool) -> list[int]:
    """Token ids of the prompt, starting with one BOS where the tokenizer starts text with one.

    Plain prompts get the tokenizer's special tokens. A chat template may write the BOS itself
    (Gemma's, Llama 3's) or not (TinyLlama-Chat's Zephyr template): the templated text is
    tokenized without special tokens and the BOS is put first only when the tokenizer adds one
    to text (:func:`leading_bos`) and the template did not, so it is there once either way.
    """
    text = prompt_text(instance, tokenizer, fmt, chat)
    if not chat:
        return list(tokenizer(text)["input_ids"])
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    bos = leading_bos(tokenizer)
    if bos is not None and ids[:1] != [bos]:
        ids.insert(0, bos)
    return ids


def leading_bos(tokenizer: Any) -> int | None:
    """The BOS id the tokenizer puts before text (``None``: it adds none, e.g. GPT-2's, Phi-2's)."""
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is None:
        return None
    with_special = list(tokenizer("a")["input_ids"])
    without = list(tokenizer("a", add_special_tokens=False)["input_ids"])
    return bos if with_special[:1] == [bos] and without[:1] != [bos] else None


def target_pieces(
    instance: Instance, explanation: str, fmt: FormatConfig
) -> list[tuple[str, bool]]:
    """The target as ``(text, is_rationale)`` pieces, in order."""
    if not isinstance(explanation, str) or not explanation.strip():
        raise ValueError(f"instance {instance.id}: the target explanation is empty")
    explanation = explanation.strip()
    if fmt.order == "answer_first":
        return [
            (f"{ANSWER_PREFIX}{instance.label}\n{EXPLANATION_PREFIX}", False),
            (explanation, True),
        ]
    if fmt.label_in_prompt:
        return [(explanation, True)]
    return [(explanation, True), (f"\n{ANSWER_PREFIX}{instance.label}", False)]


def encode_example(
    instance: Instance,
    explanation: str,
    tokenizer: Any,
    fmt: FormatConfig,
    *,
    chat: bool,
    max_length: int | None = None,
) -> Example | None:
    """Tokenize one training example with the prompt masked (see the module docstring).

    Returns ``None`` when the prompt alone leaves fewer than 8 tokens for the target within
    ``max_length``; a target that does not fit is cut (and flagged ``truncated``).
    """
    p_ids = prompt_ids(instance, tokenizer, fmt, chat)
    t_ids: list[int] = []
    r_mask: list[int] = []
    for text, is_rat in target_pieces(instance, explanation, fmt):
        ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
        t_ids += ids
        r_mask += [int(is_rat)] * len(ids)
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ValueError("the tokenizer has no eos_token_id; set tokenizer.eos_token")
    t_ids.append(eos)
    r_mask.append(0)
    truncated = False
    if max_length is not None and len(p_ids) + len(t_ids) > max_length:
        room = max_length - len(p_ids)
        if room < 8:
            return None
        t_ids, r_mask, truncated = t_ids[:room], r_mask[:room], True
    return Example(
        id=instance.id,
        input_ids=p_ids + t_ids,
        labels=[IGNORE_INDEX] * len(p_ids) + t_ids,
        rationale_mask=[0] * len(p_ids) + r_mask,
        n_prompt=len(p_ids),
        truncated=truncated,
    )


def collate(examples: Sequence[Example], pad_id: int) -> dict[str, Any]:
    """Right-pad a batch into tensors ``input_ids``, ``attention_mask``, ``labels``, ``rationale_mask``."""
    import torch

    n = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), n), pad_id, dtype=torch.long)
    att = torch.zeros((len(examples), n), dtype=torch.long)
    lab = torch.full((len(examples), n), IGNORE_INDEX, dtype=torch.long)
    rat = torch.zeros((len(examples), n), dtype=torch.long)
    for i, e in enumerate(examples):
        k = len(e.input_ids)
        ids[i, :k] = torch.tensor(e.input_ids)
        att[i, :k] = 1
        lab[i, :k] = torch.tensor(e.labels)
        rat[i, :k] = torch.tensor(e.rationale_mask)
    return {"input_ids": ids, "attention_mask": att, "labels": lab, "rationale_mask": rat}


_ANSWER_RE = re.compile(r"^\s*answer\s*:\s*(.*)$", re.IGNORECASE | re.MULTILINE)
_EXPL_RE = re.compile(r"^\s*explanation\s*:\s*", re.IGNORECASE | re.MULTILINE)


def parse_output(text: str, fmt: FormatConfig) -> tuple[str | None, str]:
    """Split a generation into ``(answer, explanation)`` (answer ``None`` when not asked/found)."""
    text = text.strip()
    if fmt.label_in_prompt and fmt.order == "rationale_first":
        return None, text
    m = _ANSWER_RE.search(text)
    answer = m.group(1).strip() if m else None
    if fmt.order == "answer_first":
        rest = text[m.end() :] if m else text
        rest = _EXPL_RE.sub("", rest, count=1)
        return answer, rest.strip()
    expl = text[: m.start()] if m else text
    return answer, expl.strip()


def answer_complete(text: str) -> bool:
    """True once ``text`` holds a whole ``Answer: ...`` line (for stopping after the answer)."""
    m = _ANSWER_RE.search(text)
    return bool(m and m.group(1).strip() and m.end() < len(text))
