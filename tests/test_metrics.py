"""Baseline metrics: known values on identical, disjoint and hand-checked texts; offline."""

from __future__ import annotations

import json
import math
import re
import socket

import numpy as np
import pytest

from cec_distill import metrics as M
from cec_distill.evaluate import compare_pairs, compare_results, evaluate_files, read_pairs

IDENTICAL = "the cat sat on the mat"


@pytest.fixture(scope="module", autouse=True)
def no_network():
    """Every test here runs with sockets disabled: the metrics must be fully offline."""

    def refuse(*args, **kwargs):
        raise OSError("network access attempted during an offline test")

    mp = pytest.MonkeyPatch()
    mp.setattr(socket.socket, "connect", refuse)
    mp.setattr(socket.socket, "connect_ex", refuse)
    mp.setattr(socket, "create_connection", refuse)
    mp.setattr(socket, "getaddrinfo", refuse)
    yield
    mp.undo()


@pytest.fixture(scope="module")
def bert():
    return M.get_metric("bertscore", device="cpu")


def one(metric: str, gen: str, ref, **opts) -> float:
    return float(M.evaluate([gen], [ref], [metric], **opts).items[metric][0])


# --------------------------------------------------------------------------------------------
# lexical metrics
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("metric", ["bleu", "rouge1", "rouge2", "rougeL"])
def test_identical_texts_score_one(metric):
    assert one(metric, IDENTICAL, IDENTICAL) == pytest.approx(1.0)


@pytest.mark.parametrize("metric", ["bleu", "rouge1", "rouge2", "rougeL", "meteor"])
def test_disjoint_texts_score_zero(metric):
    assert one(metric, "purple elephants dance wildly", "quantum ledger audits overnight") == 0.0


def test_bleu_hand_checked():
    # p1 = 7/8, p2 = 4/7, p3 = 2/6, p4 = 1/5; BP = exp(1 - 9/8)
    gen, ref = (
        "the quick brown fox jumps over the dog",
        "the quick brown fox jumped over the lazy dog",
    )
    expected = math.exp(1 - 9 / 8) * (7 / 8 * 4 / 7 * 2 / 6 * 1 / 5) ** 0.25
    res = M.evaluate([gen], [ref], ["bleu"])
    assert res.items["bleu"][0] == pytest.approx(expected, abs=1e-6)
    assert res.corpus.loc["bleu", "score"] == pytest.approx(expected, abs=1e-6)
    assert "scale:0-1" in res.signatures["bleu"] and "tok:13a" in res.signatures["bleu"]


def test_bleu_corpus_is_corpus_bleu_not_mean():
    gens = ["the quick brown fox jumps over the dog", "a b c d e"]
    refs = ["the quick brown fox jumped over the lazy dog", "a b c d e"]
    res = M.evaluate(gens, refs, ["bleu"])
    from sacrebleu import corpus_bleu

    assert res.corpus.loc["bleu", "score"] == pytest.approx(corpus_bleu(gens, [refs]).score / 100)
    assert res.corpus.loc["bleu", "score"] != pytest.approx(res.items["bleu"].mean())


def test_rouge_hand_checked_and_stemmed():
    gen, ref = "the cat sat on the mat", "the cat lay on the rug"
    res = M.evaluate([gen], [ref], ["rouge1", "rouge2", "rougeL"]).items
    assert res["rouge1"][0] == pytest.approx(4 / 6)  # the x2, cat, on
    assert res["rouge2"][0] == pytest.approx(2 / 5)  # "the cat", "on the"
    assert res["rougeL"][0] == pytest.approx(4 / 6)  # LCS "the cat on the"
    assert one("rouge1", "cats running", "cat runs") == pytest.approx(1.0)  # Porter stemming


def test_rouge_multiple_references_take_the_best():
    gen = "the cat sat on the mat"
    refs = ["a dog barked", "the cat sat on a mat", "nothing here"]
    best = max(one("rougeL", gen, r) for r in refs)
    assert one("rougeL", gen, refs) == pytest.approx(best)
    assert best < 1


def test_meteor_identical_and_fragmentation_penalty():
    # identical n tokens: one chunk, penalty 0.5 * (1/n)^3
    assert one("meteor", IDENTICAL, IDENTICAL) == pytest.approx(1 - 0.5 / 6**3)
    # all four words match in two chunks: penalty 0.5 * (2/4)^3
    assert one("meteor", "red cats eat fish", "eat fish red cats") == pytest.approx(0.9375)


def test_meteor_uses_wordnet_synonyms():
    # "hound" ~ "dog" only through WordNet synsets: 3 matches in one chunk
    assert one("meteor", "the hound barked", "the dog barked") == pytest.approx(1 - 0.5 / 27)
    sig = M.get_metric("meteor").signature
    assert "wordnet:3.0" in sig and "tok:wordpunct,lower" in sig


