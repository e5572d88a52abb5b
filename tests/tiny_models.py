"""Tiny random students (Llama, Phi, Gemma, Gemma 2) and locally trained byte-level BPE tokenizers.

Nothing is downloaded: a tokenizer is trained in memory on a few sentences (byte-level, so any
text encodes) and a model is built from a config with seeded random weights. Both are saved to
a directory that ``from_pretrained`` loads like any checkpoint.

Each tokenizer follows the special-token layout of the checkpoint it stands in for (see
:data:`LAYOUTS`): ``llama`` (TinyLlama-Chat: ``<s>`` prepended, ``</s>``, a Zephyr-style chat
template), ``phi`` (Phi-2's CodeGen tokenizer: ``<|endoftext|>`` as BOS, EOS and UNK, no BOS
prepended, no pad token, no chat template) and ``gemma`` (Gemma and Gemma 2: ``<pad>`` 0,
``<eos>`` 1, ``<bos>`` 2 prepended, ``<unk>`` 3, the ``<start_of_turn>``/``<end_of_turn>`` chat
template, which begins with the BOS itself).
"""

from __future__ import annotations

from pathlib import Path

from cec_distill.data import Evidence, Instance

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
SPECIAL = ["<s>", "</s>", "<pad>", "<unk>", "<|system|>", "<|user|>", "<|assistant|>"]

CORPUS = [
    "[Claim]: A man sleeps. [Evidence]: - A man runs in the park. [Label]: contradiction",
    "Explain how the evidence supports or contradicts the claim, describing the cause-and-effect "
    "relationships that link them. Start with 'Answer: <label>' on its own line.",
    "Answer: entailment Explanation: a dog playing outside is a dog outside.",
    "A person cannot sleep and run at the same time, so the premise contradicts the hypothesis.",
    "Rising greenhouse gas emissions trap heat, which warms the oceans and melts the ice.",
    "neutral entailment contradiction premise hypothesis because therefore causes leads to",
    "### Response: the evidence shows that the claim is supported by the data.",
]


#: Gemma's chat template (as in ``google/gemma-2b-it`` and ``google/gemma-2-2b-it``): no system
#: role, ``assistant`` spoken as ``model``, the BOS written by the template itself.
GEMMA_CHAT_TEMPLATE = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}{% endif %}"
    "{% for message in messages %}"
    "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}"
    "{% else %}{% set role = message['role'] %}{% endif %}"
    "{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}"
)

#: Special tokens per tokenizer layout: ``(special tokens in id order, bos, eos, pad, unk,
#: BOS prepended by the tokenizer, chat template)``.
LAYOUTS: dict[str, tuple[list[str], str | None, str, str | None, str, bool, str | None]] = {
    "llama": (SPECIAL, "<s>", "</s>", "<pad>", "<unk>", True, CHAT_TEMPLATE),
    "phi": (["<|endoftext|>"], "<|endoftext|>", "<|endoftext|>", None, "<|endoftext|>", False, None),
    "gemma": (
        ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"],
        "<bos>", "<eos>", "<pad>", "<unk>", True, GEMMA_CHAT_TEMPLATE,
    ),
}  # fmt: skip


def build_tokenizer(
    path: str | Path, vocab_size: int = 320, layout: str = "llama", chat: bool | None = None
):
    """Train a byte-level BPE tokenizer on :data:`CORPUS`, save it to ``path``, return it.

    Args:
        layout: The special-token layout (:data:`LAYOUTS`): ``llama``, ``phi`` or ``gemma``.
        chat: Keep the layout's chat template (``None``: whenever the layout has one).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    special, bos, eos, pad, unk, add_bos, template = LAYOUTS[layout]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS * 4, trainer)
    if add_bos:  # BOS first, as Llama and Gemma tokenizers do
        bos_id = tok.token_to_id(bos)
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, bos_id)]
        )
    named = {bos, eos, pad, unk}
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=bos,
        eos_token=eos,
        pad_token=pad,
        unk_token=unk,
        additional_special_tokens=[t for t in special if t not in named],
    )
    fast.chat_template = template if chat is None or chat else None
    fast.model_max_length = 256
    fast.save_pretrained(str(path))
    return fast


def build_tiny_llama(
    path: str | Path, seed: int = 0, chat: bool = True, max_positions: int = 256
) -> Path:
    """Save a tiny random ``LlamaForCausalLM`` and its tokenizer to ``path``; return the path.

    ``max_positions`` is the model's window (``max_position_embeddings``), which a server such as
    ``transformers serve`` enforces on prompt plus answer.
    """
    return build_tiny_student(path, "llama", seed=seed, chat=chat, max_positions=max_positions)


def build_tiny_phi(path: str | Path, seed: int = 0) -> Path:
    """A tiny random ``PhiForCausalLM`` shaped like Phi-2 (partial rotary, dense/fc1/fc2, biases,
    residual dropout 0.1, untied head), with Phi-2's tokenizer layout (plain, no pad token)."""
    return build_tiny_student(path, "phi", seed=seed)


