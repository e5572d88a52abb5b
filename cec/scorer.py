"""The scorer: validate -> segment -> dedupe -> encode -> pack -> kernel -> aggregate.

:class:`CEC` holds the options and the (lazily loaded) encoder, so a harness that scores many
batches loads the model once. :func:`score` is the functional entry point; it reuses one cached
scorer per distinct set of options.
"""

from __future__ import annotations

import itertools
import math
import os
import sys
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, overload

import numpy as np

from cec._checks import check_positive_int
from cec._version import __version__
from cec.align import align
from cec.cache import EmbeddingCache, MemoryCache, encode_cached, resolve_cache
from cec.directional import apply_directional
from cec.encode import Encoder, resolve_encoder
from cec.inputs import (
    EMPTY_POLICIES,
    EmptyPolicy,
    EmptyTextWarning,
    References,
    Text,
    _check_text,
    validate_pairs,
    validate_segmented,
)
from cec.readable import (
    FOREIGN_SHARE,
    ForeignScriptWarning,
    UnreadableTextWarning,
    drop_unreadable,
    foreign_share,
    items_with,
    reads_latin_only,
    warn_foreign,
    warn_unreadable,
)
from cec.rescale import check_baseline, resolve_baseline
from cec.result import CECResult, PairScore
from cec.segment import Segmented, Splitter, get_splitter
from cec.signature import Signature, nrefs_label
from cec.similarity import DEFAULT_MAX_BYTES, pair_scores

if TYPE_CHECKING:  # torch is imported where a torch tensor is really needed, not here
    import torch

__all__ = [
    "CEC",
    "score",
    "score_segmented",
    "EmptyTextWarning",
    "EMPTY_POLICIES",
    "UNREADABLE_POLICIES",
    "UnreadableTextWarning",
    "ForeignScriptWarning",
]

UNREADABLE_POLICIES = ("skip", "keep")

# input checks live in cec.inputs (a leaf); the names stay importable from here

