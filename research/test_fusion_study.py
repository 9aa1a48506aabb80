"""The fusion study's rules on hand-made windows (the cluster part is exercised by running the study)."""

from research.fusion_study import RULES, confidence


def test_every_rule_ranks_a_document_both_branches_like_first():
    w = {"bm25": [("a", 9.0), ("b", 5.0), ("c", 1.0)], "dense": [("a", 0.9), ("c", 0.8), ("d", 0.1)], "concepts": []}
    exact = {"bm25": {"a": 9.0, "b": 5.0, "c": 1.0, "d": 0.5}, "dense": {"a": 0.9, "b": 0.2, "c": 0.8, "d": 0.1}}
    for name, rule in RULES.items():
        ranking = rule(w, exact)
        assert ranking[0] == "a", name
        assert set(ranking) >= {"a", "b", "c", "d"}, name


def test_a_flat_window_has_no_confidence():
    assert confidence([("a", 1.0), ("b", 1.0)]) == 0.0
    assert confidence([("a", 1.0)]) == 0.0
    steep = [("a", 1.0)] + [(f"d{i}", 0.1) for i in range(20)]
    flat_top = [(f"d{i}", 1.0 - i * 0.001) for i in range(20)] + [("z", 0.0)]
    assert confidence(steep) == 1.0 and confidence(flat_top) < 0.01