def build_tiny_gemma(path: str | Path, seed: int = 0, chat: bool = True) -> Path:
    """A tiny random ``GemmaForCausalLM`` shaped like Gemma-2B (multi-query attention, head_dim
    set apart from hidden/heads, tanh-GELU, tied embeddings), with Gemma's tokenizer layout."""
    return build_tiny_student(path, "gemma", seed=seed, chat=chat)


def build_tiny_gemma2(path: str | Path, seed: int = 0, chat: bool = True) -> Path:
    """A tiny random ``Gemma2ForCausalLM`` shaped like Gemma-2-2B (grouped-query attention,
    alternating sliding-window and global layers with a window shorter than the prompts,
    attention and final logit soft-capping, tied embeddings), with Gemma's tokenizer layout."""
    return build_tiny_student(path, "gemma2", seed=seed, chat=chat)


#: Architecture -> (tokenizer layout, transformers classes as ``(config, model)`` names).
ARCHITECTURES = {
    "llama": ("llama", "LlamaConfig", "LlamaForCausalLM"),
    "phi": ("phi", "PhiConfig", "PhiForCausalLM"),
    "gemma": ("gemma", "GemmaConfig", "GemmaForCausalLM"),
    "gemma2": ("gemma", "Gemma2Config", "Gemma2ForCausalLM"),
}


def tiny_config(arch: str, tok, max_positions: int = 256):
    """The tiny config of ``arch`` (hidden 64, 2 layers) for the vocabulary of ``tok``."""
    import transformers

    _, config_cls, _ = ARCHITECTURES[arch]
    common = {
        "vocab_size": len(tok),
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "max_position_embeddings": max_positions,
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.eos_token_id,
        "pad_token_id": tok.pad_token_id,
    }
    extra: dict = {
        "llama": {"num_key_value_heads": 2, "tie_word_embeddings": False},
        # Phi-2: 32 heads of 80 with 40 % of each rotated, resid_pdrop 0.1, no pad token
        "phi": {
            "num_key_value_heads": 4,
            "partial_rotary_factor": 0.4,
            "resid_pdrop": 0.1,
            "hidden_act": "gelu_new",
            "tie_word_embeddings": False,
        },
        # Gemma-2B: 8 heads of 256 over hidden 2048, one key/value head
        "gemma": {
            "num_key_value_heads": 1,
            "head_dim": 32,
            "hidden_activation": "gelu_pytorch_tanh",
        },
        # Gemma-2-2B: 8 heads of 256 over hidden 2304, 4 key/value heads, window 4096 of 8192
        "gemma2": {
            "num_key_value_heads": 2,
            "head_dim": 32,
            "query_pre_attn_scalar": 32,
            "sliding_window": 32,
            "attn_logit_softcapping": 50.0,
            "final_logit_softcapping": 30.0,
            "hidden_activation": "gelu_pytorch_tanh",
        },
    }[arch]
    return getattr(transformers, config_cls)(**common, **extra)


def build_tiny_student(
    path: str | Path,
    arch: str = "llama",
    seed: int = 0,
    chat: bool | None = None,
    max_positions: int = 256,
) -> Path:
    """Save a tiny random model of ``arch`` (:data:`ARCHITECTURES`) and its tokenizer to ``path``.

    Args:
        chat: Give the tokenizer its layout's chat template (``None``: where the layout has one).

    Returns:
        ``path``.
    """
    import torch
    import transformers

    layout, _, model_cls = ARCHITECTURES[arch]
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer(path, layout=layout, chat=chat)
    cfg = tiny_config(arch, tok, max_positions)
    torch.manual_seed(seed)
    model = getattr(transformers, model_cls)(cfg)
    model.save_pretrained(str(path))
    return path


def tiny_instances(n: int = 12) -> list[Instance]:
    """``n`` small e-SNLI-like instances with one human explanation each."""
    premises = [
        "A man runs in the park.",
        "Two dogs play in the snow.",
        "A woman reads a book on a bench.",
        "Children swim in a lake.",
    ]
    hyps = [
        ("A man sleeps.", "contradiction", "a man cannot run and sleep at the same time."),
        ("Animals are outside.", "entailment", "dogs are animals and snow is outside."),
        ("A woman is reading a novel.", "neutral", "the book may not be a novel."),
    ]
    out = []
    for i in range(n):
        p = premises[i % len(premises)]
        h, lab, expl = hyps[i % len(hyps)]
        out.append(
            Instance(
                id=f"tiny:{i}",
                dataset="esnli",
                claim=h,
                evidence=(Evidence(p, "premise"),),
                label=lab,
                explanations=(expl,),
            )
        )
    return out
