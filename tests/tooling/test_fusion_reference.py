"""ir/fusion.py, the Python reference of the sesa_fuse rules, on hand-computed cases.

The same cases (same numbers) are in the plugin's ScoreFusionTests, so the two implementations agree."""

from __future__ import annotations

import pytest

from ir import fusion


def test_min_max_is_plain_min_max_for_a_wide_spread():
    assert fusion.min_max([4, 3, 0]) == pytest.approx([1, 0.75, 0])
    assert fusion.min_max([10, 6, 2]) == pytest.approx([1, 0.5, 0])


def test_a_single_match_or_ties_get_one_not_zero():
    assert fusion.min_max([0.3]) == [1.0]
    assert fusion.min_max([5, 5, 5]) == [1.0, 1.0, 1.0]
    assert fusion.min_max([0, 0]) == [1.0, 1.0]
    assert fusion.min_max([3, 3], min_range=0) == [1.0, 1.0]
    assert fusion.min_max([]) == []


def test_a_tiny_gap_stays_small():
    # range = max(0.01, 0.05 * 10) = 0.5 -> 9.99 becomes 1 - 0.01 / 0.5 = 0.98 (plain min-max: 0)
    assert fusion.min_max([10, 9.99]) == pytest.approx([1, 0.98])
    assert fusion.min_max([10, 9.99], min_range=0) == pytest.approx([1, 0])
    assert fusion.min_max([0.5128, 0.5008]) == pytest.approx([1, 1 - 0.012 / (0.05 * 0.5128)])


# weights under which the concept branch scores (the default gives it 0 until an index's evidence says otherwise)
SCORING_CONCEPTS = {"bm25": 0.4, "dense": 0.4, "concepts": 0.2}


def test_min_max_fusion_with_missing_docs_weights_and_ties():
    windows = {
        "bm25": [("d1", 10), ("d2", 6), ("d3", 2)],
        "dense": [("d2", 0.9), ("d4", 0.8)],
        "concepts": [("d1", 0.3)],
    }
    out = fusion.fuse(windows, weights=SCORING_CONCEPTS)
    # d1 = .4*1 + .2*1, d2 = .4*.5 + .4*1 (tie at .6: both have a rank 1 -> key order), d4 = d3 = 0 (d4 rank 2 < 3)
    assert [d.key for d in out] == ["d1", "d2", "d4", "d3"]
    assert [d.fused for d in out] == pytest.approx([0.6, 0.6, 0, 0])
    assert out[0].raw == {"bm25": 10, "dense": None, "concepts": 0.3}
    assert out[1].ranks == {"bm25": 2, "dense": 1, "concepts": None}


def test_weights_are_normalised_and_all_zero_weights_rejected():
    windows = {"bm25": [("a", 2), ("b", 1)], "dense": [("b", 0.9), ("a", 0.1)]}
    out = fusion.fuse(windows, weights={"bm25": 3, "dense": 1})
    assert [(d.key, d.fused) for d in out] == [("a", pytest.approx(0.75)), ("b", pytest.approx(0.25))]
    assert [d.key for d in fusion.fuse(windows, weights={"bm25": 1, "dense": 3})] == ["b", "a"]
    with pytest.raises(ValueError, match="are all 0"):
        fusion.fuse(windows, weights={"bm25": 0, "dense": 0, "concepts": 1})


def test_rrf_sums_weighted_reciprocal_ranks():
    windows = {"bm25": [("d1", 9), ("d2", 8)], "dense": [("d2", 0.9), ("d3", 0.8)], "concepts": [("d3", 0.5)]}
    third = 1 / 3
    out = fusion.fuse(windows, "rrf", weights={"bm25": 1, "dense": 1, "concepts": 1})
    assert [d.key for d in out] == ["d2", "d3", "d1"]
    assert [d.fused for d in out] == pytest.approx([third / 62 + third / 61, third / 62 + third / 61, third / 61])
    out = fusion.fuse(windows, "rrf", weights={"bm25": 2, "dense": 1, "concepts": 1}, rank_constant=1)
    assert [d.key for d in out] == ["d2", "d1", "d3"]
    assert [d.fused for d in out] == pytest.approx([0.5 / 3 + 0.25 / 2, 0.5 / 2, 0.25 / 3 + 0.25 / 2])


