"""A tiny random Llama and a locally trained byte-level BPE tokenizer with a chat template.

Nothing is downloaded: the tokenizer is trained in memory on a few sentences (byte-level, so any
text encodes) and the model is built from a config with seeded random weights. Both are saved to
a directory that ``from_pretrained`` loads like any checkpoint.
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


def build_tokenizer(path: str | Path, vocab_size: int = 320):
    """Train a byte-level BPE tokenizer on :data:`CORPUS`, save it to ``path``, return it."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS * 4, trainer)
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(  # BOS first, as Llama tokenizers do
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        additional_special_tokens=SPECIAL[4:],
    )
    fast.chat_template = CHAT_TEMPLATE
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
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer(path)
    if not chat:
        tok.chat_template = None
        tok.save_pretrained(str(path))
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=max_positions,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg)
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