# --------------------------------------------------------------------------------------------
# BERTScore
# --------------------------------------------------------------------------------------------
def test_bertscore_identical_disjoint_and_signature(bert):
    texts = [IDENTICAL, "the cat sat on the mat", "stock markets fell sharply today"]
    refs = [IDENTICAL, "a cat was sitting on the rug", "the kitten slept on a cushion"]
    out = bert.compute(texts, refs).columns
    assert out["bertscore"][0] == pytest.approx(1.0, abs=1e-4)
    assert out["bertscore_p"][0] == pytest.approx(1.0, abs=1e-4)
    assert out["bertscore"][1] > out["bertscore"][2]  # paraphrase above unrelated
    sig = bert.signature
    for part in (
        "model:all-MiniLM-L6-v2@",
        "trunc:512",
        "layer:5",
        "idf:no",
        "rescale:no",
        "bert-score:",
    ):
        assert part in sig


def test_bertscore_labels_its_model_with_cecs_identity_scheme(bert):
    """Issue 25.7: one `cec-distill evaluate` result labelled the MiniLM `@53aa5117` (the
    weights file's sha256) for BERTScore and `@63e71cc4` (cec's identity of every file that
    defines the embedding, with the truncation) for CEC. Both now come from cec.models'
    identity: the same model read at the same truncation gets the same label."""
    import cec
    from cec.models import default_model_dir, model_identity, weights_file

    folder = default_model_dir()
    scorer = _bert_scorer_of(bert)
    assert bert.truncation == scorer._tokenizer.model_max_length == 512  # what bert-score reads
    label = re.search(r"\|model:([^|]+)\|", bert.signature).group(1)
    assert label == f"all-MiniLM-L6-v2@{model_identity(folder, weights_file(folder), 512)[:8]}"
    cec_scorer = cec.CEC(device="cpu")
    assert cec_scorer.signature.weights == model_identity(folder, weights_file(folder), 256)[:8]
    cec_scorer.encoder.model.max_seq_length = 512  # CEC reading 512 tokens, as bert-score does
    assert f"{cec_scorer.signature.model}@{cec_scorer.signature.weights}" == label
    assert "53aa5117" not in bert.signature  # the weights-only hash is gone


def _bert_scorer_of(metric):
    from cec_distill.metrics.bertscore import _bert_scorer

    return _bert_scorer(metric.model, metric.layer, metric.device, metric.batch_size, False)


