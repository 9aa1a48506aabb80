"""The metric code (ranx underneath) against values computed by hand here."""

from __future__ import annotations

import math

import pytest

from ir.metrics import METRICS, evaluate, relevant_qrels, run_from_rankings


def dcg(gains):
    """Järvelin & Kekäläinen DCG as trec_eval computes it: sum of gain_i / log2(i + 1), i from 1."""
    return sum(g / math.log2(i + 1) for i, g in enumerate(gains, start=1))


QRELS = {
    # graded, with a grade-0 judgement that must count as not relevant
    "g": {"d1": 3, "d2": 2, "d3": 1, "d5": 0},
    # binary, one relevant document below rank 10, one never retrieved
    "b": {"a": 1, "b": 1, "c": 1},
    # judged, but the system returns nothing
    "empty": {"z": 1},
}
RANKINGS = {
    "g": ["d4", "d2", "d1", "d5", "d3"],
    "b": ["x1", "a", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "b"],
    "empty": [],
    "unjudged": ["d1"],  # not in the qrels: ignored
}


def expected():
    ndcg_g = dcg([0, 2, 3, 0, 1]) / dcg([3, 2, 1])
    ndcg_b = dcg([0, 1, 0, 0, 0, 0, 0, 0, 0, 0]) / dcg([1, 1, 1])
    return {
        "ndcg@10": {"g": ndcg_g, "b": ndcg_b, "empty": 0.0},
        "recall@100": {"g": 1.0, "b": 2 / 3, "empty": 0.0},
        "mrr@10": {"g": 1 / 2, "b": 1 / 2, "empty": 0.0},
    }


def test_per_query_scores_match_hand_computation():
    ev = evaluate(QRELS, RANKINGS)
    want = expected()
    assert ev.queries == 3
    for metric in METRICS:
        assert set(ev.per_query[metric]) == {"g", "b", "empty"}
        for qid, value in want[metric].items():
            assert ev.per_query[metric][qid] == pytest.approx(value, abs=1e-9), (metric, qid)
        assert ev.mean[metric] == pytest.approx(sum(want[metric].values()) / 3, abs=1e-9)


def test_hand_values_are_what_we_think():
    # guard against a wrong helper: the graded query's nDCG@10 spelled out
    num = 2 / math.log2(3) + 3 / math.log2(4) + 1 / math.log2(6)
    den = 3 / math.log2(2) + 2 / math.log2(3) + 1 / math.log2(4)
    assert expected()["ndcg@10"]["g"] == pytest.approx(num / den)
    assert num / den == pytest.approx(0.6612, abs=1e-4)


def test_graded_gains_differ_from_binary():
    graded = evaluate({"q": {"d1": 3, "d2": 1}}, {"q": ["d2", "d1"]}).mean["ndcg@10"]
    binary = evaluate({"q": {"d1": 1, "d2": 1}}, {"q": ["d2", "d1"]}).mean["ndcg@10"]
    assert binary == pytest.approx(1.0)
    assert graded == pytest.approx(dcg([1, 3]) / dcg([3, 1]))


def test_perfect_and_reversed_rankings():
    qrels = {"q": {"a": 2, "b": 1}}
    assert evaluate(qrels, {"q": ["a", "b"]}).mean == pytest.approx({m: 1.0 for m in METRICS})
    assert evaluate(qrels, {"q": ["b", "a"]}).mean["ndcg@10"] == pytest.approx(dcg([1, 2]) / dcg([2, 1]))


def test_ranking_order_decides_not_ties_and_duplicates_keep_best_rank():
    run = run_from_rankings({"q": ["c", "a", "c", "b"]})
    assert sorted(run["q"], key=run["q"].get, reverse=True) == ["c", "a", "b"]
    assert evaluate({"q": {"a": 1}}, {"q": ["c", "a", "c", "b"]}).per_query["mrr@10"]["q"] == pytest.approx(0.5)


def test_relevant_qrels_drops_zero_grades_and_empty_queries():
    assert relevant_qrels({"q": {"a": 0, "b": 2}, "r": {"c": 0}}) == {"q": {"b": 2}}
    with pytest.raises(ValueError, match="no judged queries"):
        evaluate({"r": {"c": 0}}, {"r": ["c"]})
