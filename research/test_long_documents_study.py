"""The long-documents study's aggregators and rankings on hand-made windows (the server and cluster part is
exercised by running the study)."""

import numpy as np

from research.long_documents_study import AGGREGATORS, dense_window, hybrid_ranking, summary, to_markdown


def test_aggregators_turn_window_cosines_into_one_score():
    s = np.array([0.2, 0.9, 0.5])
    a = {name: f(s) for name, f in AGGREGATORS.items()}
    assert a["first"] == 0.2 and a["max"] == 0.9
    assert abs(a["top2_mean"] - 0.7) < 1e-6
    assert abs(a["mean_of_first_and_max"] - 0.55) < 1e-6
    assert abs(a["max_plus_0.1_mean"] - (0.9 + 0.1 * np.mean(s))) < 1e-6
    assert 0.9 <= a["logsumexp_t20"] < 0.9 + np.log(3) / 20 + 1e-6
    one = np.array([0.4])
    assert all(abs(f(one) - 0.4) < 1e-6 for n, f in AGGREGATORS.items() if n != "max_plus_0.1_mean"), \
        "one window: the rule is its cosine"
    assert abs(AGGREGATORS["max_plus_0.1_mean"](one) - 0.44) < 1e-6


def test_a_document_is_found_by_a_window_past_its_first():
    q = np.array([1.0, 0.0], dtype=np.float32)
    windows = [np.array([[0.0, 1.0], [1.0, 0.0]], dtype=np.float32),  # long: its second window matches
               np.array([[0.6, 0.8]], dtype=np.float32)]
    ids = ["long", "short"]
    assert [d for d, _ in dense_window(windows, ids, q, AGGREGATORS["max"])] == ["long", "short"]
    assert [d for d, _ in dense_window(windows, ids, q, AGGREGATORS["first"])] == ["short", "long"]
    assert dense_window(windows, ids, q, AGGREGATORS["max"], top=1) == [("long", 1.0)]


def test_hybrid_and_summary():
    assert hybrid_ranking([("a", 3.0), ("b", 1.0)], [("b", 0.9), ("a", 0.1)])[0] in {"a", "b"}
    assert hybrid_ranking([("a", 3.0), ("b", 1.0), ("c", 0.5)], [("a", 0.9), ("c", 0.2), ("b", 0.1)])[0] == "a"
    results = [{"dataset": "x", "bm25": 0.5, "runs": [
                   {"window_tokens": 0, "overlap_tokens": 32, "aggregator": "max", "hybrid": 0.6},
                   {"window_tokens": 0, "overlap_tokens": 32, "aggregator": "first", "hybrid": 0.7}]},
               {"dataset": "y", "bm25": 0.4, "runs": [
                   {"window_tokens": 0, "overlap_tokens": 32, "aggregator": "max", "hybrid": 0.5},
                   {"window_tokens": 0, "overlap_tokens": 32, "aggregator": "first", "hybrid": 0.3}]}]
    rows = summary(results)
    assert [r["aggregator"] for r in rows] == ["max", "first"] and rows[0]["mean_hybrid"] == 0.55
    md = to_markdown(results)
    assert "| passage:32 | max | 0.6000 | 0.5000 | 0.5500 |" in md and "BM25: x 0.5000, y 0.4000" in md