# --------------------------------------------------------------------------------------------
# the scorer
# --------------------------------------------------------------------------------------------
class CEC:
    """A reusable CEC scorer: options fixed once, model loaded once on first use.

    Args:
        model: ``None`` for the embedded all-MiniLM-L6-v2; a sentence-transformers directory or
            cached model name; an :class:`~cec.encode.Encoder`; or a callable
            ``list[str] -> array [n, d]``.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; ``None`` picks CUDA when present.
        batch_size: Most sentences per encoder forward pass.
        splitter: Sentence splitter name (see :func:`cec.segment.available_splitters`) or a
            callable ``str -> list[str]``.
        empty: What a pair with no sentences on a side scores: ``"zero"`` (default, with a
            warning), ``"nan"`` (left out of the corpus mean), or ``"error"`` (ValueError).
        max_memory: Byte budget for one chunk of the similarity kernel.
        allow_download: Allow a hub model name that is not cached locally to be downloaded.
        directional: Direction-aware CEC (see :mod:`cec.directional`): a cause -> effect link
            stated the other way round in the other explanation lowers the score, and
            ``result.details`` holds each pair's links. ``False`` (default) is exactly Eq. 2.
        precision: Encoder numeric path: ``"fp32"`` (default), ``"bf16"``, ``"fp16"`` (CUDA),
            ``"int8"``, ``"onnx"`` or ``"onnx-int8"`` (see :mod:`cec.encode` and
            docs/performance.md); recorded in the signature as ``prec:``.
        cache: Keep sentence embeddings across calls: ``"memory"``, a file path (an SQLite
            cache safe to share between runs and processes), or a
            :class:`~cec.cache.EmbeddingCache`. Scores are unchanged: the cache returns the
            exact vectors the encoder produced.
        rescale: Baseline rescaling, off by default (Eq. 2): ``True`` maps scores through the
            baseline shipped for the default model, a path through a baseline file made by
            ``cec baseline``; see :mod:`cec.rescale`. Recorded in the signature as ``rescale:``.
        unreadable: A sentence in which the model knows no token (all ``[UNK]``, e.g. emoji
            only; see :mod:`cec.readable`): ``"skip"`` (default) leaves it out as no evidence,
            with an :class:`UnreadableTextWarning` (a text left with no sentences is empty, and
            ``empty`` decides); ``"keep"`` scores it like any other (the unknown token's
            embedding, so any two such texts score 1.0), shown in the signature as ``unk:keep``.

    Examples:
        >>> scorer = CEC()
        >>> round(scorer.score("CO2 traps heat. The planet warms.",
        ...                    "The planet warms. CO2 traps heat."), 4)
        1.0
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | Encoder | Callable[[list[str]], Any] | None = None,
        *,
        device: str | torch.device | None = None,
        batch_size: int = 64,
        splitter: str | Callable[[str], list[str]] | Splitter | None = None,
        empty: EmptyPolicy = "zero",
        max_memory: int = DEFAULT_MAX_BYTES,
        allow_download: bool = False,
        directional: bool = False,
        precision: str = "fp32",
        cache: str | os.PathLike[str] | EmbeddingCache | None = None,
        rescale: bool | str | os.PathLike[str] | Any = False,
        unreadable: str = "skip",
    ):
        if not isinstance(directional, bool):
            raise TypeError(f"directional must be True or False, got {directional!r}")
        if empty not in EMPTY_POLICIES:
            raise ValueError(f"empty must be one of {EMPTY_POLICIES}, got {empty!r}")
        if unreadable not in UNREADABLE_POLICIES:
            raise ValueError(f"unreadable must be one of {UNREADABLE_POLICIES}, got {unreadable!r}")
        check_positive_int(
            max_memory, "max_memory", minimum=1024, what="an integer number of bytes >= 1024"
        )
        self.splitter = get_splitter(splitter)
        self.encoder = resolve_encoder(
            model, device, batch_size=batch_size, allow_download=allow_download,
            precision=precision,
        )
        persistent = isinstance(cache, (str, os.PathLike)) and cache != "memory" or (
            isinstance(cache, EmbeddingCache) and cache.persistent
        )
        if persistent and self.encoder.anonymous:  # before the cache file is created
            raise ValueError(
                f"cache: a persistent cache needs an encoder that says what it computes, but "
                f"{self.encoder.name!r} is an anonymous callable (two different functions would "
                "share vectors); wrap it as cec.CallableEncoder(fn, name=..., version=...) or use "
                "cache='memory'"
            )
        self.cache = resolve_cache(cache)
        self.baseline = resolve_baseline(rescale, self.encoder)
        if self.baseline is not None:
            check_baseline(self.baseline, self.encoder, self.splitter.label)
        self.empty = empty
        self.unreadable = unreadable
        self.max_memory = max_memory
        self.directional = directional
        self._latin_only: bool | None = None  # the model card says English (cec.readable)

    # -- pieces --------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.encoder.device

    def segment(self, text: Text) -> list[str]:
        """Sentences of one text, as this scorer splits them (a ``Segmented``'s own sentences)."""
        text = _check_text(text, "text")
        return list(text.sentences) if isinstance(text, Segmented) else self.splitter(text)

    def encode(self, sentences: Sequence[str]) -> torch.Tensor:
        """Unit-norm embeddings ``[n, d]`` of sentences, a tensor on the scorer's device."""
        import torch

        emb = encode_cached(self.encoder, list(sentences), self.cache)
        return torch.from_numpy(emb) if isinstance(emb, np.ndarray) else emb

    @property
    def signature(self) -> Signature:
        """The signature of this scorer's options (``nrefs`` is set per result)."""
        sig = Signature(
            version=__version__,
            model=self.encoder.name,
            weights=self.encoder.identity,
            splitter=self.splitter.label,
            empty=self.empty,
            precision=self.encoder.precision,
            truncation=str(self.encoder.truncation or ""),
        )
        if self.unreadable != "skip":  # the default rule is not shown (see docs/metric-card.md)
            sig = sig.with_extra("unk", self.unreadable)
        if self.directional:
            sig = sig.with_extra("dir", "yes")
        return sig.with_extra("rescale", self.baseline.hash) if self.baseline else sig

    def signature_for(self, gens: Sequence[Text], refs: Sequence[Sequence[Text]]) -> Signature:
        """:attr:`signature` for these texts: ``seg:presplit`` when every text came as a
        :class:`~cec.segment.Segmented` (no splitter ran), ``presplit+<splitter>`` when some
        did."""
        texts = itertools.chain(gens, itertools.chain.from_iterable(refs))
        kinds = {isinstance(t, Segmented) for t in texts}
        if True not in kinds:
            return self.signature
        label = "presplit" if kinds == {True} else f"presplit+{self.splitter.label}"
        return self.signature.with_(splitter=label)

    # -- scoring -------------------------------------------------------------------------------
    @overload
    def score(self, generated: str, reference: References) -> float: ...
    @overload
    def score(self, generated: Iterable[str], reference: Iterable[References]) -> CECResult: ...

    def score(self, generated: Any, reference: Any) -> float | CECResult:
        """Score one pair (returns a float) or a corpus of pairs (returns a :class:`CECResult`).

        With several references for an item, the item is scored against each and the best
        ``sym`` is kept (its ``forward``/``backward`` come from that same reference).
        ``score("pred", ["a", "b"])`` is therefore one item with two references (a float),
        not two items; ``score(["pred"], [["a", "b"]]).best_ref`` says which reference won.

        Args:
            generated: A text, or a sequence of texts.
            reference: A text or list of texts (one item's references), or a sequence with one
                such entry per generated text.

        Raises:
            TypeError: Bad input types (see :func:`validate_pairs`).
            ValueError: Mismatched lengths; an empty pair under ``empty="error"``.
        """
        gens, refs, single = validate_pairs(generated, reference)
        result = self._score_lists(gens, refs)
        return float(result.sym[0]) if single else result

    __call__ = score

    def score_segmented(self, generated: Any, reference: Any) -> CECResult:
        """Score texts that are already split into sentences; no splitter runs.

        The same as :meth:`score` with every text wrapped in :class:`~cec.segment.Segmented`
        (see :func:`score_segmented` for the input shapes).
        """
        gens, refs = validate_segmented(generated, reference)
        return self._score_lists(gens, refs)

    def align(self, generated: Any, reference: Any, *, threshold: float = 0.5) -> Any:
        """Sentence-level detail of the score: see :func:`cec.align.align`.

        Returns one :class:`~cec.align.Alignment` for a single pair (a list for sequences): the
        sentences on both sides, their similarity matrix, each sentence's best match, and the
        reference sentences left uncovered / generated sentences left unsupported under
        ``threshold``. Its ``forward``/``backward``/``sym`` equal :meth:`score` on the pair.
        """
        return align(self, generated, reference, threshold=threshold)

    def score_iter(
        self,
        pairs: Iterable[tuple[str, References]],
        *,
        chunk_size: int = 1024,
        reuse: int = 32768,
    ) -> Iterator[PairScore]:
        """Score a stream of ``(generated, reference)`` pairs in bounded memory.

        Pairs are read and scored ``chunk_size`` at a time; scores equal :meth:`score` on the
        whole input. Memory stays bounded by the chunk, the kernel budget and the reuse buffer,
        whatever the length of the stream.

        Args:
            pairs: Iterable of ``(generated, reference)``; a reference may be a list of texts.
            chunk_size: Pairs scored together.
            reuse: When the scorer has no :attr:`cache`, keep up to this many sentence
                embeddings between chunks (least recently used go first), so sentences that
                recur across chunks are encoded once; 0 keeps none. With a cache, the cache is
                used instead.

        Yields:
            One :class:`~cec.result.PairScore` per input pair, in input order.
        """
        check_positive_int(chunk_size, "chunk_size")
        check_positive_int(reuse, "reuse", minimum=0)
        cache = self.cache
        if cache is None and reuse:
            cache = MemoryCache(max_items=reuse)
        iterator = iter(pairs)
        offset = 0
        while True:
            chunk = list(itertools.islice(iterator, chunk_size))
            if not chunk:
                return
            for k, pair in enumerate(chunk, start=offset):
                if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                    raise TypeError(f"pairs: item {k} is not a (generated, reference) pair")
            offset += len(chunk)
            gens, refs, _ = validate_pairs([g for g, _ in chunk], [r for _, r in chunk])
            yield from self._score_lists(gens, refs, cache=cache)

    def _score_lists(
        self, gens: list[Text], refs: list[list[Text]], *, cache: EmbeddingCache | None = None
    ) -> CECResult:
        n_items = len(gens)
        if n_items == 0:
            warnings.warn(
                "no pairs to score (empty input): the corpus mean is NaN (n=0)",
                EmptyTextWarning,
                stacklevel=3,
            )
        # 1. segment every distinct text once; 2. number every distinct sentence once
        sentence_id: dict[str, int] = {}
        text_index: dict[Text, int] = {}
        text_sents: list[list[int]] = []
        foreign: list[bool] = []
        if self._latin_only is None:
            self._latin_only = reads_latin_only(self.encoder)
        check_script = self._latin_only

        def set_of(text: Text) -> int:
            k = text_index.get(text)
            if k is None:
                sents = self.segment(text)
                text_sents.append([sentence_id.setdefault(s, len(sentence_id)) for s in sents])
                if check_script:
                    foreign.append(foreign_share(" ".join(sents)) > FOREIGN_SHARE)
                k = text_index[text] = len(text_sents) - 1
            return k

        n_refs = np.fromiter((len(r) for r in refs), dtype=np.int64, count=n_items)
        item_of_pair = np.repeat(np.arange(n_items), n_refs)
        gen_set_item = np.fromiter((set_of(g) for g in gens), dtype=np.int64, count=n_items)
        ref_set = np.fromiter((set_of(r) for rs in refs for r in rs), dtype=np.int64,
                              count=int(n_refs.sum()))
        # 2b. sentences with no token the model knows are no evidence: left out (cec.readable)
        sentences = list(sentence_id)
        lost = np.zeros(len(text_sents), dtype=bool)  # per text: a sentence was left out
        n_unknown = 0
        if self.unreadable == "skip":
            sentences, text_sents, lost, n_unknown = drop_unreadable(
                self.encoder, sentences, text_sents
            )
        sets_flat = np.fromiter(itertools.chain.from_iterable(text_sents), dtype=np.int64)
        sets_len = np.fromiter((len(t) for t in text_sents), dtype=np.int64, count=len(text_sents))
        gen_set = gen_set_item[item_of_pair]
        unread_items = items_with(lost, gen_set_item, ref_set, item_of_pair)
        if unread_items.any():
            warn_unreadable(n_unknown, int(unread_items.sum()), n_items, self.empty)
        if foreign:  # texts mostly in another script than the model's (cec.readable)
            flagged = items_with(np.asarray(foreign), gen_set_item, ref_set, item_of_pair)
            if flagged.any():
                n_foreign = int(flagged.sum())
                warn_foreign(n_foreign, n_items, self.encoder.name)
        pair_ok = (sets_len[gen_set] > 0) & (sets_len[ref_set] > 0)

        # an item is empty when none of its pairs has sentences on both sides
        ok_per_item = np.bincount(item_of_pair[pair_ok], minlength=n_items)
        empty_items = ok_per_item == 0
        n_empty = int(empty_items.sum())
        if n_empty and self.empty == "error":
            first = int(np.flatnonzero(empty_items)[0])
            gen_empty = sets_len[gen_set_item[first]] == 0
            side = "generated" if gen_empty else "reference"
            unread = lost[gen_set_item[first]] if gen_empty else unread_items[first]
            what = "no sentence the model can read" if unread else "no sentences"
            raise ValueError(
                f"{side}[{first}] has {what} after segmentation ({n_empty} empty "
                f"pair(s) in all) and empty='error'"
            )

        # 3. encode each distinct sentence once; 4. the kernel over pairs with both sides
        fwd = np.full(len(ref_set), -np.inf)
        bwd = np.full(len(ref_set), -np.inf)
        ok = np.flatnonzero(pair_ok)
        if len(ok):
            emb = encode_cached(self.encoder, sentences, cache if cache is not None else self.cache)
            fwd[ok], bwd[ok] = pair_scores(
                emb, sets_flat, sets_len, gen_set[ok], ref_set[ok], max_bytes=self.max_memory
            )
        pair_links: list[Any] = [None] * len(ref_set)
        if self.directional and len(ok):  # direction-aware adjustment (cec.directional)
            fwd[ok], bwd[ok], reports = apply_directional(
                self.encode, emb, sentences, sets_flat, sets_len,
                gen_set[ok], ref_set[ok], fwd[ok], bwd[ok],
            )
            for p, report in zip(ok.tolist(), reports, strict=True):
                pair_links[p] = report
        sym_pairs = (fwd + bwd) / 2

        # 5. best reference per item (the first wins ties), then the empty policy
        first_pair = np.cumsum(n_refs) - n_refs
        table = np.full((n_items, max(int(n_refs.max(initial=1)), 1)), -np.inf)
        table[item_of_pair, np.arange(len(ref_set)) - first_pair[item_of_pair]] = sym_pairs
        best_ref = table.argmax(axis=1).astype(np.int64)
        chosen = first_pair + best_ref
        forward, backward, sym = fwd[chosen], bwd[chosen], sym_pairs[chosen]
        if self.baseline is not None:  # opt-in (x - b) / (1 - b), cec.rescale
            forward, backward, sym = (self.baseline.apply(v) for v in (forward, backward, sym))
        if n_empty:
            fill = 0.0 if self.empty == "zero" else math.nan
            forward[empty_items] = backward[empty_items] = sym[empty_items] = fill
            if self.empty == "zero":
                warnings.warn(
                    f"{n_empty} of {n_items} pair(s) have no sentences on a side and score 0 "
                    "(empty='zero'); use empty='nan' to leave them out of the mean",
                    EmptyTextWarning,
                    stacklevel=3,
                )
        nrefs = nrefs_label(n_refs.tolist())
        return CECResult(
            forward=forward, backward=backward, sym=sym, empty=empty_items,
            best_ref=best_ref, signature=self.signature_for(gens, refs).with_(nrefs=nrefs),
            details=[pair_links[c] for c in chosen.tolist()] if self.directional else None,
            unreadable=unread_items,
        )

    def __repr__(self) -> str:
        return (
            f"CEC(model={self.encoder.name!r}, device='{self.device}', "
            f"splitter={self.splitter.label!r}, empty={self.empty!r})"
        )


# --------------------------------------------------------------------------------------------
# functional entry point with a cached scorer per option set
# --------------------------------------------------------------------------------------------
_MAX_SCORERS = 8  # a handful of models at most, least recently used out
_SCORERS: OrderedDict[tuple[Any, ...], CEC] = OrderedDict()
_LOCK = threading.Lock()


class _Same:
    """Key part for an object compared by identity (a callable, an encoder, a cache).

    It holds the object, so the object cannot be freed and its ``id()`` reused by another one
    while the cached scorer lives (an ``id()`` alone could hand a new function the scorer, and
    the vectors, of an old one).
    """

    __slots__ = ("obj",)

    def __init__(self, obj: Any):
        self.obj = obj

    def __hash__(self) -> int:
        return id(self.obj)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Same) and other.obj is self.obj


