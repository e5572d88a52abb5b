"""cec_distill.data: loaders (real Climate-FEVER and e-SNLI files), the split, instance files."""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cec_distill.data import (
    Evidence,
    Instance,
    load_climate_fever,
    load_esnli,
    load_instances,
    read_instances,
    split,
    write_instances,
)

EVIDENCE_LABELS = {"SUPPORTS", "REFUTES", "NOT_ENOUGH_INFO"}


def _cf_record(claim_id, claim="Seas are rising.", label="SUPPORTS", ev_label="SUPPORTS"):
    return {
        "claim_id": claim_id,
        "claim": claim,
        "claim_label": label,
        "evidences": [
            {
                "evidence_id": f"A:{k}",
                "evidence_label": ev_label,
                "article": f"Article {k}",
                "evidence": f"Fact {k}.",
            }
            for k in range(5)
        ],
    }


def _write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _instances(labels):
    return [
        Instance(f"x:{i}", "climate-fever", f"claim {i}", (Evidence(f"e{i}", "SUPPORTS"),), lab)
        for i, lab in enumerate(labels)
    ]


# ----------------------------------------------------------------------------- real data


def test_real_climate_fever_loads_every_claim(shared_data):
    insts = load_climate_fever(shared_data / "climate-fever" / "climate-fever.jsonl")
    assert len(insts) == 1535
    assert Counter(i.label for i in insts) == {
        "SUPPORTS": 654,
        "NOT_ENOUGH_INFO": 474,
        "REFUTES": 253,
        "DISPUTED": 154,
    }
    assert len({i.id for i in insts}) == 1535
    assert all(len(i.evidence) == 5 for i in insts)
    assert all(
        ev.label in EVIDENCE_LABELS and ev.text and ev.article for i in insts for ev in i.evidence
    )
    first = insts[0]
    assert first.id == "climate-fever:0"
    assert first.claim == "Global warming is driving polar bears toward extinction"
    assert first.evidence[3].article == "Habitat destruction"
    # the directory form and the sniffing loader give the same instances
    assert load_instances(shared_data / "climate-fever") == insts


def test_real_climate_fever_split_is_stratified(shared_data):
    insts = load_climate_fever(shared_data / "climate-fever")
    parts = split(insts, seed=13)
    sizes = {k: len(v) for k, v in parts.items()}
    assert sum(sizes.values()) == 1535
    assert abs(sizes["train"] - 0.8 * 1535) <= 4 and abs(sizes["test"] - 0.1 * 1535) <= 4
    total = Counter(i.label for i in insts)
    for name, frac in (("train", 0.8), ("validation", 0.1), ("test", 0.1)):
        got = Counter(i.label for i in parts[name])
        for label, n in total.items():
            assert abs(got[label] - n * frac) <= 1, (name, label)


def test_real_esnli_loads_with_three_explanations(shared_data):
    insts = load_esnli(shared_data / "esnli" / "esnli_dev_3expl.jsonl")
    assert len(insts) == 9842
    assert insts[0].id == "esnli:dev:0"
    assert {i.label for i in insts} == {"entailment", "neutral", "contradiction"}
    assert all(len(i.explanations) == 3 for i in insts)
    assert all(len(i.evidence) == 1 and i.evidence[0].label == "premise" for i in insts)
    assert insts[1].claim == "Two woman are holding packages ."
    assert insts[1].premise == "Two women are embracing while holding to go packages ."
    both = load_instances(shared_data / "esnli")  # dev + test, ids kept apart by split name
    assert len(both) == 9842 + 9824 and len({i.id for i in both}) == len(both)


# ----------------------------------------------------------------------------- own fixtures


def test_instance_round_trip_and_immutability():
    inst = Instance(
        "esnli:dev:7",
        "esnli",
        "A man sleeps.",
        [Evidence("A man naps.", "premise")],
        "entailment",
        ["napping is sleeping"],
    )
    assert isinstance(inst.evidence, tuple) and isinstance(inst.explanations, tuple)
    assert Instance.from_dict(json.loads(json.dumps(inst.to_dict()))) == inst
    assert hash(inst) == hash(Instance.from_dict(inst.to_dict()))
    with pytest.raises(AttributeError):
        inst.label = "neutral"  # type: ignore[misc]
    with pytest.raises(ValueError, match="id"):
        Instance("", "esnli", "c", (), "x")
    with pytest.raises(TypeError, match="Evidence"):
        Instance("a", "esnli", "c", ("not evidence",), "x")


