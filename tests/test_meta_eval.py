"""`cec-distill meta-eval` (issue 27.2): correlations with human ratings, cluster bootstrap,
paired permutation test against CEC, bad input, output files.

The statistics are checked against scipy on constructed data; the command runs end to end on a
rated file written here, with the real embedded all-MiniLM-L6-v2 (CEC) and the real lexical
metrics.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

pytest.importorskip("sacrebleu")
pytest.importorskip("rouge_score")

from cec_distill.cli import main  # noqa: E402
from cec_distill.meta_eval import (  # noqa: E402
    meta_evaluate,
    read_ratings,
    resolve_metrics,
)
from cec_distill.stats import bootstrap_ci  # noqa: E402

# four claims, three explanations of each, rated by a person (quality, fluency: 1-5)
ITEMS = [
    ("warming", "CO2 traps heat in the atmosphere, so the planet warms.", [
        ("Carbon dioxide traps heat. Because of that the Earth gets warmer.", 5, 5),
        ("CO2 is a gas. The planet is large.", 2, 4),
        ("Volcanoes are mountains that erupt lava.", 1, 3),
    ]),
    ("ice", "Warmer air melts Arctic sea ice, so the ice shrinks every summer.", [
        ("Arctic sea ice shrinks because the air above it is warmer.", 5, 4),
        ("Ice is cold. Summer is warm.", 2, 2),
        ("The stock market rose sharply on Tuesday.", 1, 5),
    ]),
    ("sea", "Water expands as it warms and glaciers melt, so the sea level rises.", [
        ("As the ocean warms it expands, and melting glaciers add water: the sea rises.", 5, 5),
        ("The sea is salty and deep.", 2, 3),
        ("Sea sea level level rises rises.", 3, 1),
    ]),
    ("forest", "Cutting down forests releases stored carbon into the air.", [
        ("Deforestation puts the carbon stored in trees into the atmosphere.", 4, 5),
        ("Forests have many trees. Trees are green.", 2, 4),
        ("Carbon forests cut air release.", 2, 1),
    ]),
]  # fmt: skip


def _write_jsonl(path: Path) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for item, ref, outputs in ITEMS:
            for k, (gen, quality, fluency) in enumerate(outputs):
                rec = {"item": item, "system": f"s{k}", "generated": gen, "references": [ref],
                       "human": {"quality": quality, "fluency": fluency}}  # fmt: skip
                fh.write(json.dumps(rec) + "\n")
    return path


@pytest.fixture(scope="module")
def rated(tmp_path_factory) -> Path:
    return _write_jsonl(tmp_path_factory.mktemp("meta") / "rated.jsonl")


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


# --------------------------------------------------------------------------------------------
# statistics against scipy
# --------------------------------------------------------------------------------------------
def _data(n: int = 60, seed: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    h = rng.integers(1, 6, n).astype(float)  # ties, like 1-5 ratings
    a = h + rng.normal(0, 1.0, n)
    b = rng.normal(0, 1.0, n) + 0.3 * h
    return a, b, h


def test_correlations_and_cis_are_scipys():
    a, b, h = _data()
    res = meta_evaluate({"cec": a, "bleu": b}, {"q": h}, n_bootstrap=200, n_permutations=50)
    for col, x in (("cec", a), ("bleu", b)):
        row = res.row("q", col)
        assert row["spearman"]["value"] == pytest.approx(sps.spearmanr(x, h)[0], abs=1e-9)
        assert row["kendall"]["value"] == pytest.approx(sps.kendalltau(x, h)[0], abs=1e-9)
        assert row["pearson"]["value"] == pytest.approx(sps.pearsonr(x, h)[0], abs=1e-9)
        # the CI is the percentile bootstrap over items of cec_distill.stats (scipy.bootstrap)
        ref = bootstrap_ci((x, h), lambda u, v: sps.spearmanr(u, v)[0], paired=True,
                           n_resamples=200, seed=0)  # fmt: skip
        assert row["spearman"]["low"] == pytest.approx(ref.low, abs=1e-9)
        assert row["spearman"]["high"] == pytest.approx(ref.high, abs=1e-9)
        assert row["n"] == row["n_items"] == 60
    d = res.row("q", "bleu")["against"]
    for s, f in (("spearman", sps.spearmanr), ("kendall", sps.kendalltau),
                 ("pearson", sps.pearsonr)):  # fmt: skip
        assert d[s]["value"] == pytest.approx(f(a, h)[0] - f(b, h)[0], abs=1e-9)
        assert d[s]["low"] <= d[s]["value"] <= d[s]["high"]
    assert "against" not in res.row("q", "cec")


def test_deterministic_given_the_seed():
    a, b, h = _data()
    one = meta_evaluate({"cec": a, "bleu": b}, {"q": h}, n_bootstrap=100, n_permutations=100)
    two = meta_evaluate({"cec": a, "bleu": b}, {"q": h}, n_bootstrap=100, n_permutations=100)
    other = meta_evaluate({"cec": a, "bleu": b}, {"q": h}, n_bootstrap=100, n_permutations=100,
                          seed=1)  # fmt: skip
    assert one.rows == two.rows
    assert one.row("q", "bleu")["spearman"]["low"] != other.row("q", "bleu")["spearman"]["low"]


def test_clustering_by_item_widens_the_ci():
    # 12 items x 6 rated outputs; the rating and the metric share a per-item effect, so rows of
    # one item are far from independent: resampling items must give a wider interval
    rng = np.random.default_rng(0)
    item = np.repeat(np.arange(12), 6)
    effect = rng.normal(0, 1, 12)[item]
    h = effect + rng.normal(0, 0.5, len(item))
    x = effect + rng.normal(0, 0.5, len(item))
    flat = meta_evaluate({"cec": x}, {"q": h}, n_bootstrap=300, statistics=("spearman",))
    clus = meta_evaluate({"cec": x}, {"q": h}, clusters=[f"i{i}" for i in item],
                         n_bootstrap=300, statistics=("spearman",))  # fmt: skip
    f, c = flat.row("q", "cec")["spearman"], clus.row("q", "cec")["spearman"]
    assert f["value"] == c["value"]
    assert (c["high"] - c["low"]) > 1.3 * (f["high"] - f["low"])
    assert clus.row("q", "cec")["n_items"] == 12 and clus.row("q", "cec")["n"] == 72
    # one row per id is the same as no ids (the same resamples)
    uniq = meta_evaluate({"cec": x}, {"q": h}, clusters=list(range(72)), n_bootstrap=300,
                         statistics=("spearman",))  # fmt: skip
    assert uniq.rows == flat.rows


def test_permutation_p_identical_metrics_is_one_and_different_ones_small():
    a, b, h = _data(n=80)
    same = meta_evaluate({"cec": a, "copy": a.copy()}, {"q": h}, n_bootstrap=20,
                         n_permutations=200)  # fmt: skip
    for s in ("spearman", "kendall", "pearson"):
        d = same.row("q", "copy")["against"][s]
        assert d["value"] == 0.0 and d["p"] == 1.0
    good = h + np.random.default_rng(5).normal(0, 0.3, len(h))
    noise = np.random.default_rng(6).normal(0, 1, len(h))
    diff = meta_evaluate({"cec": good, "noise": noise}, {"q": h}, n_bootstrap=20,
                         n_permutations=200)  # fmt: skip
    for s in ("spearman", "kendall", "pearson"):
        d = diff.row("q", "noise")["against"][s]
        assert d["value"] > 0.5
        assert d["p"] == pytest.approx(1 / 201)  # no permutation comes near
    # a rescaled copy (another scale, the same ranking): no difference for the rank statistics
    scaled = meta_evaluate({"cec": a, "x": 10 * a + 3}, {"q": h}, n_bootstrap=20,
                           n_permutations=100)  # fmt: skip
    assert scaled.row("q", "x")["against"]["spearman"]["p"] == 1.0
    assert scaled.row("q", "x")["against"]["pearson"]["p"] == 1.0


def test_bad_arrays_are_refused():
    with pytest.raises(ValueError, match="one value only"):
        meta_evaluate({"cec": [1.0, 2, 3]}, {"q": [4.0, 4, 4]})
    with pytest.raises(ValueError, match="needs 4"):
        meta_evaluate({"cec": [1.0, 2, 3]}, {"q": [1.0, 2, 3, 4]})
    with pytest.raises(ValueError, match="statistic"):
        meta_evaluate({"cec": [1.0, 2, 3]}, {"q": [1.0, 2, 3]}, statistics=("tau",))
    with pytest.raises(ValueError, match="against"):
        meta_evaluate({"cec": [1.0, 2, 3]}, {"q": [1.0, 3, 2]}, against="bleu")


def test_metric_names_resolve_to_registry_metrics():
    assert resolve_metrics("cec,cec_forward,bleu,bertscore_p") == {
        "cec": ["cec", "cec_forward"], "bleu": ["bleu"], "bertscore": ["bertscore_p"],
    }  # fmt: skip
    with pytest.raises(ValueError, match="unknown metric 'cecc'.*cec_backward"):
        resolve_metrics(["cecc"])


# --------------------------------------------------------------------------------------------
# reading: errors name the file, the line and the field
# --------------------------------------------------------------------------------------------
def test_reader_fields_nested_and_clusters(rated):
    r = read_ratings(rated, ["human.quality", "human.fluency"], id_field="item")
    assert len(r) == 12 and r.ids[:3] == ["warming"] * 3
    assert r.human["human.quality"][:3].tolist() == [5.0, 2.0, 1.0]
    assert r.references[0] == [ITEMS[0][1]]


@pytest.mark.parametrize(
    ("body", "suffix", "args", "message"),
    [
        (
            '{"generated": "a", "references": "b", "q": 3}\n{"generated": "a", "references": "b"}\n',
            ".jsonl",
            [],
            r"bad.jsonl:2: no human rating field 'q'",
        ),
        (
            '{"generated": "a", "references": "b", "q": "good"}\n',
            ".jsonl",
            [],
            r"bad.jsonl:1: human rating field 'q' is 'good', not a number",
        ),
        (
            "generated,references,q\na,b,3\nc,d,\n",
            ".csv",
            [],
            r"bad.csv:3: human rating field 'q' is empty",
        ),
        ("", ".jsonl", [], r"bad.jsonl: no records"),
        (
            '{"generated": "a", "references": "b", "q": 3}\n',
            ".jsonl",
            ["--metrics", "cec,nope"],
            r"--metrics|metrics: unknown metric 'nope'",
        ),
        (
            '{"generated": "a", "q": 3}\n',
            ".jsonl",
            [],
            r"bad.jsonl:1: none of the fields \['references'",
        ),
        (
            '{"generated": "a", "references": "b", "q": 3}\n',
            ".jsonl",
            ["--id-field", "item"],
            r"bad.jsonl:1: no item id field 'item'",
        ),
        (
            '{"generated": 7, "references": "b", "q": 3}\n',
            ".jsonl",
            [],
            r"bad.jsonl:1: generated text field 'generated' is a int",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, body, suffix, args, message):
    path = tmp_path / f"bad{suffix}"
    path.write_text(body, encoding="utf-8")
    rc, out, err = _run(["meta-eval", str(path), "--human", "q", "--metrics", "rouge1", *args],
                        capsys)  # fmt: skip
    assert rc == 2, err
    assert err.startswith("cec-distill: error: ") and err.count("\n") == 1
    assert __import__("re").search(message, err), err


def test_constant_rating_is_refused(tmp_path, capsys):
    path = tmp_path / "flat.jsonl"
    path.write_text("".join(json.dumps({"generated": g, "references": "x", "q": 4}) + "\n"
                            for g in ("a b", "b c", "c d")))  # fmt: skip
    rc, _, err = _run(["meta-eval", str(path), "--human", "q", "--metrics", "rouge1"], capsys)
    assert rc == 2 and "human rating 'q' has one value only (4.0) in all 3 rows" in err


# --------------------------------------------------------------------------------------------
# the command end to end (real embedder, real files)
# --------------------------------------------------------------------------------------------
def test_command_end_to_end_with_clusters_and_outputs(rated, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    argv = [
        "meta-eval",
        str(rated),
        "--human",
        "human.quality",
        "--human",
        "human.fluency",
        "--id-field",
        "item",
        "--metrics",
        "cec,cec_forward,cec_backward,rouge1,bleu",
        "--bootstrap",
        "200",
        "--permutations",
        "200",
        "--out",
        str(out),
        "--device",
        "cpu",
    ]
    rc, stdout, err = _run(argv, capsys)
    assert rc == 0, err
    assert "human.quality (n = 12 rows, 4 items)" in stdout
    assert "| CEC forward |" in stdout and "CEC (sym) minus metric (Spearman)" in stdout
    assert "cec: cec:" in stdout  # the signature

    doc = json.loads((out / "meta_eval.json").read_text())
    assert doc["format"] == "cec-distill-meta-eval/1"
    assert doc["n"] == 12 and doc["n_items"] == 4 and doc["seed"] == 0
    assert doc["n_bootstrap"] == 200 and doc["n_permutations"] == 200
    assert doc["versions"]["scipy"] == __import__("scipy").__version__
    assert doc["signatures"]["cec"].startswith("cec:") and "rouge1" in doc["signatures"]
    assert set(doc["versions"]) >= {"cec", "numpy", "scipy", "python"}
    assert "swapped per item" in doc["permutation"]

    # the figures are scipy's on the per-row scores written beside them
    with (out / "scores.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 12 and rows[0]["id"] == "warming"
    h = np.array([float(r["human.quality"]) for r in rows])
    for col in ("cec", "cec_forward", "rouge1", "bleu"):
        x = np.array([float(r[col]) for r in rows])
        got = next(r for r in doc["results"] if r["rating"] == "human.quality"
                   and r["metric"] == col)  # fmt: skip
        assert got["spearman"]["value"] == pytest.approx(sps.spearmanr(x, h)[0], abs=1e-5)
        assert got["pearson"]["value"] == pytest.approx(sps.pearsonr(x, h)[0], abs=1e-5)
    # CEC agrees with these ratings: good explanations were written to match the references
    cec_row = next(r for r in doc["results"] if r["rating"] == "human.quality"
                   and r["metric"] == "cec")  # fmt: skip
    assert cec_row["spearman"]["value"] > 0.5

    with (out / "meta_eval.csv").open() as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == 2 * 5 * 3  # ratings x metrics x statistics
    assert {r["p_value"] for r in table if r["metric"] == "cec"} == {""}
    assert all(0 < float(r["p_value"]) <= 1 for r in table if r["metric"] != "cec")
    assert (out / "meta_eval.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "meta_eval.md").read_text().strip() in stdout

    # a second run reuses the saved scores (an edited cached score shows up), --force recomputes
    cache = json.loads((out / "scores_cache.json").read_text())
    cache["metrics"]["bleu"]["columns"]["bleu"][0] = 0.123456
    (out / "scores_cache.json").write_text(json.dumps(cache))
    rc, _, err = _run([*argv, "--no-plot"], capsys)
    assert rc == 0, err
    with (out / "scores.csv").open() as fh:
        assert next(csv.DictReader(fh))["bleu"] == "0.123456"
    # the same options under another setup (a signature of other splitter rules, as after an
    # upgrade)
    # never reuse the saved CEC scores: they are computed again under the new signature
    cache = json.loads((out / "scores_cache.json").read_text())
    cache["metrics"]["cec"]["columns"]["cec"][0] = 0.654321
    (out / "scores_cache.json").write_text(json.dumps(cache))
    from cec_distill.metrics.cec import CECEvalMetric

    monkeypatch.setattr(CECEvalMetric, "signature", property(lambda self: "cec:9.9|seg:cec-9"))
    rc, _, err = _run([*argv, "--no-plot", "--metrics", "cec", "--against", "none"], capsys)
    assert rc == 0, err
    with (out / "scores.csv").open() as fh:
        assert next(csv.DictReader(fh))["cec"] != "0.654321"
    assert "cec:9.9|seg:cec-9" in (out / "meta_eval.json").read_text()
    monkeypatch.undo()
    rc, _, err = _run([*argv, "--no-plot", "--force", "--metrics", "bleu", "--against", "none"],
                      capsys)  # fmt: skip
    assert rc == 0, err
    with (out / "scores.csv").open() as fh:
        assert next(csv.DictReader(fh))["bleu"] != "0.123456"


def test_csv_with_two_reference_columns(tmp_path, capsys):
    path = tmp_path / "rated.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["explanation", "ref_a", "ref_b", "score"])
        for _item, ref, outputs in ITEMS:
            for gen, quality, _ in outputs:
                w.writerow([gen, ref, "An unrelated second reference.", quality])
    rc, stdout, err = _run(
        ["meta-eval", str(path), "--human", "score", "--generated-field", "explanation",
         "--references-field", "ref_a", "--references-field", "ref_b", "--metrics", "rouge1,bleu",
         "--against", "bleu", "--bootstrap", "50", "--permutations", "50"], capsys,
    )  # fmt: skip
    assert rc == 0, err
    assert "score (n = 12 rows)" in stdout and "BLEU minus metric (Spearman)" in stdout
    assert "nrefs:2" in stdout  # both references reached the metric


def test_llm_judge_as_a_meta_eval_metric_sees_each_rows_context(tmp_path, capsys):
    """`--metrics cec,llm_judge` through the fake OpenAI server: the judge is given each row's
    premise, its grade is correlated like any metric, and its records make a re-run free."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from fake_openai import FakeOpenAI

    quality = {gen: q for _item, _ref, outputs in ITEMS for gen, q, _ in outputs}
    seen: list[str] = []

    def grade(messages):
        prompt = "\n".join(str(m.get("content", "")) for m in messages)
        seen.append(prompt)
        gen = next(g for g in quality if g in prompt)
        return f"Score: {quality[gen]}\nReason: graded by the test."

    path = tmp_path / "rated.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for item, ref, outputs in ITEMS:
            for gen, q, _ in outputs:
                rec = {"item": item, "generated": gen, "references": [ref],
                       "premise": f"Premise of {item}.", "quality": q}  # fmt: skip
                fh.write(json.dumps(rec) + "\n")
    with FakeOpenAI(answer=grade) as srv:
        argv = ["meta-eval", str(path), "--human", "quality", "--id-field", "item",
                "--metrics", "cec,llm_judge", "--out", str(tmp_path / "out"), "--no-plot",
                "--metric-option", "judge_model=judge-m",
                "--metric-option", f"judge_base_url={srv.base_url}",
                "--metric-option", f"judge_records={tmp_path / 'judge.jsonl'}",
                "--bootstrap", "200", "--permutations", "99"]  # fmt: skip
        rc, stdout, err = _run(argv, capsys)
        assert rc == 0, err
        assert len(seen) == 12
        for item, _ref, outputs in ITEMS:
            for gen, _q, _ in outputs:
                prompt = next(p for p in seen if gen in p)
                assert f"[Premise]: Premise of {item}." in prompt
        doc = json.loads((tmp_path / "out" / "meta_eval.json").read_text())
        judge = next(r for r in doc["results"] if r["metric"] == "llm_judge")
        assert judge["spearman"]["value"] == pytest.approx(1.0)
        assert "llm_judge" in stdout and "judge-m" in doc["signatures"]["llm_judge"]
        rc, _, err = _run([*argv, "--force"], capsys)  # scores recomputed, judge records reused
        assert rc == 0, err
        assert len(seen) == 12
