"""Shared fixtures: one default scorer per test session, the shared real data folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# the suite tests the torch fp32 path unless a test turns the fast start on (test_startup.py)
os.environ.setdefault("CEC_FAST_START", "0")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CEC_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def scorer():
    """The default CEC scorer (embedded all-MiniLM-L6-v2 on CPU), loaded once per session."""
    import cec

    return cec.CEC(device="cpu")


@pytest.fixture(scope="session")
def st_model(scorer):
    """The default model loaded by sentence-transformers (see encoders.sentence_transformer_of)."""
    from encoders import sentence_transformer_of

    return sentence_transformer_of(scorer.encoder)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (or $CEC_SHARED_DATA); tests that need it skip, naming the path."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent")
    return SHARED_DATA


@pytest.fixture(scope="session")
def hf_serve(tmp_path_factory):
    """``transformers serve`` on a tiny random Llama (tests/serve_helpers.py), started once per
    session for the teacher's and the judge's tests. Its window holds every test prompt and its
    answer, whatever the server's window rule (transformers >= 5.25 refuses a prompt plus answer
    longer than ``max_position_embeddings``)."""
    from serve_helpers import start_serve

    yield from start_serve(tmp_path_factory.mktemp("serve"), max_positions=2048)
