"""`sesa tune`: the held-out split, the candidate grid, the significance rule, the requests it makes and the
record it writes (a fake cluster answers with branch windows and rerank scores)."""

from __future__ import annotations

import json

import pytest
from eval_fakes import FakeClient

from integration import schemas
from integration.cluster.errors import SesaError
from integration.evaluation import tuning
from ir.beir import Dataset
from ir.splits import split_dev
from model_building.training.concept_head_training import ConceptTrainConfig


def test_the_held_out_split_is_the_one_training_keeps():
    cfg = ConceptTrainConfig()
    assert (tuning.DEV_FRACTION, tuning.DEV_SEED) == (cfg.dev_fraction, cfg.dev_seed)


def test_candidates_start_with_the_evidence_free_default_and_cover_the_grid():
    cands = tuning.candidates()
    assert cands[0] == tuning.default_choice() and cands[0].weights == {"bm25": 0.5, "dense": 0.5, "concepts": 0.0}
    labels = [c.label for c in cands]
    assert len(labels) == len(set(labels)), "no candidate twice"
    assert len(cands) == len(tuning.TECHNIQUES) * len(tuning.CONCEPT_WEIGHTS) * len(tuning.BM25_SHARES)
    assert all(abs(sum(c.weights.values()) - 1.0) < 1e-6 for c in cands)
    assert {c.technique for c in cands} == {"min_max", "z_score", "rrf"}


def _dataset(tmp_path, n=60):
    (tmp_path / "corpus.jsonl").write_text("".join(json.dumps({"_id": f"d{i}", "title": "", "text": f"doc {i}"}) + "\n"
                                                   for i in range(n)))
    (tmp_path / "queries.jsonl").write_text("".join(json.dumps({"_id": f"q{i}", "text": f"query {i}"}) + "\n"
                                                    for i in range(n)))
    (tmp_path / "qrels").mkdir()
    (tmp_path / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n"
                                                  + "".join(f"q{i}\td{i}\t1\n" for i in range(n)))
    return tmp_path


def _cluster(*, concepts_find_it: bool, rerank_finds_it: bool, calls: list):
    """BM25 and dense put the relevant document 3rd behind two decoys; the concept branch finds it alone (or
    not); the reranker scores it highest (or lowest)."""

    def search(index, body, params):
        sesa = body["ext"]["sesa"]
        n = sesa["query_text"].split()[-1]
        right, a, b = f"d{n}", "dx", "dy"
        calls.append((sesa["mode"], sesa["query_text"], sesa.get("rerank")))
        if sesa["mode"] in ("bm25", "dense"):
            hits = [(a, 3.0), (b, 2.0), (right, 1.0)]
        elif sesa["mode"] == "concepts":
            hits = [(right, 0.9)] if concepts_find_it else [(a, 0.9)]
        else:  # hybrid + rerank: the fused head with raw rerank scores, in rerank order
            fused = {a: 0.9, b: 0.6, right: 0.3}
            rr = {a: 0.1, b: 0.2, right: 0.9 if rerank_finds_it else 0.0}
            order = sorted(fused, key=lambda d: -rr[d])
            return {"hits": {"hits": [{"_id": d, "_score": rr[d], "fields": {"_sesa": [{"fused": fused[d],
                                                                                       "rerank": rr[d]}]}}
                                      for d in order]}}
        return {"hits": {"hits": [{"_id": d, "_score": s} for d, s in hits]}}

    return FakeClient(searcher=search)


def test_tune_searches_only_dev_queries_and_adopts_what_wins_significantly(tmp_path):
    ds = Dataset(_dataset(tmp_path))
    _, dev = split_dev(sorted(ds.qrels("train")), 0.15, 13)
    calls: list = []
    report = tuning.tune(_cluster(concepts_find_it=True, rerank_finds_it=True, calls=calls), tmp_path, "idx",
                         progress=False)
    assert report["dev"]["queries"] == len(dev) == 9
    assert {text for _, text, _ in calls} == {f"query {q[1:]}" for q in dev}, "only the held-out queries"
    # each branch once per query, then one rerank request per query
    assert sorted(m for m, _, _ in calls).count("bm25") == len(dev) and len(calls) == 4 * len(dev)
    rerank_req = next(r for m, _, r in calls if m == "hybrid")
    assert rerank_req["without_evidence"] == "rerank" and rerank_req["weight"] == 1.0
    record = report["record"]
    assert record["fusion"]["weights"]["concepts"] > 0, "the concept branch helped on every dev query"
    assert report["fusion"]["best_vs_default"]["p_value"] < 0.05
    # the chosen fusion already ranks the right document first: nothing left for rerank to win
    assert record["rerank"] == {"enabled": False}


def test_without_a_significant_gain_the_plain_hybrid_stays_and_rerank_can_still_win(tmp_path):
    _dataset(tmp_path)
    report = tuning.tune(_cluster(concepts_find_it=False, rerank_finds_it=True, calls=[]), tmp_path, "idx",
                         progress=False)
    assert report["record"]["fusion"] == tuning.default_choice().ext()
    assert report["record"]["rerank"]["enabled"] is True and report["record"]["rerank"]["weight"] > 0
    report = tuning.tune(_cluster(concepts_find_it=False, rerank_finds_it=False, calls=[]), tmp_path, "idx",
                         progress=False)
    assert report["record"]["rerank"] == {"enabled": False}


def test_the_record_goes_into_meta_next_to_the_models(tmp_path):
    client = FakeClient()
    client.indices.create(index="idx", body={"mappings": {"_meta": {"sesa": {"models": {"sesa": {"x": 1}}}}}})
    record = {"version": 1, "fusion": tuning.default_choice().ext(), "rerank": {"enabled": False}, "measured": {}}
    assert tuning.write_record(client, "idx", record) == ["idx"]
    meta = client.indices.get_mapping(index="idx")["idx"]["mappings"]["_meta"]
    conv = schemas.conventions()
    prefix = conv["default_target_prefix"]
    assert meta[conv["index_meta_key"]]["models"] == {"sesa": {"x": 1}}, "the models the ingest guard reads stay"
    assert meta[conv["index_meta_key"]][conv["index_evidence_key"]][prefix] == record
    assert tuning.read_record(client, "idx") == record
    assert tuning.clear_record(client, "idx") == ["idx"] and tuning.read_record(client, "idx") is None
    meta = client.indices.get_mapping(index="idx")["idx"]["mappings"]["_meta"]
    assert meta[conv["index_meta_key"]]["models"] == {"sesa": {"x": 1}}
    assert tuning.clear_record(client, "idx") == [], "nothing left to clear"


def test_a_dataset_without_training_judgements_is_a_clear_error(tmp_path):
    _dataset(tmp_path)
    (tmp_path / "qrels" / "train.tsv").rename(tmp_path / "qrels" / "test.tsv")
    with pytest.raises(SesaError, match="no qrels/train.tsv"):
        tuning.tune(FakeClient(), tmp_path, "idx", progress=False)
    with pytest.raises(SesaError, match="never tunes on a test split"):
        tuning.tune(FakeClient(), tmp_path, "idx", split="test", progress=False)
