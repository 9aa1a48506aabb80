"""`sesa tune-fusion`: the weight grid, the tie rule, the held-out split and the search requests it makes."""

from __future__ import annotations

import json

import pytest
from eval_fakes import FakeClient

from integration.cluster.errors import SesaError
from integration.evaluation import tuning
from ir.beir import Dataset
from ir.splits import split_dev
from model_building.training.concept_head_training import ConceptTrainConfig


def test_the_held_out_split_is_the_one_training_keeps():
    cfg = ConceptTrainConfig()
    assert (tuning.DEV_FRACTION, tuning.DEV_SEED) == (cfg.dev_fraction, cfg.dev_seed)


def test_grid_weights_and_tie_rule():
    assert tuning.grid(0.05, 0.5)[:3] == [0.0, 0.05, 0.1] and tuning.grid(0.05, 0.5)[-1] == 0.5
    assert len(tuning.grid(0.1, 0.3)) == 4
    with pytest.raises(ValueError):
        tuning.grid(0.0, 0.5)
    with pytest.raises(ValueError):
        tuning.grid(0.6, 0.5)
    assert tuning.concept_weights(0.15) == {"bm25": 0.425, "dense": 0.425, "concepts": 0.15}
    assert tuning.pick({0.0: 0.70, 0.1: 0.72, 0.2: 0.72, 0.3: 0.71}) == 0.1, "a tie goes to the smaller weight"
    assert tuning.pick({0.2: 0.5, 0.0: 0.5}) == 0.0
    with pytest.raises(ValueError):
        tuning.pick({})


def _dataset(tmp_path, n=20):
    (tmp_path / "corpus.jsonl").write_text("".join(json.dumps({"_id": f"d{i}", "title": "", "text": f"doc {i}"}) + "\n"
                                                   for i in range(n)))
    (tmp_path / "queries.jsonl").write_text("".join(json.dumps({"_id": f"q{i}", "text": f"query {i}"}) + "\n"
                                                    for i in range(n)))
    (tmp_path / "qrels").mkdir()
    (tmp_path / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n"
                                                  + "".join(f"q{i}\td{i}\t1\n" for i in range(n)))
    return tmp_path


def test_tune_searches_the_held_out_queries_once_per_weight_and_picks_the_best(tmp_path):
    ds = Dataset(_dataset(tmp_path))
    _, dev = split_dev(sorted(ds.qrels("train")), 0.15, 13)
    seen = []

    def search(index, body, params):
        sesa = body["ext"]["sesa"]
        seen.append((sesa["query_text"], sesa["fusion"]["weights"]["concepts"]))
        qid = "q" + sesa["query_text"].split()[-1]
        # the right document comes first only when the concept weight is 0.2
        ranked = [f"d{qid[1:]}", "dx"] if sesa["fusion"]["weights"]["concepts"] == 0.2 else ["dx", f"d{qid[1:]}"]
        return {"took": 1, "hits": {"hits": [{"_id": d, "_score": 1.0} for d in ranked]}}

    report = tuning.tune(FakeClient(searcher=search), tmp_path, "idx", step=0.1, max_weight=0.3, progress=False)
    assert report["held_out"]["queries"] == len(dev) == 3
    assert {text for text, _ in seen} == {f"query {q[1:]}" for q in dev}, "only the held-out queries"
    assert sorted({w for _, w in seen}) == [0.0, 0.1, 0.2, 0.3] and len(seen) == 4 * len(dev)
    assert report["chosen"]["concept_weight"] == 0.2
    assert report["chosen"]["weights"] == {"bm25": 0.4, "dense": 0.4, "concepts": 0.2}
    assert report["ndcg@10_by_concept_weight"]["0.2"] == 1.0


def test_a_dataset_without_training_judgements_is_a_clear_error(tmp_path):
    _dataset(tmp_path)
    (tmp_path / "qrels" / "train.tsv").rename(tmp_path / "qrels" / "test.tsv")
    with pytest.raises(SesaError, match="no qrels/train.tsv"):
        tuning.tune(FakeClient(), tmp_path, "idx", progress=False)
