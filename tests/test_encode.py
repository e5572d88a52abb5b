"""The encoder's fast path: one tokenisation, token-budget batches, direct forward, threads."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
import torch

from cec.encode import (
    DEFAULT_MODEL,
    PRECISIONS,
    SentenceTransformerEncoder,
    TruncationWarning,
    cpu_features,
    default_model_dir,
    resolve_encoder,
)

SENTENCES = [
    "CO2 traps heat.",
    "Rising temperatures push bees to their physiological limits.",
    "Sea level rose by about 20 cm in the twentieth century, and the rate is increasing.",
    "Ice melts.",
    "The Arctic is warming about twice as fast as the global average, a pattern called "
    "Arctic amplification, driven partly by the loss of reflective sea ice.",
    "Oceans absorb most of the extra heat.",
    "Dr. Smith measured 1.5°C of warming.",
]


def test_direct_path_equals_sentence_transformers_encode(scorer, st_model):
    """cec's loader and pre-tokenised sorted batches give what sentence-transformers gives."""
    encoder = scorer.encoder
    ours = encoder.encode(SENTENCES)
    theirs = st_model.encode(
        SENTENCES, batch_size=2, convert_to_tensor=True, normalize_embeddings=True
    )
    assert ours.dtype == torch.float32 and ours.shape == theirs.shape
    assert torch.allclose(ours, theirs.to(ours), atol=1e-5)
    norms = ours.norm(dim=1)
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-5)


def shared_encoder(scorer, **options) -> SentenceTransformerEncoder:
    """A fresh CPU encoder of the default model with ``options``, sharing the loaded weights."""
    encoder = SentenceTransformerEncoder(
        str(default_model_dir()), torch.device("cpu"), name=DEFAULT_MODEL, **options
    )
    encoder._model = scorer.encoder.model
    return encoder


def test_batches_cover_every_sentence_once_within_budget(scorer):
    encoder = shared_encoder(scorer, batch_size=5, token_budget=60)
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 40, size=57)
    batches = encoder._batches(lengths)
    seen = np.concatenate(batches)
    assert sorted(seen.tolist()) == list(range(len(lengths)))
    for idx in batches:
        assert 1 <= len(idx) <= 5
        # padded size within the budget unless a single row is longer than the budget
        assert len(idx) * lengths[idx].max() <= 60 or len(idx) == 1
    # sorted by length: batches do not interleave
    maxima = [lengths[idx].max() for idx in batches]
    minima = [lengths[idx].min() for idx in batches]
    assert all(hi <= lo for hi, lo in zip(maxima[:-1], minima[1:], strict=True))


def test_small_budget_gives_same_embeddings_and_less_padding(scorer):
    encoder = shared_encoder(scorer, batch_size=64, token_budget=40)
    small = encoder.encode(SENTENCES)
    assert torch.allclose(small, scorer.encoder.encode(SENTENCES), atol=1e-5)
    stats = encoder.stats
    assert stats["sentences"] == len(SENTENCES) and stats["batches"] >= 3
    assert stats["tokens"] == int(encoder.token_lengths(SENTENCES).sum())
    assert stats["tokens"] <= stats["padded_tokens"] <= 1.5 * stats["tokens"]


def test_tokenize_counts_truncated_sentences(scorer):
    encoder = scorer.encoder
    long = " ".join(["warming"] * 400) + "."
    ids, truncated = encoder.tokenize(["Short one.", long, long + " Again."])
    assert truncated == 2
    assert [len(x) for x in ids][1:] == [encoder.max_seq_length] * 2
    ids, truncated = encoder.tokenize(SENTENCES)
    assert truncated == 0 and [len(x) for x in ids] == encoder.token_lengths(SENTENCES).tolist()


def test_num_threads_is_used_and_restored(scorer):
    before = torch.get_num_threads()
    encoder = shared_encoder(scorer, num_threads=1)
    seen = []
    inner = encoder.runner

    def spy(features):
        seen.append(torch.get_num_threads())
        return inner(features)

    encoder._runner = spy
    out = encoder.encode(SENTENCES[:3])
    assert seen and set(seen) == {1}
    assert torch.get_num_threads() == before  # the user's setting is back
    assert torch.allclose(out, scorer.encoder.encode(SENTENCES[:3]), atol=1e-5)
    # None leaves torch alone
    assert (
        SentenceTransformerEncoder(str(default_model_dir()), torch.device("cpu")).num_threads
        is None
    )


