"""Prompt/target formatting: the label mask covers exactly the prompt, order variants, parsing."""

from __future__ import annotations

import pytest
from tiny_models import build_tokenizer, tiny_instances

from cec_distill.config import ConfigError, FormatConfig
from cec_distill.formatting import (
    IGNORE_INDEX,
    answer_complete,
    collate,
    encode_example,
    parse_output,
    prompt_ids,
    prompt_text,
    use_chat_template,
)

FORMATS = [
    FormatConfig(),  # the paper: label in the prompt, explanation only
    FormatConfig(order="rationale_first", label_in_prompt=False),
    FormatConfig(order="answer_first"),
]


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    return build_tokenizer(tmp_path_factory.mktemp("tok"))


@pytest.mark.parametrize("chat", [True, False])
@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f"{f.order}-label{f.label_in_prompt}")
def test_label_mask_covers_exactly_the_prompt(tok, fmt, chat):
    inst = tiny_instances(2)[1]
    expl = inst.explanations[0]
    ex = encode_example(inst, expl, tok, fmt, chat=chat)
    p_ids = prompt_ids(inst, tok, fmt, chat)
    n = len(p_ids)
    assert ex.n_prompt == n
    assert ex.input_ids[:n] == p_ids  # the very ids generation will see
    assert ex.labels[:n] == [IGNORE_INDEX] * n
    assert all(x != IGNORE_INDEX for x in ex.labels[n:])
    assert ex.labels[n:] == ex.input_ids[n:]
    assert ex.labels[-1] == tok.eos_token_id  # EOS is learned so generation stops
    target = tok.decode(ex.input_ids[n:-1])
    rationale = tok.decode([t for t, m in zip(ex.input_ids, ex.rationale_mask, strict=True) if m])
    assert rationale == expl
    assert expl in target
    if fmt.order == "answer_first":
        assert target.startswith(f"Answer: {inst.label}\nExplanation: ")
        assert f"[Label]: {inst.label}" not in tok.decode(p_ids)
    elif not fmt.label_in_prompt:
        assert target.endswith(f"Answer: {inst.label}")
    else:
        assert target == expl
        assert f"[Label]: {inst.label}" in tok.decode(p_ids)


def test_chat_template_used_when_present(tok):
    inst = tiny_instances(1)[0]
    fmt = FormatConfig(system="Be brief.")
    assert use_chat_template(tok, "auto") and not use_chat_template(tok, "none")
    chat = prompt_text(inst, tok, fmt, chat=True)
    assert chat.startswith("<|system|>\nBe brief.</s>\n<|user|>\n[Claim]: A man sleeps.")
    assert chat.endswith("<|assistant|>\n")
    plain = prompt_text(inst, tok, fmt, chat=False)
    assert plain.endswith("### Response:\n") and "<|user|>" not in plain
    # plain prompts get the tokenizer's BOS; a chat template without one (TinyLlama-Chat's) too
    assert prompt_ids(inst, tok, fmt, chat=False)[0] == tok.bos_token_id
    ids = prompt_ids(inst, tok, fmt, chat=True)
    assert ids[0] == tok.bos_token_id and ids.count(tok.bos_token_id) == 1
    assert ids[1:] == tok(chat, add_special_tokens=False)["input_ids"]


def test_truncation_cuts_target_and_drops_hopeless_prompts(tok):
    inst = tiny_instances(1)[0]
    fmt = FormatConfig()
    full = encode_example(inst, inst.explanations[0], tok, fmt, chat=True)
    limit = full.n_prompt + 10
    cut = encode_example(inst, inst.explanations[0], tok, fmt, chat=True, max_length=limit)
    assert cut.truncated and len(cut.input_ids) == limit
    assert cut.input_ids == full.input_ids[:limit]
    assert cut.labels[-1] != tok.eos_token_id
    assert (
        encode_example(
            inst, inst.explanations[0], tok, fmt, chat=True, max_length=full.n_prompt + 3
        )
        is None
    )


def test_collate_pads_right_and_ignores_padding(tok):
    insts = tiny_instances(3)
    exs = [encode_example(x, x.explanations[0], tok, FORMATS[0], chat=True) for x in insts]
    b = collate(exs, tok.pad_token_id)
    n = max(len(e.input_ids) for e in exs)
    assert b["input_ids"].shape == (3, n)
    for i, e in enumerate(exs):
        k = len(e.input_ids)
        assert b["attention_mask"][i].sum() == k
        assert (b["labels"][i, k:] == IGNORE_INDEX).all()
        assert (b["input_ids"][i, k:] == tok.pad_token_id).all()


def test_parse_output_inverts_each_order():
    af, rf, paper = FORMATS[2], FORMATS[1], FORMATS[0]
    assert parse_output("Answer: neutral\nExplanation: the book may not be a novel.", af) == (
        "neutral",
        "the book may not be a novel.",
    )
    assert parse_output("the book may not be a novel.\nAnswer: neutral", rf) == (
        "neutral",
        "the book may not be a novel.",
    )
    assert parse_output("  just text.  ", paper) == (None, "just text.")
    assert parse_output("no answer line here", af) == (None, "no answer line here")


def test_answer_complete_needs_a_whole_line():
    assert not answer_complete("Answer: neut")
    assert not answer_complete("Answer: ")
    assert answer_complete("Answer: neutral\n")
    assert answer_complete("Answer: neutral\nExplanation: x")


def test_answer_first_cannot_take_the_label_in_the_prompt():
    with pytest.raises(ConfigError, match="answer_first"):
        FormatConfig(order="answer_first", label_in_prompt=True)
    with pytest.raises(ConfigError, match="order"):
        FormatConfig(order="sideways")


def test_empty_target_is_an_error(tok):
    inst = tiny_instances(1)[0]
    with pytest.raises(ValueError, match="empty"):
        encode_example(inst, "  ", tok, FORMATS[0], chat=True)
