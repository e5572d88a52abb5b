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


def test_mkdocs_settings_make_a_site_that_works_from_disk():
    """Issue 25.9: opened from file://, a nav link to `page/` shows a directory listing; with
    `use_directory_urls: false` every page is `page.html` and links name that file."""
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    assert config.get("use_directory_urls") is False
    assert "api-distill.md" in _nav_pages(config["nav"])


def _check_site_works_from_disk(site: Path) -> None:
    import re
    from urllib.parse import unquote, urlsplit

    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    for page in _nav_pages(config["nav"]):
        assert (site / page.replace(".md", ".html")).is_file(), page
    checked = 0
    for html in site.rglob("*.html"):
        if html.name == "404.html":  # shown by a server only, with links from the site root
            continue
        for href in re.findall(r'href="([^"]*)"', html.read_text()):
            parts = urlsplit(href)
            if parts.scheme or parts.netloc or not parts.path:
                continue  # another site, or a link within the page
            target = (html.parent / unquote(parts.path)).resolve()
            # a folder link is a directory listing from disk: every link names a file
            assert not href.split("#")[0].endswith("/"), (html.name, href)
            assert target.is_file(), (html.relative_to(site), href)
            checked += 1
    assert checked > 500  # the nav of every page, at least


def _check_compute_returns_rendered(api: str) -> None:
    """`cec.metric.compute`'s Returns section is one item whose code is rendered as code."""
    import re

    start = api.index('id="cec.metric.compute"')
    section = api[start : api.index("Examples:", start)]
    returns = section[section.index("Returns:") :]
    assert returns.count('class="doc-section-item"') == 1
    assert "`" not in re.sub(r"<[^>]+>", "", returns)  # no raw backticks left in the text
    assert '<code>{"cec": float' in returns
    assert "``" not in re.sub(r"<[^>]+>", "", api)


def _check_cec_distill_reference(site: Path) -> None:
    page = (site / "api-distill.html").read_text()
    for name in (
        "cec_distill.data.Instance",
        "cec_distill.data.split",
        "cec_distill.teacher.label_instances",
        "cec_distill.train.train",
        "cec_distill.generate.generate",
        "cec_distill.metrics.evaluate",
        "cec_distill.stats.paired_ttest",
        "cec_distill.report.table1",
        "cec_distill.pipeline.run",
    ):
        assert f'id="{name}"' in page, name
    assert 'href="api-distill.html"' in (site / "index.html").read_text()  # in the nav
    # a docstring's "Example:" section (an admonition) turned its >>> lines into nested quotes
    for api in (page, (site / "api.html").read_text()):
        assert "<blockquote>" not in api


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
    api = (site / "api.html").read_text()
    # the API reference is generated from the docstrings
    for name in ("CECMetric", "Alignment", "read_records", "merge_state", "unsupported"):
        assert name in api, name
    card = (site / "metric-card.html").read_text()
    assert "does not check facts" in card and "causal direction" in card
    assert (site / "cli.html").is_file() and (site / "reporting.html").is_file()
    _check_site_works_from_disk(site)
    _check_compute_returns_rendered(api)
    _check_cec_distill_reference(site)

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