def test_climate_fever_file_and_hf_style_integer_labels(tmp_path):
    rec = _cf_record(3, label=1, ev_label=2)  # HF class indices: REFUTES, NOT_ENOUGH_INFO
    path = _write_jsonl(tmp_path / "cf.jsonl", [_cf_record("1"), rec])
    insts = load_instances(path)
    assert [i.id for i in insts] == ["climate-fever:1", "climate-fever:3"]
    assert insts[1].label == "REFUTES" and insts[1].evidence[0].label == "NOT_ENOUGH_INFO"
    assert insts[0].evidence[4] == Evidence("Fact 4.", "SUPPORTS", "Article 4")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"claim_id": "1", "claim": "x"\n', r"cf\.jsonl:1: not valid JSON"),
        (
            json.dumps({"claim_id": "1", "claim": "x", "claim_label": "SUPPORTS"}) + "\n",
            "lacks field 'evidences'",
        ),
        (
            json.dumps(_cf_record("1")) + "\n" + json.dumps(_cf_record("1")) + "\n",
            "duplicate instance id",
        ),
        (json.dumps(_cf_record("1", label=9)) + "\n", "out of range"),
    ],
)
def test_bad_climate_fever_files_name_the_problem(tmp_path, content, message):
    path = tmp_path / "cf.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_climate_fever(path)


def test_load_instances_rejects_unknown_and_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="--data"):
        load_instances(tmp_path / "absent.jsonl")
    odd = _write_jsonl(tmp_path / "odd.jsonl", [{"text": "hello"}])
    with pytest.raises(ValueError, match="cannot tell the format"):
        load_instances(odd)


def test_esnli_csv_form(tmp_path):
    path = tmp_path / "esnli_test.csv"
    path.write_text(
        "pairID,gold_label,Sentence1,Sentence2,Explanation_1,Explanation_2\n"
        "p1,contradiction,A dog runs.,A cat sleeps.,a dog is not a cat,running is not sleeping\n",
        encoding="utf-8",
    )
    (inst,) = load_instances(path)
    assert inst.id == "esnli:test:p1"
    assert inst.claim == "A cat sleeps." and inst.premise == "A dog runs."
    assert inst.explanations == ("a dog is not a cat", "running is not sleeping")


def test_hf_path_errors_clearly_without_datasets():
    with pytest.raises(ValueError, match="not both"):
        load_climate_fever("x.jsonl", hf=True)
    try:
        import datasets  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install datasets"):
            load_climate_fever(hf=True)
    else:
        pytest.skip("datasets is installed; the no-datasets error branch is not reachable")


def test_write_and_read_instances(tmp_path):
    insts = _instances(["SUPPORTS", "REFUTES"]) + [
        Instance("e:1", "esnli", "h", (Evidence("p", "premise"),), "neutral", ("a", "b"))
    ]
    path = write_instances(insts, tmp_path / "sub" / "train.jsonl")
    assert read_instances(path) == insts
    assert load_instances(path) == insts  # the sniffing loader recognises instance files
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp file left


# ----------------------------------------------------------------------------- split


def test_split_is_deterministic_and_order_independent():
    insts = _instances(["SUPPORTS"] * 40 + ["REFUTES"] * 30 + ["DISPUTED"] * 7)
    a = split(insts, seed=1)
    shuffled = insts[:]
    random.Random(5).shuffle(shuffled)
    b = split(shuffled, seed=1)
    assert {k: {i.id for i in v} for k, v in a.items()} == {
        k: {i.id for i in v} for k, v in b.items()
    }
    assert [i.id for i in a["train"]] == [
        i.id for i in insts if i in set(a["train"])
    ]  # input order kept
    c = split(insts, seed=2)
    assert {i.id for i in c["test"]} != {i.id for i in a["test"]}


def test_split_without_stratification_and_bad_arguments():
    insts = _instances(["A"] * 50 + ["B"] * 50)
    parts = split(insts, seed=0, fractions=(0.5, 0.25, 0.25), stratify=False)
    assert [len(parts[k]) for k in ("train", "validation", "test")] == [50, 25, 25]
    with pytest.raises(ValueError, match="fractions"):
        split(insts, fractions=(0.8, 0.3, 0.1))
    with pytest.raises(ValueError, match="fractions"):
        split(insts, fractions=(0.8, 0.2))
    with pytest.raises(TypeError, match="seed"):
        split(insts, seed="1")
    with pytest.raises(ValueError, match="duplicate"):
        split(insts + insts[:1])


@settings(max_examples=40, deadline=None)
@given(
    counts=st.lists(st.integers(min_value=0, max_value=30), min_size=1, max_size=4),
    seed=st.integers(min_value=0, max_value=10**6),
)
def test_split_partitions_each_label_by_rounded_fractions(counts, seed):
    labels = [f"L{k}" for k, n in enumerate(counts) for _ in range(n)]
    insts = _instances(labels)
    parts = split(insts, seed=seed)
    ids = [i.id for p in parts.values() for i in p]
    assert sorted(ids) == sorted(i.id for i in insts)  # a partition: nothing lost, nothing twice
    for k, n in enumerate(counts):
        lab = f"L{k}"
        n_train = sum(i.label == lab for i in parts["train"])
        n_val = sum(i.label == lab for i in parts["validation"])
        assert n_train == round(n * 0.8)
        assert n_val == min(n - n_train, round(n * 0.1))
