"""Metrics against hand-computed values, and the BEIR / SciFact loaders on small written files."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from index.errors import PersonaeError
from search.evaluate import (
    evaluate,
    format_table,
    load_beir,
    load_beir_corpus,
    load_qrels,
    load_queries,
    parse_sentence_list,
    per_query,
    query_metrics,
    run_from_results,
)
from tests.conftest import shared_path

L3, L5 = math.log2(3), math.log2(5)

QRELS = {
    "q1": {"d1": 1, "d2": 1},
    "q2": {"d3": 2, "d4": 1},
    "q3": {"d5": 1},  # no run: counts as 0
    "q4": {"d6": 0},  # nothing relevant: not evaluable, left out of the mean
}
RUN = {
    "q1": {"d9": 0.9, "d1": 0.8, "d7": 0.7, "d2": 0.6},
    "q2": {"d4": 0.9, "d3": 0.5},
    "q4": {"d6": 1.0},
    "qX": {"d1": 1.0},  # not in qrels: ignored
}
# q1: relevant at ranks 2 and 4.  q2: grade 1 at rank 1, grade 2 at rank 2 (ideal is the reverse).
NDCG_Q1 = (1 / L3 + 1 / L5) / (1 + 1 / L3)
NDCG_Q2 = (1 + 2 / L3) / (2 + 1 / L3)


def test_per_query_hand_computed() -> None:
    rows = per_query(QRELS, RUN)
    assert set(rows) == {"q1", "q2", "q3"}
    assert rows["q1"] == pytest.approx({"ndcg@10": NDCG_Q1, "recall@100": 1.0, "mrr@10": 0.5})
    assert rows["q2"] == pytest.approx({"ndcg@10": NDCG_Q2, "recall@100": 1.0, "mrr@10": 1.0})
    assert rows["q3"] == {"ndcg@10": 0.0, "recall@100": 0.0, "mrr@10": 0.0}


def test_evaluate_means_over_judged_queries() -> None:
    assert evaluate(QRELS, RUN) == pytest.approx(
        {"ndcg@10": (NDCG_Q1 + NDCG_Q2) / 3, "recall@100": 2 / 3, "mrr@10": (0.5 + 1.0) / 3}
    )


def test_perfect_and_empty_runs() -> None:
    perfect = {"q1": {"d1": 2.0, "d2": 1.0}, "q2": {"d3": 2.0, "d4": 1.0}, "q3": {"d5": 1.0}}
    assert evaluate(QRELS, perfect) == pytest.approx({"ndcg@10": 1.0, "recall@100": 1.0, "mrr@10": 1.0})
    assert evaluate(QRELS, {}) == {"ndcg@10": 0.0, "recall@100": 0.0, "mrr@10": 0.0}
    assert evaluate({}, RUN) == {"ndcg@10": 0.0, "recall@100": 0.0, "mrr@10": 0.0}


def test_cutoffs() -> None:
    judged = {"rel": 1}
    scores = {f"x{i:02d}": 1.0 - i / 100 for i in range(12)} | {"rel": 0.5}  # rel ranked 13th
    assert query_metrics(judged, scores) == {"ndcg@10": 0.0, "recall@100": 1.0, "mrr@10": 0.0}
    m = query_metrics(judged, scores, ndcg_k=20, recall_k=5, mrr_k=20)
    assert m == pytest.approx({"ndcg@20": 1 / math.log2(14), "recall@5": 0.0, "mrr@20": 1 / 13})
    # A partially found relevant set.
    assert query_metrics({"a": 1, "b": 1, "c": 1, "d": 1}, {"a": 1.0, "z": 0.5})["recall@100"] == 0.25


def test_ties_follow_trec_eval_doc_id_descending() -> None:
    assert query_metrics({"dA": 1}, {"dA": 1.0, "dB": 1.0})["mrr@10"] == 0.5
    assert query_metrics({"dB": 1}, {"dA": 1.0, "dB": 1.0})["mrr@10"] == 1.0


def test_run_from_results() -> None:
    run = run_from_results({"q1": [("d1", 3), ("d2", 2.5), ("d1", 1.0)]})
    assert run == {"q1": {"d1": 3.0, "d2": 2.5}}


def test_format_table() -> None:
    table = format_table(
        {"keyword": {"ndcg@10": 0.5, "mrr@10": 0.25}, "vector": {"ndcg@10": 0.66666, "recall@100": 1.0}}
    )
    lines = table.splitlines()
    assert lines[0].split() == ["leg", "ndcg@10", "mrr@10", "recall@100"]
    assert lines[1].split() == ["keyword", "0.5000", "0.2500", "-"]
    assert lines[2].split() == ["vector", "0.6667", "-", "1.0000"]
    assert len({len(line) for line in lines}) == 1  # aligned columns


def test_load_qrels(tmp_path: Path) -> None:
    beir = tmp_path / "train.tsv"
    beir.write_text("query-id\tcorpus-id\tscore\n1\t10\t1\n1\t11\t2\n2\t10\t0\n\n", encoding="utf-8")
    assert load_qrels(beir) == {"1": {"10": 1, "11": 2}, "2": {"10": 0}}
    trec = tmp_path / "trec.txt"
    trec.write_text("1 0 10 1\n2 0 12 3\n", encoding="utf-8")
    assert load_qrels(trec) == {"1": {"10": 1}, "2": {"12": 3}}
    bad = tmp_path / "bad.tsv"
    bad.write_text("query-id\tcorpus-id\tscore\n1\t10\thigh\n", encoding="utf-8")
    with pytest.raises(PersonaeError, match="bad.tsv:2"):
        load_qrels(bad)
    with pytest.raises(PersonaeError, match="cannot read"):
        load_qrels(tmp_path / "missing.tsv")


def test_load_queries(tmp_path: Path) -> None:
    path = tmp_path / "queries.jsonl"
    path.write_text('{"_id": "0", "text": "first?", "metadata": {}}\n\n{"_id": 7, "text": "second"}\n')
    assert load_queries(path) == {"0": "first?", "7": "second"}
    path.write_text('{"_id": "0"}\n')
    with pytest.raises(PersonaeError, match="queries.jsonl:1"):
        load_queries(path)


# Verbatim shape of SciFact's abstract column: numpy-printed, no commas, quote style varies per item.
ABSTRACT = """['BACKGROUND It works.   \\n'
 "It's the patients' view."
 'She said "no" and \\'yes\\'.'
 '1.4 +/-'
 '0.24 versus 1.15.']"""


def test_parse_sentence_list() -> None:
    assert parse_sentence_list(ABSTRACT) == [
        "BACKGROUND It works.",
        "It's the patients' view.",
        "She said \"no\" and 'yes'.",
        "1.4 +/-",
        "0.24 versus 1.15.",
    ]
    assert parse_sentence_list("[]") == []
    assert parse_sentence_list("plain text") == ["plain text"]


def test_load_scifact_csv(tmp_path: Path) -> None:
    path = tmp_path / "corpus_train.csv"
    rows = [
        "doc_id,title,abstract,structured",
        '4983,A title.,"' + ABSTRACT.replace('"', '""') + '",False',
        "7,Other,\"['One.'\n 'Two.']\",True",
    ]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    docs = load_beir_corpus(path)
    assert docs[0] == {
        "id": "4983",
        "title": "A title.",
        "text": "BACKGROUND It works. It's the patients' view. She said \"no\" and 'yes'. "
        "1.4 +/- 0.24 versus 1.15.",
    }
    assert docs[1] == {"id": "7", "title": "Other", "text": "One. Two."}


def test_load_beir_jsonl_and_folder(tmp_path: Path) -> None:
    (tmp_path / "corpus.jsonl").write_text(
        '{"_id": "d1", "title": "T1", "text": "Body one."}\n{"_id": "d2", "text": "Body two."}\n',
        encoding="utf-8",
    )
    (tmp_path / "queries.jsonl").write_text('{"_id": "q1", "text": "body"}\n', encoding="utf-8")
    (tmp_path / "qrels").mkdir()
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td2\t1\n", encoding="utf-8")
    expected = [
        {"id": "d1", "title": "T1", "text": "Body one."},
        {"id": "d2", "title": "", "text": "Body two."},
    ]
    assert load_beir_corpus(tmp_path / "corpus.jsonl") == expected
    assert load_beir_corpus(tmp_path) == expected
    corpus, queries, qrels = load_beir(tmp_path)
    assert corpus == expected and queries == {"q1": "body"} and qrels == {"q1": {"d2": 1}}
    (tmp_path / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n", encoding="utf-8")
    assert load_beir(tmp_path)[2] == {"q1": {"d2": 1}}  # several splits: test by default
    assert load_beir(tmp_path, "dev")[2] == {"q1": {"d1": 1}}
    with pytest.raises(PersonaeError, match="'train' not found"):
        load_beir(tmp_path, "train")
    with pytest.raises(PersonaeError, match="not found"):
        load_beir_corpus(tmp_path / "nope.jsonl")


def test_real_scifact_loads() -> None:
    corpus, queries, qrels = load_beir(shared_path("data", "scifact-dev"))
    assert len(corpus) == 5183
    assert all(d["id"] and d["text"] for d in corpus)
    assert all("['" not in d["text"] and "'\n '" not in d["text"] for d in corpus)
    assert len(qrels) == 809 and all(q in queries for q in qrels)