def _option_key(options: dict[str, Any]) -> tuple[Any, ...]:
    def freeze(v: Any) -> Any:
        if isinstance(v, (str, int, float, bool, type(None))):
            return (type(v).__name__, v)  # True and 1 are different options
        torch = sys.modules.get("torch")  # a torch.device can only come from a loaded torch
        if isinstance(v, os.PathLike) or torch is not None and isinstance(v, torch.device):
            return ("str", str(v))
        return _Same(v)  # callables, encoders, caches: by identity, held alive

    return tuple(sorted(((k, freeze(v)) for k, v in options.items()), key=lambda kv: kv[0]))


def get_scorer(**options: Any) -> CEC:
    """The cached :class:`CEC` for these options (built on first request; at most 8 kept)."""
    key = _option_key(options)
    with _LOCK:
        scorer = _SCORERS.get(key)
        if scorer is not None:
            _SCORERS.move_to_end(key)
            return scorer
        scorer = CEC(**options)
        _SCORERS[key] = scorer
        while len(_SCORERS) > _MAX_SCORERS:
            _SCORERS.popitem(last=False)
        return scorer


@overload
def score(generated: str, reference: References, **options: Any) -> float: ...
@overload
def score(generated: Iterable[str], reference: Iterable[References], **options: Any) -> CECResult: ...