def test_tied_scores_share_a_rank_so_rrf_ignores_the_engines_tie_order():
    out = fusion.fuse({"bm25": [("y", 5), ("x", 5), ("z", 3)]}, "rrf")
    assert [d.key for d in out] == ["x", "y", "z"]
    assert [d.fused for d in out] == pytest.approx([1 / 61, 1 / 61, 1 / 63])
    assert out[2].ranks["bm25"] == 3
    with pytest.raises(ValueError, match="sorted best first"):
        fusion.fuse({"bm25": [("a", 1), ("b", 2)]})


def test_empty_branches_still_count_in_the_weights():
    out = fusion.fuse({"bm25": [("a", 1)], "dense": [], "concepts": []}, weights=SCORING_CONCEPTS)
    assert out[0].fused == pytest.approx(0.4)
    # the default: BM25 and dense share the score, the concept branch explains only
    assert fusion.fuse({"bm25": [("a", 1)], "dense": [], "concepts": [("a", 1)]})[0].fused == pytest.approx(0.5)
    assert fusion.fuse({"bm25": []}, "rrf") == []


def test_the_plugin_scenario_of_its_fuse_processor_test():
    # SesaFuseAndRerankProcessorTests: bm25 [a 8, b 4], dense [c .9, a .8, d .7], concepts [b .6, c .3]
    windows = {"bm25": [("a", 8), ("b", 4)], "dense": [("c", 0.9), ("a", 0.8), ("d", 0.7)],
               "concepts": [("b", 0.6), ("c", 0.3)]}
    out = fusion.fuse(windows, weights=SCORING_CONCEPTS)  # SesaPipelineTestCase.HARNESS_WEIGHTS
    assert [(d.key, round(d.fused, 6)) for d in out] == [("a", 0.6), ("c", 0.4), ("b", 0.2), ("d", 0.0)]
    rrf = fusion.fuse(windows, "rrf", weights=SCORING_CONCEPTS, rank_constant=1)
    assert [d.key for d in rrf] == ["a", "c", "b", "d"]
    assert rrf[1].fused == pytest.approx(0.4 / 2 + 0.2 / 3)


ROOT6, ROOT1_5 = 6 ** 0.5, 1.5 ** 0.5  # the z-scores of the top and middle of three evenly spaced scores


def test_z_score_divides_the_gap_to_the_lowest_score_by_the_population_sd():
    # mean 5, sd sqrt((25 + 1 + 1 + 9) / 4) = 3: (s - 2) / 3
    assert fusion.z_score([10, 4, 4, 2]) == pytest.approx([8 / 3, 2 / 3, 2 / 3, 0])
    # mean 6, sd sqrt(32 / 3): 8 / sd = sqrt 6, 4 / sd = sqrt 1.5
    assert fusion.z_score([10, 6, 2]) == pytest.approx([ROOT6, ROOT1_5, 0])
    # two documents: the gap is twice the sd, whatever its size (min_max's range floor does not apply)
    assert fusion.z_score([4, 0]) == pytest.approx([2, 0])
    assert fusion.z_score([10, 9.5]) == pytest.approx([2, 0])


def test_z_score_of_a_single_document_or_tied_scores_is_one():
    assert fusion.z_score([0.3]) == [1.0]
    assert fusion.z_score([5, 5, 5]) == [1.0, 1.0, 1.0]
    assert fusion.z_score([0, 0]) == [1.0, 1.0]
    assert fusion.z_score([]) == []


def test_z_score_of_tied_scores_is_one_despite_rounding():
    # three 0.1s do not average to 0.1 in floating point (sd ~1e-17): ties are decided on the scores, as in Java
    assert fusion.z_score([0.1, 0.1, 0.1]) == [1.0, 1.0, 1.0]


