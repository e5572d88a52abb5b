"""The documentation builds offline with `mkdocs build --strict` (as in CI)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _nav_pages(nav: list) -> list[str]:
    pages: list[str] = []
    for entry in nav:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        pages += _nav_pages(value) if isinstance(value, list) else [value]
    return pages


def test_nav_lists_only_pages_that_exist():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    pages = _nav_pages(config["nav"])
    assert "metric-card.md" in pages and "api.md" in pages and "cli.md" in pages
    missing = [p for p in pages if not (ROOT / "docs" / p).is_file()]
    assert not missing, f"mkdocs.yml nav lists pages that do not exist: {missing}"


def test_mkdocs_build_strict(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "-q",
            "-f",
            str(ROOT / "mkdocs.yml"),
            "-d",
            str(site),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    api = (site / "api" / "index.html").read_text()
    # the API reference is generated from the docstrings
    for name in ("CECMetric", "Alignment", "read_records", "merge_state", "unsupported"):
        assert name in api, name
    card = (site / "metric-card" / "index.html").read_text()
    assert "does not check facts" in card and "causal direction" in card
    assert (site / "cli" / "index.html").is_file() and (site / "reporting" / "index.html").is_file()

    # issue 13.11: no raw Sphinx roles; they became cross-references (links between pages)
    import re

    for page in site.rglob("*.html"):
        raw = re.findall(r":(?:class|func|meth|mod|attr|data|exc):`", page.read_text())
        assert not raw, (page, len(raw))
    assert 'href="#cec.CEC"' in api and "autorefs-internal" in api
    # formulas are left for the bundled KaTeX (no CDN): arithmatex spans, local scripts
    assert '<span class="arithmatex">\\(= \\frac{1}{n}' in card
    for asset in ("katex.min.js", "katex.min.css", "contrib/auto-render.min.js", "init.js"):
        assert (site / "assets" / "katex" / asset).is_file(), asset
    assert len(list((site / "assets" / "katex" / "fonts").glob("*.woff2"))) >= 20
    scripts = re.findall(r'<script[^>]+src="([^"]+)"', card)
    assert any(s.endswith("assets/katex/katex.min.js") for s in scripts)
    assert not [s for s in scripts if s.startswith(("http:", "https:", "//"))], scripts
    assert not (site / "_ext").exists()


def test_readme_python_snippet_prints_what_it_says(monkeypatch, capsys):
    """The README's `print(result)` line is the real output of its own snippet (issue 13.7)."""
    import re

    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## From Python\n\n```python\n(.*?)```", readme, re.S).group(1)
    code, _, rest = block.partition("print(result)\n")
    shown = rest.splitlines()[0].removeprefix("# ")
    monkeypatch.chdir(ROOT)
    namespace: dict = {}
    exec(compile(code + "print(result)\n", "README.md", "exec"), namespace)  # noqa: S102
    printed = capsys.readouterr().out.strip()
    scores, _, signature = printed.partition(" | ")
    shown_scores, _, shown_signature = shown.partition(" | ")
    assert scores == shown_scores  # the same numbers, to the same number of decimals
    # the signature's form (versions may differ from the README's on another install)
    assert shown_signature.split("|")[1:2] == signature.split("|")[1:2]  # model@hash
    assert str(namespace["result"].signature) == signature