def score(generated: Any, reference: Any, **options: Any) -> float | CECResult:
    """Causal Explanation Coherence (Eq. 2) of generated explanations against references.

    One pair gives a float; sequences give a :class:`~cec.result.CECResult` with per-pair
    ``forward``, ``backward`` and ``sym``, the corpus ``mean``, ``n_empty`` and the
    ``signature``. Options are those of :class:`CEC`; the scorer for a given set of options is
    built once per process and reused.

    Warning:
        A string with a list, ``cec.score("pred", ["a", "b"])``, is **one item with two
        references** (the best of the two is kept), not two items. To score several items,
        pass a list on both sides: ``cec.score(["p1", "p2"], ["a", "b"])``. The float form
        does not say which reference won; ask with lists to get ``result.best_ref``:
        ``cec.score(["pred"], [["a", "b"]]).best_ref[0]``.

    Empty input (``cec.score([], [])``) returns a result with ``n=0`` and a NaN mean, with an
    :class:`EmptyTextWarning`.

    Args:
        generated: A text or a sequence of texts.
        reference: A text, a list of references for one text, or one entry per generated text.
        **options: ``model``, ``device``, ``batch_size``, ``splitter``, ``empty``,
            ``max_memory``, ``allow_download``, ``directional`` (direction-aware CEC, see
            :mod:`cec.directional`; default ``False``, Eq. 2), ``precision``, ``cache``,
            ``rescale`` (opt-in baseline rescaling, see :mod:`cec.rescale`; default ``False``),
            ``unreadable`` (``"skip"``: sentences of unknown tokens only are left out).

    Examples:
        >>> import cec
        >>> round(cec.score("Greenhouse gases trap heat.", "Greenhouse gases trap heat."), 4)
        1.0
        >>> res = cec.score(["CO2 traps heat. Ice melts.", "Oceans warm."],
        ...                 ["Ice melts. CO2 traps heat.", "Oceans warm."])
        >>> res.sym.round(4).tolist(), round(res.mean, 4)
        ([1.0, 1.0], 1.0)
        >>> one_item = cec.score(["Ice melts."], [["Seas rise.", "Ice melts."]])
        >>> one_item.best_ref.tolist()
        [1]
    """
    gens, refs, single = validate_pairs(generated, reference)  # before anything loads
    result = get_scorer(**options)._score_lists(gens, refs)
    return float(result.sym[0]) if single else result


