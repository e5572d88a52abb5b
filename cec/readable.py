"""Text the model cannot read: sentences of unknown tokens only, texts in another script.

Two checks the scorer runs on what it is about to encode (nothing here loads a model):

- :func:`unreadable`: a sentence in which the model knows no token (every token between the
  special ones is the tokenizer's unknown token, or there is none: emoji-only text is
  ``[CLS] [UNK] [SEP]`` to all-MiniLM-L6-v2) carries no evidence. Every such sentence has the
  same embedding, so without this check ``cec.score("🔥", "🥶")`` is exactly 1.0. The scorer
  leaves these sentences out, as if they were not there (a text left with none is an empty text,
  and the ``empty=`` policy decides). The test uses the encoder's own :meth:`tokenize` (the same
  token ids the model reads, on the torch and the fast path), and only for sentences in which no
  whitespace-separated word is printable ASCII (those always hold a known token), so English text
  costs one ``str.isascii`` per sentence.
- :func:`foreign_share`: the share of a text's letters that are not Latin script. For a model
  whose card says it is English (``language: en``, as the default's does), a text with more than
  :data:`FOREIGN_SHARE` of them is scored with a warning: unrelated Japanese, Arabic or Russian
  pairs score 0.5-0.6 with the default model, unrelated English ones about 0.05.

Examples:
    >>> foreign_share("Sea ice declines."), foreign_share("海氷が減る。"), foreign_share("🔥")
    (0.0, 1.0, 0.0)
"""

from __future__ import annotations

import functools
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "FOREIGN_SHARE",
    "ForeignScriptWarning",
    "UnreadableTextWarning",
    "drop_unreadable",
    "foreign_share",
    "items_with",
    "reads_latin_only",
    "unreadable",
    "unknown_token_id",
    "warn_foreign",
    "warn_unreadable",
]

FOREIGN_SHARE = 0.5
"""A text whose letters are more than this share non-Latin looks outside an English model."""


class UnreadableTextWarning(UserWarning):
    """Sentences with no token the model knows were left out (they carry no evidence)."""


class ForeignScriptWarning(UserWarning):
    """Texts are mostly in a script the model was not trained on; their scores mislead."""


# --------------------------------------------------------------------------------------------
# unknown tokens
# --------------------------------------------------------------------------------------------
def unknown_token_id(tokenizer: Any) -> int | None:
    """The id of ``tokenizer``'s unknown token (a transformers tokenizer or cec's fast one).

    ``None`` when it has none (byte-level tokenizers read every text).
    """
    unk = getattr(tokenizer, "unk_token_id", None)
    if unk is not None:
        return int(unk)
    backend = getattr(tokenizer, "backend_tokenizer", None)  # a `tokenizers.Tokenizer`
    if backend is None:
        return None
    model = backend.model
    token = getattr(model, "unk_token", None)
    if isinstance(token, str):
        return backend.token_to_id(token)
    unk_id = getattr(model, "unk_id", None)  # Unigram
    return int(unk_id) if isinstance(unk_id, int) else None


def _surely_readable(sentence: str) -> bool:
    """Some whitespace-separated word is printable ASCII: it tokenizes to known tokens."""
    if sentence.isascii():
        return any(word.isprintable() for word in sentence.split())
    return any(word.isascii() and word.isprintable() for word in sentence.split())


def unreadable(encoder: Any, sentences: Sequence[str]) -> np.ndarray:
    """Which sentences hold no token the model knows.

    A sentence is unreadable when every token the encoder feeds the model for it (after
    truncation to its window), apart from the special tokens its template adds, is the unknown
    token, or when there is no such token at all. Encoders without a tokenizer (any callable)
    read everything.

    Args:
        encoder: A :class:`~cec.encode.SentenceTransformerEncoder` (anything with
            ``tokenize`` and ``tokenizer``), or another encoder.
        sentences: Distinct sentences.

    Returns:
        A boolean array, one entry per sentence.
    """
    mask = np.zeros(len(sentences), dtype=bool)
    tokenize = getattr(encoder, "tokenize", None)
    if tokenize is None or not hasattr(type(encoder), "tokenizer"):  # a callable: no tokens
        return mask
    todo = [i for i, s in enumerate(sentences) if not _surely_readable(s)]
    if not todo:
        return mask
    ids, _ = tokenize([*(sentences[i] for i in todo), ""])
    specials = set(ids[-1])  # what the template adds to an empty text: [CLS] [SEP]
    unk = unknown_token_id(encoder.tokenizer)
    for i, seq in zip(todo, ids[:-1], strict=True):
        mask[i] = all(t == unk or t in specials for t in seq)
    return mask


