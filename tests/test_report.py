"""Table 1 (Markdown, CSV, LaTeX) and PNG plots from real results files."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from cec_distill.metrics import evaluate
from cec_distill.report import table1, to_latex, to_markdown, write_report

GENS = ["the cat sat on the mat", "dogs bark at night", "ice melts when it warms", "a b c"]
REFS = ["the cat sat on a mat", "dogs bark loudly at night", "warming melts the ice", "x y z"]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("res")
    good = evaluate(GENS, REFS, ["bleu", "rouge1", "rougeL", "meteor"], system="Phi-2")
    bad = evaluate(GENS[::-1], REFS, ["bleu", "rouge1", "rougeL"], system="Gemma_2B & co")
    return [good.save(out / "phi2.json"), bad.save(out / "gemma.json")], [good, bad]


def test_table1_rows_columns_values(results):
    paths, objs = results
    t = table1(paths)
    assert list(t.index) == ["Phi-2", "Gemma_2B & co"]
    assert list(t.columns) == ["BLEU", "ROUGE-1", "ROUGE-L", "METEOR"]
    assert t.loc["Phi-2", "ROUGE-1"] == pytest.approx(objs[0].corpus.loc["rouge1", "score"])
    assert math.isnan(t.loc["Gemma_2B & co", "METEOR"])  # metric absent for that system


def test_markdown_csv_latex_files(results, tmp_path):
    paths, objs = results
    written = write_report(paths, tmp_path / "rep", digits=3)
    md = written["md"].read_text().splitlines()
    assert md[0] == "| Model | BLEU | ROUGE-1 | ROUGE-L | METEOR |"
    assert md[2].startswith("| Phi-2 | ") and md[3].endswith("| – |")
    assert f"{objs[0].corpus.loc['bleu', 'score']:.3f}" in md[2]
    csv = pd.read_csv(written["csv"], index_col=0)
    assert csv.loc["Phi-2", "ROUGE-L"] == pytest.approx(
        objs[0].corpus.loc["rougeL", "score"], abs=1e-6
    )
    tex = written["tex"].read_text()
    assert r"\begin{tabular}{lrrrr}" in tex and r"\toprule" in tex and r"\bottomrule" in tex
    assert r"Gemma\_2B \& co" in tex  # escaped
    assert tex.count(r"\textbf{") == 4  # best of each column (Phi-2 is better on all)
    for kind in ("distributions",):
        data = written[kind].read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert "scatter" not in written  # no bertscore/cec columns in these results


def test_scatter_plot_with_cec_and_bertscore(scorer, tmp_path):
    res = evaluate(GENS, REFS, ["cec", "bertscore"], system="s", scorer=scorer, device="cpu")
    written = write_report([res], tmp_path)
    assert written["scatter"].read_bytes()[:4] == b"\x89PNG"
    assert "BERTScore" in to_markdown(table1([res])) and "CEC" in to_latex(table1([res]))


def test_report_errors(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        table1([])
    bad = tmp_path / "x.json"
    bad.write_text('{"format": "other"}')
    with pytest.raises(ValueError, match="not a cec-distill-evaluation"):
        table1([bad])


def test_cli_evaluate_compare_report(tmp_path):
    import json

    import typer
    from typer.testing import CliRunner

    from cec_distill.evaluate import compare_command, evaluate_command, report_command

    app = typer.Typer()
    app.command("evaluate")(evaluate_command)
    app.command("compare")(compare_command)
    app.command("report")(report_command)
    rows = [{"id": i, "generated": f"{g} {'now ' * (i % 3)}", "reference": r}
            for i, (g, r) in enumerate(zip(GENS * 5, REFS * 5, strict=True))]  # fmt: skip
    src = tmp_path / "pairs.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    run = CliRunner().invoke
    out = run(
        app,
        [
            "evaluate",
            str(src),
            "--metrics",
            "bleu,rouge1",
            "--out",
            str(tmp_path / "r.json"),
            "--system",
            "S",
        ],
    )
    assert out.exit_code == 0, out.output
    assert "sacrebleu:" in out.output and (tmp_path / "r.items.csv").is_file()
    out = run(app, ["compare", str(tmp_path / "r.json"), "--metric-a", "rouge1", "--metric-b", "bleu",
                    "-k", "12", "--seed", "4", "--out", str(tmp_path / "c.json")])  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "t(11) = " in out.output
    from_results = json.loads((tmp_path / "c.json").read_text())
    assert from_results["k"] == 12
    # a pairs file instead of results: only the sampled items are scored, same comparison
    out = run(app, ["compare", str(src), "--metric-a", "rouge1", "--metric-b", "bleu", "-k", "12",
                    "--seed", "4", "--out", str(tmp_path / "c2.json")])  # fmt: skip
    assert out.exit_code == 0, out.output
    from_pairs = json.loads((tmp_path / "c2.json").read_text())
    assert from_pairs["indices"] == from_results["indices"]
    assert from_pairs["ttest"]["statistic"] == pytest.approx(from_results["ttest"]["statistic"])
    out = run(
        app, ["report", str(tmp_path / "r.json"), "--out-dir", str(tmp_path / "rep"), "--no-plots"]
    )
    assert out.exit_code == 0, out.output
    assert "| S |" in out.output and (tmp_path / "rep" / "table1.tex").is_file()
    bad = run(app, ["compare", str(tmp_path / "r.json"), "--metric-a", "nope"])
    assert bad.exit_code != 0 and "nope" in str(bad.exception)
