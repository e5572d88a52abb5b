"""Reports from evaluation results: Table 1 (Markdown, CSV, LaTeX) and PNG plots.

Input is one or more results files written by :meth:`cec_distill.metrics.EvaluationResult.save`
(or the result objects themselves); each is one system, i.e. one row of Table 1.

Public API:

- :func:`table1` ``(results, columns=TABLE1_COLUMNS) -> DataFrame``: rows = systems, columns =
  the paper's metric names, values = corpus scores.
- :func:`to_markdown`, :func:`to_latex` ``(table, digits=3) -> str``; CSV via ``DataFrame.to_csv``.
- :func:`plot_distributions` ``(results, path)``: per-metric histograms of item scores (one
  colour per system).
- :func:`plot_scatter` ``(results, path, x="bertscore", y="cec")``: item scores of two metrics,
  with Spearman's rho in the legend.
- :func:`write_report` ``(results, out_dir, stem="table1") -> dict[str, Path]``: all of the
  above: ``<stem>.md``, ``<stem>.csv``, ``<stem>.tex``, ``distributions.png``, ``scatter.png``.

Examples:
    >>> from cec_distill.metrics import evaluate
    >>> from cec_distill.report import table1, to_markdown
    >>> res = evaluate(["the cat sat"], ["the cat sat"], metrics=["rouge1"], system="toy")
    >>> print(to_markdown(table1([res])))
    | Model | ROUGE-1 |
    | --- | --- |
    | toy | 1.000 |
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from cec_distill.metrics import EvaluationResult, load_results

__all__ = [
    "TABLE1_COLUMNS",
    "table1",
    "to_markdown",
    "to_latex",
    "plot_distributions",
    "plot_scatter",
    "write_report",
    "as_results",
]

TABLE1_COLUMNS: tuple[tuple[str, str], ...] = (
    ("bleu", "BLEU"),
    ("rouge1", "ROUGE-1"),
    ("rouge2", "ROUGE-2"),
    ("rougeL", "ROUGE-L"),
    ("meteor", "METEOR"),
    ("bertscore", "BERTScore"),
    ("cec", "CEC"),
    ("llm_judge", "LLM judge"),  # 1-5, not 0-1; only when evaluated with --metrics ...,llm_judge
)
ResultsLike = EvaluationResult | str | os.PathLike


def as_results(results: ResultsLike | Iterable[ResultsLike]) -> list[EvaluationResult]:
    """One or several results (objects or JSON paths) -> list of results with system names."""
    if isinstance(results, (EvaluationResult, str, os.PathLike)):
        results = [results]
    out = []
    for k, r in enumerate(results):
        if isinstance(r, EvaluationResult):
            res = r
        else:
            res = load_results(r)
            if not res.system:
                res.system = Path(r).stem
        if not res.system:
            res.system = f"system{k + 1}"
        out.append(res)
    if not out:
        raise ValueError("results is empty; give at least one results file")
    return out


def table1(
    results: ResultsLike | Iterable[ResultsLike],
    columns: Sequence[tuple[str, str]] = TABLE1_COLUMNS,
) -> Any:
    """Corpus scores, one row per system, one column per metric present in any result."""
    import pandas as pd

    res = as_results(results)
    present = [(c, label) for c, label in columns if any(c in r.corpus.index for r in res)]
    if not present:
        raise ValueError(f"none of the columns {[c for c, _ in columns]} is in the results")
    rows = {
        r.system: {label: (float(r.corpus.loc[c, "score"]) if c in r.corpus.index else math.nan)
                   for c, label in present}
        for r in res
    }  # fmt: skip
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "Model"
    return table


def _fmt(v: Any, digits: int) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def to_markdown(table: Any, digits: int = 3) -> str:
    """A GitHub-flavoured Markdown table (no extra dependency)."""
    head = [table.index.name or ""] + [str(c) for c in table.columns]
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join("---" for _ in head) + " |"]
    for name, row in table.iterrows():
        lines.append("| " + " | ".join([str(name)] + [_fmt(v, digits) for v in row]) + " |")
    return "\n".join(lines)


_TEX = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "_": r"\_",
    "#": r"\#",
    "$": r"\$",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def _tex_escape(text: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in text)


def to_latex(
    table: Any, digits: int = 3, caption: str = "Comparison of LLMs across evaluation metrics",
    label: str = "tab:metrics", bold_best: bool = True,
) -> str:  # fmt: skip
    """A booktabs LaTeX table; the best value of each column in bold when ``bold_best``."""
    cols = list(table.columns)
    best = {c: table[c].max(skipna=True) for c in cols}
    lines = [
        r"\begin{table}[t]", r"\centering", r"\begin{tabular}{l" + "r" * len(cols) + "}",
        r"\toprule",
        " & ".join([_tex_escape(table.index.name or "")] + [_tex_escape(str(c)) for c in cols]) + r" \\",
        r"\midrule",
    ]  # fmt: skip
    for name, row in table.iterrows():
        cells = [_tex_escape(str(name))]
        for c in cols:
            s = _fmt(row[c], digits)
            if bold_best and len(table) > 1 and not math.isnan(row[c]) and row[c] == best[c]:
                s = r"\textbf{" + s + "}"
            cells.append(s)
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", rf"\caption{{{_tex_escape(caption)}}}",
              rf"\label{{{label}}}", r"\end{table}"]  # fmt: skip
    return "\n".join(lines) + "\n"


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt: Any, fig: Any, path: str | os.PathLike[str]) -> Path:
    """Lay out, write (creating folders) and close a figure; return its path."""
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_distributions(
    results: ResultsLike | Iterable[ResultsLike],
    path: str | os.PathLike[str],
    columns: Sequence[tuple[str, str]] = TABLE1_COLUMNS,
    bins: int = 30,
) -> Path:
    """Histograms of item scores, one panel per metric, one colour per system; saves a PNG."""
    plt = _pyplot()
    res = as_results(results)
    present = [(c, label) for c, label in columns if any(c in r.items.columns for r in res)]
    if not present:
        raise ValueError("no metric columns to plot in the results")
    ncol = min(4, len(present))
    nrow = math.ceil(len(present) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 2.6 * nrow), squeeze=False)
    for ax, (c, label) in zip(axes.flat, present, strict=False):
        for r in res:
            if c in r.items.columns:
                ax.hist(r.items[c].dropna(), bins=bins, alpha=0.55, label=r.system)
        ax.set_title(label)
        ax.set_xlabel("score")
    for ax in list(axes.flat)[len(present) :]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize="small")
    return _save(plt, fig, path)


def plot_scatter(
    results: ResultsLike | Iterable[ResultsLike],
    path: str | os.PathLike[str],
    x: str = "bertscore",
    y: str = "cec",
) -> Path:
    """Item scores of metric ``y`` against metric ``x`` (Spearman's rho per system); PNG."""
    from scipy.stats import spearmanr

    plt = _pyplot()
    res = as_results(results)
    labels = dict(TABLE1_COLUMNS)
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    plotted = 0
    for r in res:
        if x in r.items.columns and y in r.items.columns:
            d = r.items[[x, y]].dropna()
            rho = spearmanr(d[x], d[y])[0] if len(d) > 2 else math.nan
            ax.scatter(d[x], d[y], s=9, alpha=0.6, label=f"{r.system} (rho = {rho:.2f})")
            plotted += 1
    if not plotted:
        plt.close(fig)
        raise ValueError(f"no result has both columns {x!r} and {y!r}")
    ax.set_xlabel(labels.get(x, x))
    ax.set_ylabel(labels.get(y, y))
    ax.legend(fontsize="small")
    return _save(plt, fig, path)


def write_report(
    results: ResultsLike | Iterable[ResultsLike],
    out_dir: str | os.PathLike[str],
    *,
    stem: str = "table1",
    digits: int = 3,
    plots: bool = True,
    x: str = "bertscore",
    y: str = "cec",
) -> dict[str, Path]:
    """Table 1 as Markdown, CSV and LaTeX, plus the plots; returns the written paths by kind."""
    res = as_results(results)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = table1(res)
    written = {
        "md": out / f"{stem}.md",
        "csv": out / f"{stem}.csv",
        "tex": out / f"{stem}.tex",
    }
    written["md"].write_text(to_markdown(table, digits) + "\n")
    table.round(6).to_csv(written["csv"])
    written["tex"].write_text(to_latex(table, digits))
    if plots:
        written["distributions"] = plot_distributions(res, out / "distributions.png")
        if any(x in r.items.columns and y in r.items.columns for r in res):
            written["scatter"] = plot_scatter(res, out / "scatter.png", x=x, y=y)
    return written
