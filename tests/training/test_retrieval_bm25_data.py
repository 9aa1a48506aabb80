"""Fast unit tests of BM25, fusion, evaluation helpers and the data loaders."""

from __future__ import annotations

import json

import numpy as np
import pytest

from model_building.training.bm25 import BM25, analyze, stem
from model_building.training.data import (
    load_beir,
    restrict_docs,
    self_supervised_pairs,
    sentences,
    training_pairs,
)
from model_building.training.retrieval import evaluate, fuse_min_max, mean_ndcg, min_max_window, top_k_rows


def test_analyzer_lowercases_drops_stop_words_and_stems_plurals():
    assert analyze("The Vaccines and the studies of IMMUNE cells") == ["vaccine", "study", "immune", "cell"]
    assert stem("boxes") == "box" and stem("glass") == "glass" and stem("virus") == "virus"


def test_bm25_ranks_by_term_rarity_and_saturates_tf():
    docs = ["vaccine vaccine vaccine trial", "vaccine trial results", "heart trial", "unrelated text here"]
    bm = BM25(docs)
    idx, scores = bm.search("vaccine", 10)
    assert idx.tolist() == [0, 1] and scores[0] > scores[1] > 0
    idx, _ = bm.search("heart trial", 10)
    assert idx[0] == 2  # the rare term wins
    # Lucene idf: ln(1 + (N - df + 0.5) / (df + 0.5))
    assert bm.idf[bm.vocab["heart"]] == pytest.approx(np.log1p((4 - 1 + 0.5) / 1.5))
    assert bm.search("nothing matches", 5)[0].size == 0


def test_min_max_matches_the_project_reference():
    from ir.fusion import min_max

    for s in ([3.0, 2.0, 1.0], [5.0], [2.0, 2.0], [10.0, 9.99, 9.0]):
        assert min_max_window(np.array(s)).tolist() == pytest.approx(min_max(s))


def test_fuse_min_max_weights_and_missing_documents():
    a = {"q": (np.array([0, 1]), np.array([2.0, 1.0]))}
    b = {"q": (np.array([2, 0]), np.array([0.9, 0.1]))}
    fused = fuse_min_max([a, b], [0.5, 0.5])
    idx, s = fused["q"]
    assert idx.tolist()[0] == 0  # present in both
    assert dict(zip(idx.tolist(), s.tolist()))[1] == pytest.approx(0.0)
    assert dict(zip(idx.tolist(), s.tolist()))[2] == pytest.approx(0.5)
    with pytest.raises(ValueError):
        fuse_min_max([a], [0.0])


def test_top_k_rows_and_ndcg_agree_with_ranx():
    pytest.importorskip("ranx")
    scores = np.array([[0.1, 0.9, 0.5, 0.3], [0.8, 0.1, 0.2, 0.0]], dtype=np.float32)
    idx, vals = top_k_rows(scores, 3)
    assert idx.tolist() == [[1, 2, 3], [0, 2, 1]]
    run = {"a": (idx[0], vals[0]), "b": (idx[1], vals[1])}
    qrels = {"a": {"d2": 1}, "b": {"d0": 1, "d3": 1}}
    ids = ["d0", "d1", "d2", "d3"]
    mine = mean_ndcg(qrels, run, ids)
    assert mine == pytest.approx(evaluate(qrels, run, ids)["ndcg@10"], abs=1e-4)


def test_load_beir_pairs_and_refusal_of_test(synthetic_beir):
    ds = load_beir(synthetic_beir)
    assert len(ds.doc_ids) == 40 and len(ds.queries) == 30 and set(ds.qrels) == {"train", "test"}
    pairs = training_pairs(ds, "train")
    assert len(pairs) == 20 and all(p.source == "qrels" for p in pairs)
    with pytest.raises(ValueError, match="never"):
        training_pairs(ds, "test")
    ss = self_supervised_pairs(ds, n_title=5, n_ict=5, seed=1)
    assert [p.source for p in ss].count("title") == 5 and [p.source for p in ss].count("ict") == 5
    assert ss == self_supervised_pairs(ds, n_title=5, n_ict=5, seed=1)
    small = restrict_docs(ds, 12)
    assert len(small.doc_ids) == 12 and set(small.doc_ids) <= set(ds.doc_ids)
    kept = set(small.doc_ids)
    assert all(d in kept for split in small.qrels.values() for q in split.values() for d in q)
    assert ds.fingerprint() == load_beir(synthetic_beir).fingerprint()


def test_load_beir_rejects_a_non_beir_folder(tmp_path):
    from ir.beir import DatasetError

    with pytest.raises(DatasetError):
        load_beir(tmp_path)
    (tmp_path / "corpus.jsonl").write_text("{bad\n")
    (tmp_path / "queries.jsonl").write_text(json.dumps({"_id": "1", "text": "x"}) + "\n")
    with pytest.raises(DatasetError, match="corpus.jsonl:1"):
        load_beir(tmp_path)


def test_sentences_split_on_sentence_ends():
    t = "Short one. This sentence has more than six words in it. 12 patients were seen over three long years."
    assert sentences(t) == ["This sentence has more than six words in it.",
                            "12 patients were seen over three long years."]
