"""`sesa eval-concepts`: the skill-extraction metrics and the key matching (no server needed)."""

from __future__ import annotations

import pytest

from integration.evaluation.concepts import key_matcher
from ir.metrics import evaluate_concepts, r_precision_at, reciprocal_rank


def test_r_precision_divides_by_the_smaller_of_k_and_the_relevant_count():
    ranked = ["a", "x", "b", "y", "z", "c"]
    assert r_precision_at(ranked, {"a", "b"}, 5) == 1.0  # both found: 2 / min(5, 2)
    assert r_precision_at(ranked, {"a", "b", "c", "d", "e", "f", "g"}, 5) == pytest.approx(2 / 5)
    assert r_precision_at(ranked, {"c"}, 5) == 0.0 and r_precision_at(ranked, {"c"}, 10) == 1.0
    with pytest.raises(ValueError):
        r_precision_at(ranked, set(), 5)


def test_reciprocal_rank_and_the_mean_over_annotated_texts():
    assert reciprocal_rank(["x", "a"], {"a"}) == 0.5 and reciprocal_rank(["x"], {"a"}) == 0.0
    qrels = {"t1": {"a": 1}, "t2": {"b": 1, "c": 1}, "t3": {"z": 0}}  # t3 has no annotated concept: not counted
    ev = evaluate_concepts(qrels, {"t1": ["a"], "t2": ["x", "c"]})
    assert ev.queries == 2
    assert ev.mean == {"rp@5": pytest.approx((1 + 0.5) / 2), "rp@10": pytest.approx(0.75), "mrr": pytest.approx(0.75)}
    ev = evaluate_concepts(qrels, {"t1": ["a"]})  # a text without a ranking scores 0
    assert ev.per_query["mrr"] == {"t1": 1.0, "t2": 0.0}


def test_served_keys_match_corpus_ids_behind_any_pack_prefix():
    match = key_matcher(["http://data.europa.eu/esco/skill/0005c151-5b5a-4a66-8aac-60e734beb1ab", "plain_id"])
    assert match("esco-0005c151-5b5a-4a66-8aac-60e734beb1ab") == (
        "http://data.europa.eu/esco/skill/0005c151-5b5a-4a66-8aac-60e734beb1ab")
    assert match("0005c151-5b5a-4a66-8aac-60e734beb1ab").endswith("60e734beb1ab")
    assert match("plain_id") == "plain_id" and match("wn-plain_id") == "plain_id"
    assert match("esco-ffffffff-0000") is None