def test_z_score_fusion_with_missing_docs_and_a_single_document_window():
    windows = {
        "bm25": [("d1", 10), ("d2", 6), ("d3", 2)],
        "dense": [("d2", 0.9), ("d4", 0.8)],
        "concepts": [("d1", 0.3)],
    }
    out = fusion.fuse(windows, "z_score", weights=SCORING_CONCEPTS)
    # bm25 d1 sqrt 6, d2 sqrt 1.5, d3 0; dense d2 2, d4 0; concepts d1 1 (alone); a missing document counts 0:
    # d2 = .4 sqrt 1.5 + .4 * 2, d1 = .4 sqrt 6 + .2 * 1, d4 = d3 = 0 (d4's best rank 2 < 3)
    assert [d.key for d in out] == ["d2", "d1", "d4", "d3"]
    assert [d.fused for d in out] == pytest.approx([0.4 * ROOT1_5 + 0.4 * 2, 0.4 * ROOT6 + 0.2, 0, 0])
    assert out[1].raw["dense"] is None


def test_z_score_weights_are_normalised_and_min_range_does_not_apply():
    windows = {"bm25": [("a", 2), ("b", 1)], "dense": [("b", 0.9), ("a", 0.1)]}
    # each window [2, 0]; weights 3:1 -> .75/.25: a = .75 * 2 = 1.5, b = .25 * 2 = .5
    for min_range in (0, 0.05, 1):
        out = fusion.fuse(windows, "z_score", weights={"bm25": 3, "dense": 1}, min_range=min_range)
        assert [(d.key, d.fused) for d in out] == [("a", pytest.approx(1.5)), ("b", pytest.approx(0.5))]
    out = fusion.fuse(windows, "z_score", weights={"bm25": 1, "dense": 3})
    assert [(d.key, d.fused) for d in out] == [("b", pytest.approx(1.5)), ("a", pytest.approx(0.5))]


def test_z_score_on_the_plugin_scenario():
    # ScoreFusionTests.zScoreOnThePipelineScenario and SesaFuseAndRerankProcessorTests.zScoreFromThePipelineOrTheRequest
    windows = {"bm25": [("a", 8), ("b", 4)], "dense": [("c", 0.9), ("a", 0.8), ("d", 0.7)],
               "concepts": [("b", 0.6), ("c", 0.3)]}
    out = fusion.fuse(windows, "z_score", weights=SCORING_CONCEPTS)
    # bm25 sd 2: a 2, b 0; dense sd sqrt(.02 / 3): c sqrt 6, a sqrt 1.5, d 0; concepts sd .15: b 2, c 0
    assert [d.key for d in out] == ["a", "c", "b", "d"]
    assert [d.fused for d in out] == pytest.approx([0.4 * 2 + 0.4 * ROOT1_5, 0.4 * ROOT6, 0.2 * 2, 0])


def test_windows_from_hits_rebuilds_the_branch_windows():
    hits = [
        {"_index": "i", "_id": "x", "fields": {"_sesa": [{"bm25": 1.0, "dense": 0.5, "concepts": None}]}},
        {"_index": "i", "_id": "y", "fields": {"_sesa": [{"bm25": None, "dense": 0.7, "concepts": 0.2}]}},
    ]
    w = fusion.windows_from_hits(hits)
    assert w == {"bm25": [(("i", "x"), 1.0)], "dense": [(("i", "y"), 0.7), (("i", "x"), 0.5)],
                 "concepts": [(("i", "y"), 0.2)]}


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"one of \('min_max', 'z_score', 'rrf'\)"):
        fusion.fuse({"bm25": []}, "sum")
    with pytest.raises(ValueError):
        fusion.fuse({"bm25": []}, "rrf", rank_constant=0)
    with pytest.raises(ValueError, match="unknown branches"):
        fusion.fuse({"sparse": [("a", 1)]})