def test_encoder_pickles_without_the_model(scorer):
    encoder = resolve_encoder(None, "cpu", precision="fp32")
    encoder._model = scorer.encoder.model
    clone = pickle.loads(pickle.dumps(encoder))
    assert clone._model is None and clone.key == encoder.key
    assert clone.key == f"{DEFAULT_MODEL}@{encoder.identity}|fp32"


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"precision": "fp64"}, ValueError, r"precision must be one of"),
        ({"precision": "fp16"}, ValueError, r"fp16.*CUDA"),
        ({"precision": None}, ValueError, r"precision must be one of"),
    ],
)
def test_bad_precision_fails_before_loading(kwargs, error, match):
    with pytest.raises(error, match=match):
        resolve_encoder(None, "cpu", **kwargs)


def test_callable_model_rejects_a_precision():
    with pytest.raises(ValueError, match=r"precision.*callable"):
        resolve_encoder(lambda s: np.ones((len(s), 3)), "cpu", precision="int8")


def test_bad_token_budget_and_threads():
    with pytest.raises(ValueError, match="token_budget"):
        SentenceTransformerEncoder("x", torch.device("cpu"), token_budget=0)
    with pytest.raises(ValueError, match="num_threads"):
        SentenceTransformerEncoder("x", torch.device("cpu"), num_threads=0)


def test_cpu_features_and_precisions_listed():
    feats = cpu_features()
    assert set(feats) == {"avx2", "avx512", "vnni", "bf16", "amx"}
    assert all(isinstance(v, bool) for v in feats.values())
    assert "fp32" in PRECISIONS and "int8" in PRECISIONS


def test_truncation_warning_still_once(scorer):
    encoder = shared_encoder(scorer)
    long = " ".join(["heat"] * 300) + "."
    with pytest.warns(TruncationWarning, match=r"1 sentence\(s\)"):
        encoder.encode([long, "Short."])
    with warnings.catch_warnings():
        warnings.simplefilter("error", TruncationWarning)
        encoder.encode([long])


def test_encode_array_is_numpy_on_the_cpu_and_equals_encode(scorer):
    enc = scorer.encoder
    arr = enc.encode_array(SENTENCES)
    assert isinstance(arr, np.ndarray) and arr.dtype == np.float32
    assert arr.shape == (len(SENTENCES), 384)
    np.testing.assert_array_equal(arr, enc.encode(SENTENCES).numpy())
    np.testing.assert_allclose(np.linalg.norm(arr, axis=1), 1.0, atol=1e-6)


def test_a_subclass_that_overrides_encode_is_used_by_encode_array():
    import cec

    class Ones(cec.Encoder):
        name = "ones"

        def encode(self, sentences):
            return torch.ones((len(sentences), 3)) / 3**0.5

    got = Ones().encode_array(["a", "b"])
    assert isinstance(got, np.ndarray)
    np.testing.assert_allclose(got, np.full((2, 3), 3**-0.5), rtol=1e-6)


def test_resolving_and_identifying_the_default_on_the_cpu_needs_no_torch():
    """Options are checked and the signature is known before torch is imported (fast start)."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from cec.encode import CallableEncoder, resolve_encoder\n"
        "enc = resolve_encoder(None, 'cpu')\n"
        "key = enc.key\n"
        "f = CallableEncoder(lambda s: np.ones((len(s), 2)), name='ones').encode_array(['a'])\n"
        "print(key, f.tolist(), enc.device_type, 'torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    key, *rest = out.stdout.split(maxsplit=1)
    assert key.startswith(f"{DEFAULT_MODEL}@") and key.endswith("|fp32")
    assert rest == ["[[0.7071067690849304, 0.7071067690849304]] cpu False\n"]
    assert out.stderr == ""


def test_device_is_a_torch_device_and_device_type_follows_an_override():
    import cec

    enc = resolve_encoder(None, "cpu")
    assert enc.device == torch.device("cpu") and enc.device_type == "cpu"

    class Meta(cec.Encoder):
        device = torch.device("meta")

    assert Meta().device_type == "meta"


def test_the_default_device_is_found_without_torch_where_no_gpu_driver_exists():
    import os
    import subprocess
    import sys

    from cec.devices import _GPU_NODES, device_name

    if any(os.path.exists(p) for p in _GPU_NODES):
        pytest.skip("this machine has GPU driver nodes: torch is asked, as it should be")
    code = "import sys\nfrom cec.devices import device_name\nprint(device_name(None), 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["cpu", "False"]
    assert device_name(None) == str(torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device: 'cuda:0' was asked for but CUDA"):
            device_name("cuda:0")
    with pytest.raises(ValueError, match="device: 'gpu!' is not a torch device"):
        device_name("gpu!")