def score_segmented(generated: Any, reference: Any, **options: Any) -> CECResult:
    """CEC (Eq. 2) of texts that are already split into sentences: no splitter runs.

    For reasoning chains and explanations that arrive one step per item: the steps are the
    sentences, used as given (empty and whitespace-only ones dropped, nothing else changed).
    Scores equal :func:`score` with every text wrapped in :class:`~cec.segment.Segmented`; the
    signature says ``seg:presplit``.

    Args:
        generated: One list of sentences per generated text.
        reference: One entry per generated text: a list of sentences (one reference), or a list
            of lists of sentences (several references; the best is kept, as in :func:`score`).
            An empty list is one reference with no sentences (the ``empty=`` policy applies).
        **options: As :func:`score` (``splitter`` has no effect here).

    Returns:
        A :class:`~cec.result.CECResult`, one entry per item.

    Raises:
        TypeError: A string where a list of sentences belongs, a non-string sentence, None.
        ValueError: Different lengths; an empty pair under ``empty="error"``.

    Examples:
        >>> import cec
        >>> res = cec.score_segmented([["Ana has 4 red marbles", "so she has 8 blue ones"]],
        ...                           [["so she has 8 blue ones", "Ana has 4 red marbles"]])
        >>> round(res.mean, 4), str(res.signature).split("|")[2]
        (1.0, 'seg:presplit')
    """
    gens, refs = validate_segmented(generated, reference)  # before anything loads
    return get_scorer(**options)._score_lists(gens, refs)
