"""The paired randomization test."""

from __future__ import annotations

import numpy as np
import pytest

from integration.evaluation.significance import randomization_test


def test_identical_runs_give_p_one():
    scores = {f"q{i}": v for i, v in enumerate(np.linspace(0, 1, 50))}
    res = randomization_test(scores, dict(scores), permutations=2000)
    assert res.p_value == 1.0
    assert res.delta == 0.0


def test_clearly_different_runs_give_small_p():
    rng = np.random.default_rng(1)
    base = rng.uniform(0.2, 0.6, 100)
    better = base + rng.uniform(0.1, 0.3, 100)
    res = randomization_test(better, base, permutations=10_000, seed=7)
    assert res.p_value == pytest.approx(1 / 10_001)
    assert res.delta > 0.1
    assert res.queries == 100


def test_noise_gives_large_p():
    rng = np.random.default_rng(2)
    a = rng.uniform(0, 1, 200)
    b = a + rng.normal(0, 0.05, 200) * rng.choice([-1, 1], 200)
    b = b - (b.mean() - a.mean())  # same mean, different per-query values
    assert randomization_test(a, b, permutations=2000).p_value > 0.5


def test_fixed_seed_is_deterministic_and_symmetric():
    rng = np.random.default_rng(3)
    a, b = rng.uniform(0, 1, 40), rng.uniform(0, 1, 40)
    first = randomization_test(a, b, permutations=3000, seed=11)
    assert randomization_test(a, b, permutations=3000, seed=11).p_value == first.p_value
    assert randomization_test(b, a, permutations=3000, seed=11).p_value == first.p_value
    assert 0 < first.p_value <= 1


def test_mappings_are_paired_by_query_id():
    a = {"q1": 1.0, "q2": 0.0, "q3": 0.5}
    b = {"q3": 0.5, "q1": 1.0, "q2": 0.0}
    assert randomization_test(a, b, permutations=100).p_value == 1.0
    with pytest.raises(ValueError, match="different queries"):
        randomization_test(a, {"q1": 1.0}, permutations=10)
    with pytest.raises(ValueError, match="equal 1-d shapes"):
        randomization_test([1.0, 2.0], [1.0], permutations=10)


def test_picking_the_best_of_many_noisy_candidates_is_not_significant_by_chance():
    import random

    from integration.evaluation.significance import max_randomization_test, randomization_test

    rng = random.Random(7)
    base = {f"q{i}": rng.random() for i in range(60)}
    # 40 candidates that are the baseline plus noise: one of them looks better by chance
    noisy = {f"c{j}": {q: v + rng.gauss(0, 0.15) for q, v in base.items()} for j in range(40)}
    best = max(noisy, key=lambda c: sum(noisy[c].values()))
    single = randomization_test(noisy[best], base, permutations=2000).p_value
    corrected = max_randomization_test(noisy, base, permutations=2000)
    assert corrected["best"] == best and corrected["p_value"] > single
    assert corrected["p_value"] > 0.05, "the winner of a noise contest is not evidence"
    # a real gain stays significant after the correction
    real = {**noisy, "good": {q: v + 0.2 for q, v in base.items()}}
    r = max_randomization_test(real, base, permutations=2000)
    assert r["best"] == "good" and r["p_value"] < 0.01 and r["delta"] == 0.2
