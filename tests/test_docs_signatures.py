"""Every signature string in README.md, docs/ and benchmarks/results/ is one today's code prints
(issue 25.7), or sits in a stored result marked with the version and commit that made it.

cec's own parts are compared exactly (its version, the model's identity hash, the splitter label,
``trunc:``, the order of the fields); option fields (``empty``, ``nrefs``, ``prec``, ``dir``...)
are the documented ones; other packages' version numbers (transformers, nupunkt...) may differ
from install to install and are not compared. ``...`` in a documented signature stands for any
fields. In markdown, a stored run's signatures go between
``<!-- stored-signatures: made by cec VERSION at commit HASH -->`` and
``<!-- /stored-signatures -->``; a results JSON carries a top-level ``provenance`` instead.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.docs_blocks import matches

ROOT = Path(__file__).resolve().parents[1]
MARKDOWN = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RESULTS = sorted((ROOT / "benchmarks" / "results").glob("*.json"))

_SIG = re.compile(r"(?:cec|bert-score):\d[^\s`'\"]*\|model:[^\s`'\"]*")
_STORED = re.compile(
    r"<!-- stored-signatures: made by cec (?P<version>\S+) at commit (?P<commit>[0-9a-f]{7,40}) "
    r"-->(?P<body>.*?)<!-- /stored-signatures -->",
    re.S,
)
# versions of other packages: the install decides them, not cec
_OTHER_VERSIONS = re.compile(
    r"(?<=nupunkt-)[\d.]+|(?<=\|transformers:)[\d.]+|(?<=^bert-score:)[\d.]+"
)


@pytest.fixture(scope="module")
def current():
    """What the code prints today for the default model: cec's and bert-score's signatures."""
    import cec

    sig = cec.CEC(device="cpu").signature
    bertscore = pytest.importorskip("cec_distill.metrics.bertscore")
    return sig, bertscore.BERTScoreMetric(device="cpu").signature


def _expected(documented: str, current) -> str:
    """The signature today's code prints for the options a documented signature names."""
    from cec.signature import Signature

    cec_sig, bert_sig = current
    if documented.startswith("bert-score:"):
        return bert_sig
    fields = dict(p.split(":", 1) for p in documented.split("|") if ":" in p)
    known = {"cec", "model", "seg", "empty", "nrefs", "prec", "trunc"}
    extra = tuple((k, v) for k, v in fields.items() if k not in known)
    seg = fields.get("seg", cec_sig.splitter)
    options = {
        "empty": fields.get("empty", cec_sig.empty),
        "nrefs": fields.get("nrefs", cec_sig.nrefs),
        "precision": fields.get("prec", cec_sig.precision),
        "extra": extra,
        # the default splitter's label is the code's; presplit, none, callables are options
        "splitter": cec_sig.splitter if seg.startswith("cec-") else seg,
    }
    assert isinstance(cec_sig, Signature)
    return str(cec_sig.with_(**options))


def _same(documented: str, expected: str) -> bool:
    def norm(s: str) -> str:
        return _OTHER_VERSIONS.sub("V", s)

    return matches(norm(documented), norm(expected)) is None


def _signatures_in(text: str) -> list[tuple[str, bool]]:
    """(signature, stored) for every signature string of a markdown text."""
    stored_spans = [m.span("body") for m in _STORED.finditer(text)]
    return [
        (_trim(m.group(0)), any(a <= m.start() < b for a, b in stored_spans))
        for m in _SIG.finditer(text)
    ]


def _trim(sig: str) -> str:
    """Without the sentence's punctuation after it (``...`` is kept: it is part of it)."""
    sig = sig.rstrip(",;)")
    return sig if sig.endswith("...") else sig.rstrip(".")


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def test_docs_show_the_signatures_the_code_prints(current):
    stale, checked, stored = [], 0, 0
    for path in MARKDOWN:
        for sig, is_stored in _signatures_in(path.read_text(encoding="utf-8")):
            if is_stored:
                stored += 1
                continue
            checked += 1
            expected = _expected(sig, current)
            if not _same(sig, expected):
                stale.append(f"{path.relative_to(ROOT)}: {sig}\n    today: {expected}")
    assert not stale, (
        "signatures the code does not print (`python -m tests.test_docs_signatures --fix` "
        "rewrites them):\n" + "\n".join(stale)
    )
    assert checked >= 15 and stored >= 5, (checked, stored)


