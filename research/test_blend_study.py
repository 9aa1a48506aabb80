"""The offline blend-form study: each form's arithmetic, and weights chosen on dev only."""

from __future__ import annotations

import numpy as np
import pytest

from research.blend_study import BLEND_FORMS, FORMS, logit_stats, study
from research.blend_study import blend_scores as combine
from model_building.training.reranker import interpolate


def test_each_form_reduces_to_one_side_at_its_end_weights():
    ce = np.array([0.1, 3.0, 2.0, -1.0])
    first = np.array([4.0, 3.0, 2.0, 1.0])
    for form in ("minmax", "z", "rrf"):
        assert list(np.argsort(-combine(form, 1.0, ce, first))) == [1, 2, 0, 3], form
        assert list(np.argsort(-combine(form, 0.0, ce, first))) == [0, 1, 2, 3], form
    assert np.allclose(combine("raw", 0.0, ce, first), [1.0, 2 / 3, 1 / 3, 0.0])
    assert np.allclose(combine("raw", 0.5, ce, first) - combine("raw", 0.0, ce, first), 0.5 * ce)
    assert np.allclose(combine("minmax", 0.5, ce, first), 0.5 * (ce + 1) / 4 + 0.5 * (first - 1) / 3)
    assert np.allclose(combine("rrf", 0.5, ce, first)[1], 0.5 / 61 + 0.5 / 62)
    with pytest.raises(ValueError, match="unknown blend form"):
        combine("mean", 0.5, ce, first)
    assert set(FORMS) == set(BLEND_FORMS)  # the study tries every form the blend knows


def _set(n_q: int, ce_right: bool, seed: int) -> dict:
    """Queries whose first stage puts the relevant doc 3rd; the CE puts it 1st (or last when not right)."""
    rng = np.random.default_rng(seed)
    first, raw, qrels = {}, {}, {}
    for i in range(n_q):
        idx = rng.permutation(40)[:12]
        s = np.linspace(1.0, 0.1, 12)
        ce = rng.normal(size=12)
        ce[2] = ce.max() + 1 if ce_right else ce.min() - 1
        first[f"q{i}"], raw[f"q{i}"] = (idx, s), (idx, ce)
        qrels[f"q{i}"] = {f"d{idx[2]}": 1}
    return {"first": first, "raw": raw, "qrels": qrels, "doc_ids": [f"d{j}" for j in range(40)]}


def test_weights_come_from_dev_and_the_other_sets_only_report():
    sets = {"dev": _set(20, True, 0), "good": _set(20, True, 1), "bad": _set(20, False, 2)}
    rows = study(sets, "dev", [12])
    assert {r["form"] for r in rows} == set(FORMS) and all(set(r["delta_ndcg@10"]) == {"good", "bad"} for r in rows)
    mm = next(r for r in rows if r["form"] == "minmax")
    # dev rewards trusting the CE, so the largest winning weight is chosen, whatever "bad" would prefer
    assert mm["weight"] == 1.0 and mm["dev"] == 1.0
    assert mm["delta_ndcg@10"]["good"] > 0 > mm["delta_ndcg@10"]["bad"]
    run = interpolate(sets["good"]["first"], sets["good"]["raw"], 1.0, 12)
    assert all(run[q][0][0] == sets["good"]["first"][q][0][2] for q in run)


def test_logit_stats_are_medians_over_queries():
    raw = {"a": ([0, 1], np.array([1.0, 3.0])), "b": ([0, 1], np.array([0.0, 10.0])), "c": ([0], np.array([5.0]))}
    assert logit_stats(raw) == {"top_logit_median": 5.0, "logit_sd_median": 1.0}
