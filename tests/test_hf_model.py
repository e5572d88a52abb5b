"""cec.hf_model: plain folders load with transformers alone and give sentence-transformers' vectors."""

from __future__ import annotations

import json

import pytest
import torch
from encoders import model_copy, sentence_transformer_of

from cec.encode import SentenceTransformerEncoder, default_model_dir
from cec.hf_model import PlainLayout, PooledTransformer, plain_layout

SENTENCES = [
    "CO2 traps heat.",
    "The Arctic is warming about twice as fast as the global average, driven partly by the "
    "loss of reflective sea ice.",
    "Dr. Smith measured 1.5°C of warming.",
    "a",
]
CPU = torch.device("cpu")


def test_default_model_is_plain():
    assert plain_layout(default_model_dir()) == PlainLayout(256, False, "mean", True)


@pytest.mark.parametrize(
    ("sbert", "pooling", "modules"),
    [
        ({"model_args": {"trust_remote_code": True}}, None, None),  # options we do not replay
        (None, {"pooling_mode_max_tokens": True}, None),  # two pooling modes at once
        (None, {"pooling_mode_mean_tokens": False, "pooling_mode_lasttoken": True}, None),
        (None, {"include_prompt": False}, None),
        (None, None, "dense"),  # a Dense layer after pooling
    ],
)
def test_other_layouts_are_left_to_sentence_transformers(tmp_path, sbert, pooling, modules):
    folder = model_copy(tmp_path, sbert=sbert, pooling=pooling)
    if modules == "dense":
        entries = json.loads((folder / "modules.json").read_text())
        entries.insert(
            2,
            {
                "idx": 2,
                "name": "2",
                "path": "2_Dense",
                "type": "sentence_transformers.models.Dense",
            },
        )
        (folder / "modules.json").write_text(json.dumps(entries))
    assert plain_layout(folder) is None


@pytest.mark.parametrize(
    ("mode", "key"),
    [
        ("cls", "pooling_mode_cls_token"),
        ("max", "pooling_mode_max_tokens"),
        ("mean_sqrt_len_tokens", "pooling_mode_mean_sqrt_len_tokens"),
    ],
)
def test_pooling_modes_equal_sentence_transformers(tmp_path, mode, key):
    folder = model_copy(tmp_path, pooling={"pooling_mode_mean_tokens": False, key: True})
    encoder = SentenceTransformerEncoder(str(folder), CPU)
    assert isinstance(encoder.model, PooledTransformer) and encoder.model.pooling == mode
    ours = encoder.encode(SENTENCES)
    theirs = sentence_transformer_of(encoder).encode(
        SENTENCES, convert_to_tensor=True, normalize_embeddings=True
    )
    assert torch.allclose(ours, theirs.to(ours), atol=1e-6)


def test_a_folder_with_extra_options_loads_through_sentence_transformers(tmp_path, scorer):
    folder = model_copy(tmp_path, sbert={"model_args": {}})  # same function, not "plain"
    encoder = SentenceTransformerEncoder(str(folder), CPU)
    assert type(encoder.model).__name__ == "SentenceTransformer"
    ours = encoder.encode(SENTENCES)
    plain = scorer.encoder.encode(SENTENCES)
    assert torch.allclose(ours, plain, atol=1e-6)


def test_do_lower_case_is_applied_as_sentence_transformers_does(tmp_path):
    folder = model_copy(tmp_path, sbert={"do_lower_case": True})
    encoder = SentenceTransformerEncoder(str(folder), CPU)
    assert isinstance(encoder.model, PooledTransformer) and encoder.model.do_lower_case
    ids = encoder.tokenize(["CO2 Traps HEAT."])[0]
    assert ids == encoder.tokenize(["co2 traps heat."])[0]
    theirs = sentence_transformer_of(encoder).encode(
        ["CO2 Traps HEAT."], convert_to_tensor=True, normalize_embeddings=True
    )
    assert torch.allclose(encoder.encode(["CO2 Traps HEAT."]), theirs, atol=1e-6)