def drop_unreadable(
    encoder: Any, sentences: list[str], text_sents: list[list[int]]
) -> tuple[list[str], list[list[int]], np.ndarray, int]:
    """Leave the unreadable sentences out of the texts that hold them (the scorer's step).

    Args:
        encoder: The scorer's encoder.
        sentences: Distinct sentences, numbered by position.
        text_sents: Per distinct text, the numbers of its sentences.

    Returns:
        The sentences kept, each text's sentences renumbered over them, per text whether it
        lost a sentence, and how many sentences were left out.
    """
    lost = np.zeros(len(text_sents), dtype=bool)
    unknown = unreadable(encoder, sentences) if sentences else np.zeros(0, dtype=bool)
    n_unknown = int(unknown.sum())
    if not n_unknown:
        return sentences, text_sents, lost, 0
    keep = ~unknown
    new_id = np.cumsum(keep) - 1
    kept = [s for s, u in zip(sentences, unknown.tolist(), strict=True) if not u]
    for k, ids in enumerate(text_sents):
        lost[k] = bool(unknown[ids].any())
    renumbered = [new_id[ids][keep[ids]].tolist() for ids in text_sents]
    return kept, renumbered, lost, n_unknown


def items_with(
    flags: np.ndarray, gen_text: np.ndarray, ref_text: np.ndarray, item_of_ref: np.ndarray
) -> np.ndarray:
    """Per item, whether its generated text or any of its references is flagged."""
    n_items = len(gen_text)
    in_refs = np.bincount(item_of_ref, weights=flags[ref_text], minlength=n_items) > 0
    return flags[gen_text] | in_refs[:n_items]


def warn_unreadable(n_sentences: int, n_pairs: int, n_items: int, empty: str) -> None:
    """The scorer's one :class:`UnreadableTextWarning` of a call."""
    warnings.warn(
        f"{n_sentences} sentence(s) in {n_pairs} of {n_items} pair(s) have no token the model "
        "knows (all unknown tokens, e.g. emoji only) and were left out as no evidence; a side "
        f"left with no sentences follows empty={empty!r}",
        UnreadableTextWarning,
        stacklevel=4,
    )


def warn_foreign(n_pairs: int, n_items: int, model: str) -> None:
    """The scorer's one :class:`ForeignScriptWarning` of a call."""
    warnings.warn(
        f"{n_pairs} of {n_items} pair(s) have a text mostly in a script other than Latin, but "
        f"{model} is an English model: such scores mislead (unrelated Japanese, Arabic or "
        "Russian pairs score about 0.5-0.6, unrelated English ones about 0.05); use a "
        "multilingual model (model=...)",
        ForeignScriptWarning,
        stacklevel=4,
    )


# --------------------------------------------------------------------------------------------
# another script
# --------------------------------------------------------------------------------------------
_LETTER = re.compile(r"[^\W\d_]")
# letters outside the Latin blocks (Basic Latin to Latin Extended-B, IPA, Latin Extended
# Additional, -C, -D, -E, fullwidth Latin)
_NON_LATIN = re.compile(
    r"[^\W\d_\u0000-\u02af\u1d00-\u1dbf\u1e00-\u1eff\u2c60-\u2c7f\ua720-\ua7ff"
    r"\uab30-\uab6f\uff21-\uff3a\uff41-\uff5a]"
)


def foreign_share(text: str) -> float:
    """Share of the letters of ``text`` that are not Latin script (0.0 without letters)."""
    if text.isascii():
        return 0.0
    letters = len(_LETTER.findall(text))
    return len(_NON_LATIN.findall(text)) / letters if letters else 0.0


@functools.lru_cache(maxsize=64)
def _card_languages(folder: str) -> tuple[str, ...]:
    """The ``language:`` entries of a model card's front matter (``README.md``)."""
    try:
        with open(Path(folder) / "README.md", encoding="utf-8") as fh:
            head = fh.read(8192)
    except (OSError, UnicodeDecodeError):
        return ()
    if not head.startswith("---"):
        return ()
    front = head[3:].split("\n---", 1)[0]
    langs: list[str] = []
    lines = front.splitlines()
    for k, line in enumerate(lines):
        if not line.startswith("language:"):
            continue
        value = line[len("language:") :].strip()
        if value:
            langs += [v.strip(" '\"") for v in value.strip("[]").split(",") if v.strip()]
        for item in lines[k + 1 :]:
            if not item.lstrip().startswith("- "):
                break
            langs.append(item.lstrip()[2:].strip(" '\""))
        break
    return tuple(lang.lower() for lang in langs if lang)


def reads_latin_only(encoder: Any) -> bool:
    """Whether ``encoder``'s model card says the model is English only (``language: en``).

    Unknown (no model folder, no card, no language, several languages, a callable): ``False``,
    and no text is flagged.
    """
    local_dir = getattr(encoder, "local_dir", None)
    if local_dir is None:
        return False
    try:
        folder = local_dir()
    except Exception:  # noqa: BLE001 - an optional check: no folder, no check
        return False
    return folder is not None and _card_languages(str(folder)) == ("en",)