def test_bertscore_matches_hand_computation_at_layer_5(bert):
    """Greedy token matching on hidden layer 5 of the MiniLM, computed here with transformers."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    cand, ref = "the cat sat on the mat", "a cat was sitting on the rug"
    tok = AutoTokenizer.from_pretrained(bert.model)
    model = AutoModel.from_pretrained(bert.model).eval()

    def by_hand(layer):
        def emb(text):
            ids = tok(text, return_tensors="pt")
            with torch.no_grad():
                h = model(**ids, output_hidden_states=True).hidden_states[layer][0, 1:-1]
            return torch.nn.functional.normalize(h, dim=-1)  # CLS/SEP dropped (idf weight 0)

        sim = emb(cand) @ emb(ref).T
        return sim.max(dim=1).values.mean().item(), sim.max(dim=0).values.mean().item()

    p, r = by_hand(5)
    out = bert.compute([cand], [ref]).columns
    # bert-score pads the batch, which moves fp32 results by ~1e-4
    assert out["bertscore_p"][0] == pytest.approx(p, abs=1e-3)
    assert out["bertscore_r"][0] == pytest.approx(r, abs=1e-3)
    assert out["bertscore"][0] == pytest.approx(2 * p * r / (p + r), abs=1e-3)
    for other in (4, 6):  # and the check can tell layers apart
        assert abs(by_hand(other)[1] - r) > 5e-3


def test_bertscore_empty_texts_score_zero(bert):
    out = bert.compute(["", "a cat"], ["a cat", ["", "a cat"]]).columns["bertscore"]
    assert out[0] == 0.0 and out[1] == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("bertscore_layer", -1, "bertscore_layer must be a non-negative int, got -1"),
        ("bertscore_layer", True, "bertscore_layer must be a non-negative int, got True"),
        ("bertscore_batch_size", 0, "bertscore_batch_size must be a positive integer, got 0"),
    ],
)
def test_bertscore_integer_options_are_checked_naming_the_option(option, value, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        M.get_metric("bertscore", device="cpu", **{option: value})


def test_bertscore_unavailable_model_fails_clearly(tmp_path):
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache("roberta-large", "config.json"), str):
        pytest.skip("roberta-large is cached here")
    with pytest.raises(FileNotFoundError, match="roberta-large.*not in the local"):
        M.get_metric("bertscore", bertscore_model="roberta-large")
    with pytest.raises(FileNotFoundError, match="config.json"):
        M.get_metric("bertscore", bertscore_model=str(tmp_path))


# --------------------------------------------------------------------------------------------
# CEC and evaluate()
# --------------------------------------------------------------------------------------------
def test_cec_column_equals_cec_score(scorer):
    gens = ["CO2 traps heat. The planet warms.", "Ice melts.", "Oceans warm."]
    refs = [
        ["The planet warms. CO2 traps heat."],
        ["Sea levels rise.", "Ice is melting."],
        "Seas heat up.",
    ]
    res = M.evaluate(gens, refs, ["cec"], scorer=scorer)
    direct = scorer.score(gens, [r if isinstance(r, list) else [r] for r in refs])
    np.testing.assert_allclose(res.items["cec"], direct.sym, atol=1e-6)
    np.testing.assert_allclose(res.items["cec_forward"], direct.forward, atol=1e-6)
    assert res.items["cec"][0] == pytest.approx(1.0, abs=1e-5)
    assert res.signatures["cec"].startswith("cec:")
    assert res.corpus.loc["cec", "score"] == pytest.approx(direct.mean)


def test_evaluate_all_metrics_tables(scorer, tmp_path):
    gens = [IDENTICAL, "the dog barked at the mailman", "completely unrelated words"]
    refs = [[IDENTICAL], ["a dog was barking at the postman", "dogs bark"], "the cat sat"]
    res = M.evaluate(gens, refs, ids=["a", "b", "c"], system="toy", scorer=scorer, device="cpu")
    assert list(res.items["id"]) == ["a", "b", "c"]
    assert set(M.DEFAULT_METRICS) <= set(res.corpus.index)
    assert set(res.signatures) == set(M.DEFAULT_METRICS)
    for col in res.corpus.index:
        assert res.corpus.loc[col, "n"] == 3
        assert res.corpus.loc[col, "mean"] == pytest.approx(res.items[col].mean())
        assert res.items[col][0] >= res.items[col][2]
    path = res.save(tmp_path / "r.json", csv=True)
    back = M.load_results(path)
    assert back.system == "toy" and back.signatures == res.signatures
    np.testing.assert_allclose(back.items["cec"], res.items["cec"])
    assert (tmp_path / "r.items.csv").is_file() and (tmp_path / "r.corpus.csv").is_file()


def test_bad_input_fails_before_loading():
    with pytest.raises(ValueError, match="unknown metric 'blue'"):
        M.evaluate(["a"], ["a"], ["blue"])
    with pytest.raises(ValueError, match="must match"):
        M.evaluate(["a", "b"], ["a"], ["bleu"])
    with pytest.raises(TypeError, match=r"generated\[1\]"):
        M.evaluate(["a", None], ["a", "b"], ["bleu"])
    with pytest.raises(ValueError, match=r"references\[0\] is an empty list"):
        M.evaluate(["a"], [[]], ["bleu"])
    with pytest.raises(TypeError, match="references"):
        M.evaluate(["a"], "a", ["bleu"])


def test_evaluate_files_and_compare(tmp_path):
    rows = [
        {
            "id": f"x{i}",
            "generated": f"the cat number {i} sat on a mat" + " today" * (i % 4),
            "references": [f"the cat {i} sat on the mat"],
        }
        for i in range(30)
    ]
    src = tmp_path / "pairs.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ids, gens, refs = read_pairs(src)
    assert ids[0] == "x0" and refs[0] == ["the cat 0 sat on the mat"]
    res = evaluate_files(src, tmp_path / "out" / "r.json", metrics="rouge1,bleu", system="s")
    assert (tmp_path / "out" / "r.items.csv").is_file()
    full = compare_results(tmp_path / "out" / "r.json", "rouge1", "bleu", k=10, seed=3)
    direct = compare_pairs(gens, refs, "rouge1", "bleu", k=10, seed=3)
    assert full.indices == sorted(full.indices) and len(full.indices) == 10
    assert direct.indices == full.indices
    assert full.mean_a == pytest.approx(direct.mean_a) and full.ttest.statistic == pytest.approx(
        direct.ttest.statistic
    )
    assert res.corpus.loc["rouge1", "n"] == 30


def test_a_misspelt_option_is_refused_before_anything_loads():
    from cec_distill.metrics import CECEvalMetric, evaluate, get_metric

    with pytest.raises(
        ValueError,
        match=r"unknown metric option 'bertscore_modle' \(did you mean 'bertscore_model'\?\)",
    ):
        evaluate(["a b c."], ["a b c."], metrics=["bleu", "bertscore"], bertscore_modle="x")
    with pytest.raises(ValueError, match="unknown metric option 'cec_option'"):
        get_metric("cec", cec_option={})
    # an option of another metric is fine: evaluate passes every option to every metric
    assert get_metric("bleu", bertscore_layer=3).name == "bleu"
    assert isinstance(get_metric("cec", cec_options={"empty": "nan"}), CECEvalMetric)