def test_stored_signatures_say_what_made_them():
    for path in MARKDOWN:
        text = path.read_text(encoding="utf-8")
        assert text.count("<!-- stored-signatures:") == len(_STORED.findall(text)), path
        for m in _STORED.finditer(text):
            # a stored run is shown beside what the code prints today for the same setup
            after = text[m.end() : m.end() + 1500]
            assert "today" in after and _SIG.search(after), (path, m.group("commit"))


@pytest.mark.parametrize("path", RESULTS, ids=lambda p: p.name)
def test_results_files_are_current_or_say_what_made_them(path, current):
    data = json.loads(path.read_text(encoding="utf-8"))
    sigs = [m.group(0) for s in _strings(data) for m in _SIG.finditer(s)]
    provenance = data.get("provenance") if isinstance(data, dict) else None
    if provenance is not None:
        assert re.fullmatch(r"[0-9a-f]{7,40}", provenance["commit"])
        assert provenance["made_by"].startswith("cec ") and provenance["note"]
        return
    stale = [s for s in sigs if not _same(s, _expected(s, current))]
    assert not stale, f"{path.name}: stale signatures and no provenance: {stale}"


def test_the_check_catches_a_stale_signature(current):
    old = "cec:0.1.0|model:all-MiniLM-L6-v2@53aa5117|seg:cec-1+nupunkt-0.8.0|empty:zero|nrefs:3|prec:fp32"
    assert not _same(old, _expected(old, current))  # old hash, and no trunc:
    assert _same(str(current[0]), _expected(str(current[0]), current))
    bert_old = (
        "bert-score:0.3.13|model:all-MiniLM-L6-v2@53aa5117|layer:5|idf:no|rescale:no|stat:f1|"
        "multiref:max|transformers:5.23.0"
    )
    assert not _same(bert_old, _expected(bert_old, current))
    today = current[1].replace("transformers:", "transformers:9.9.")  # another install
    assert _same(today, _expected(today, current))


def _fixed(documented: str, expected: str) -> str:
    """``documented`` rewritten to today's: whole, or field by field where it elides (``...``)."""
    if "..." not in documented:
        return expected
    today = dict(p.split(":", 1) for p in expected.split("|") if ":" in p)
    parts = []
    for part in documented.split("|"):
        key = part.split(":", 1)[0]
        parts.append(f"{key}:{today[key]}" if ":" in part and key in today else part)
    keys = [p.split(":", 1)[0] for p in expected.split("|")]
    last = parts[-1].split(":", 1)[0]
    if last in keys:  # fields the code prints after the last one shown, e.g. a new trunc:
        parts += expected.split("|")[keys.index(last) + 1 :]
    return "|".join(parts)


def fix(paths=MARKDOWN) -> list[str]:
    """Rewrite the stale, unstored signatures of the markdown files (for a deliberate change of
    cec's signature, e.g. a new splitter version); returns what changed."""
    import cec
    from cec_distill.metrics.bertscore import BERTScoreMetric

    current = (cec.CEC(device="cpu").signature, BERTScoreMetric(device="cpu").signature)
    changed = []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        stored = [m.span("body") for m in _STORED.finditer(text)]
        out, last = [], 0
        for m in _SIG.finditer(text):
            sig = _trim(m.group(0))
            if any(a <= m.start() < b for a, b in stored):
                continue
            expected = _expected(sig, current)
            if _same(sig, expected):
                continue
            new = _fixed(sig, expected)
            out += [text[last : m.start()], new]
            last = m.start() + len(sig)
            changed.append(f"{path.relative_to(ROOT)}: {sig} -> {new}")
        if out:
            path.write_text("".join(out) + text[last:], encoding="utf-8")
    return changed


if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["--fix"]:
        sys.exit("usage: python -m tests.test_docs_signatures --fix")
    print("\n".join(fix()) or "every signature is current")
