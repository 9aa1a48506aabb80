"""Paired randomization (sign-flip permutation) test between two systems' per-query scores.

Under the null hypothesis the two systems are exchangeable on every query, so each per-query difference
is equally likely to have either sign. The p-value is the share of random sign assignments whose mean
difference is at least as extreme (two-sided) as the observed one, counting the observed assignment
itself: p = (hits + 1) / (permutations + 1) — never 0, and exactly 1 when the runs are identical.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

DEFAULT_PERMUTATIONS = 10_000
DEFAULT_SEED = 20240617


@dataclass(frozen=True)
class TestResult:
    p_value: float
    mean_a: float
    mean_b: float
    delta: float  # mean_a - mean_b
    queries: int
    permutations: int
    seed: int

    def to_dict(self) -> dict:
        return {
            "p_value": self.p_value,
            "mean_a": self.mean_a,
            "mean_b": self.mean_b,
            "delta": self.delta,
            "queries": self.queries,
            "permutations": self.permutations,
            "seed": self.seed,
            "test": "paired randomization (sign flip), two-sided",
        }


def _paired(a: Mapping[str, float] | Sequence[float], b: Mapping[str, float] | Sequence[float]):
    import numpy as np

    if isinstance(a, Mapping) != isinstance(b, Mapping):
        raise TypeError("pass two mappings (query id -> score) or two sequences")
    if isinstance(a, Mapping):
        if set(a) != set(b):
            raise ValueError(
                f"the two runs are scored on different queries ({len(set(a) ^ set(b))} differ): "
                "evaluate both on the same judged queries"
            )
        keys = sorted(a)
        return np.array([a[k] for k in keys], float), np.array([b[k] for k in keys], float)
    x, y = np.asarray(a, float), np.asarray(b, float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"paired scores need equal 1-d shapes, got {x.shape} and {y.shape}")
    return x, y


def randomization_test(a, b, permutations: int = DEFAULT_PERMUTATIONS, seed: int = DEFAULT_SEED,
                       chunk: int = 1000) -> TestResult:
    """Two-sided paired randomization test of mean(a) vs mean(b) over the same queries."""
    import numpy as np

    if permutations < 1:
        raise ValueError("permutations must be at least 1")
    x, y = _paired(a, b)
    n = len(x)
    if n == 0:
        raise ValueError("no queries to compare")
    diff = x - y
    observed = abs(diff.mean())
    tolerance = 1e-12 * max(1.0, float(np.abs(diff).max()))
    rng = np.random.default_rng(seed)
    hits = 0
    done = 0
    while done < permutations:
        m = min(chunk, permutations - done)
        signs = rng.integers(0, 2, size=(m, n), dtype=np.int8) * 2 - 1
        means = np.abs(signs @ diff) / n
        hits += int(np.count_nonzero(means >= observed - tolerance))
        done += m
    return TestResult(
        p_value=(hits + 1) / (permutations + 1),
        mean_a=float(x.mean()),
        mean_b=float(y.mean()),
        delta=float(diff.mean()),
        queries=n,
        permutations=permutations,
        seed=seed,
    )


def max_randomization_test(candidates: Mapping[str, Mapping[str, float]], baseline: Mapping[str, float],
                           permutations: int = DEFAULT_PERMUTATIONS, seed: int = DEFAULT_SEED,
                           chunk: int = 500) -> dict:
    """Is the best of several candidates better than ``baseline``, given that it was picked as the best?

    Westfall-Young max-statistic version of the paired randomization test: each permutation flips the sign of
    every query's difference (the same flips for all candidates, so their correlation is kept) and records the
    largest mean difference of any candidate; the p-value is the share of permutations whose maximum reaches the
    best candidate's observed mean difference (one-sided: only gains count). Choosing among many candidates on the
    same queries no longer looks significant by chance. Returns the best candidate, its delta and p."""
    import numpy as np

    if not candidates:
        raise ValueError("no candidates to test")
    names = list(candidates)
    keys = sorted(baseline)
    for name in names:
        if set(candidates[name]) != set(keys):
            raise ValueError(f"candidate {name!r} is scored on other queries than the baseline")
    base = np.array([baseline[k] for k in keys], float)
    diffs = np.array([[candidates[n][k] for k in keys] for n in names], float) - base  # [candidates, queries]
    n = len(keys)
    if n == 0:
        raise ValueError("no queries to compare")
    observed = diffs.mean(axis=1)
    best = int(np.argmax(observed))
    target = observed[best]
    tolerance = 1e-12 * max(1.0, float(np.abs(diffs).max()))
    rng = np.random.default_rng(seed)
    hits = done = 0
    while done < permutations:
        m = min(chunk, permutations - done)
        signs = (rng.integers(0, 2, size=(n, m), dtype=np.int8) * 2 - 1).astype(float)
        maxima = (diffs @ signs / n).max(axis=0)
        hits += int(np.count_nonzero(maxima >= target - tolerance))
        done += m
    return {"best": names[best], "delta": round(float(target), 4), "p_value": round((hits + 1) / (permutations + 1), 4),
            "candidates": len(names), "queries": n, "permutations": permutations, "seed": seed,
            "test": "max-statistic paired randomization (Westfall-Young), one-sided"}
