"""Reference implementation of the `sesa_fuse` rules (min_max, z_score and RRF), in plain Python.

The plugin's Java code (`plugin/src/main/java/org/sesa/opensearch/search/fusion/ScoreFusion.java`) is the
implementation that serves searches. This module repeats the same rules in a few lines so that they can be read,
checked by hand (tests/tooling/test_fusion_reference.py) and used by the end-to-end suite to recompute a
response's fused scores from the raw branch scores that each hit carries in `fields._sesa`.

Input: one *window* per branch of the mode (bm25, dense, concepts): the documents that branch returned, best first,
with their raw scores. A branch that returned nothing still counts (its weight stays in the denominator).

min_max
    Per branch, over its window: ``norm(s) = 1 - (max - s) / range`` with
    ``range = max(max - min, min_range * |max|)``. A wide spread gives plain min-max. A single document, tied
    scores or a tiny gap keep a small difference instead of being stretched to 0..1 (the range never drops below
    ``min_range``, default 5%, of the top score). When the range is still 0 every document of the window gets 1.
    A document missing from a window counts 0 there. ``fused = sum_b w_b * norm_b / sum_b w_b``.
z_score
    Per branch, over its window: ``norm(s) = (s - min) / sd`` with ``sd`` the population standard deviation of the
    window's scores: a z-score shifted so the window's last document gets 0, as a document missing from the window
    does. A branch whose top stands out from its window gets more say than one whose scores are all alike (min-max
    stretches both to 0..1). When ``sd`` is 0 (one document, tied scores) every document of the window gets 1.
    ``fused = sum_b w_b * norm_b / sum_b w_b``.
rrf
    ``fused = sum_b (w_b / sum w) / (rank_constant + rank_b)``; a missing document contributes 0. rank_b is the
    1-based competition rank in the branch's window: equal raw scores share a rank (1, 2, 2, 4), so the result
    does not depend on the search engine's order among ties.
order
    Fused score descending, then the best (smallest) rank the document has in any branch, then the key
    (index name, id) ascending.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

BRANCHES = ("bm25", "dense", "concepts")
TECHNIQUES = ("min_max", "z_score", "rrf")
DEFAULT_WEIGHTS = {"bm25": 0.5, "dense": 0.5, "concepts": 0.0}  # the evidence-free default (sesa_fuse)
DEFAULT_RANK_CONSTANT = 60
DEFAULT_MIN_RANGE = 0.05


def min_max(scores: Sequence[float], min_range: float = DEFAULT_MIN_RANGE) -> list[float]:
    """Normalise one branch window (see the module comment)."""
    if not scores:
        return []
    hi, lo = max(scores), min(scores)
    rng = max(hi - lo, min_range * abs(hi))
    if rng <= 0:
        return [1.0 for _ in scores]
    return [min(1.0, max(0.0, 1.0 - (hi - s) / rng)) for s in scores]


def z_score(scores: Sequence[float]) -> list[float]:
    """Normalise one branch window by its spread (see the module comment)."""
    if not scores:
        return []
    lo, hi = min(scores), max(scores)
    if hi == lo:  # one document or tied scores (decided on the scores: rounding leaves a tiny sd)
        return [1.0 for _ in scores]
    mean = sum(scores) / len(scores)
    sd = (sum((s - mean) ** 2 for s in scores) / len(scores)) ** 0.5
    return [(s - lo) / sd for s in scores]


def normalized_weights(branches: Iterable[str], weights: Mapping[str, float]) -> dict[str, float]:
    """The weights of `branches` divided by their sum; all-zero weights are an error."""
    branches = list(branches)
    for b in branches:
        if b not in BRANCHES:
            raise ValueError(f"unknown branch {b!r}")
        if weights.get(b, 0.0) < 0:
            raise ValueError(f"weight of {b} must be >= 0")
    total = sum(weights.get(b, 0.0) for b in branches)
    if total <= 0:
        raise ValueError(f"the fusion weights of the branches {branches} are all 0: at least one must be > 0")
    return {b: weights.get(b, 0.0) / total for b in branches}


@dataclass
class Fused:
    key: Hashable
    fused: float
    raw: dict[str, float | None] = field(default_factory=dict)
    ranks: dict[str, int | None] = field(default_factory=dict)

    @property
    def best_rank(self) -> int:
        ranks = [r for r in self.ranks.values() if r]
        return min(ranks) if ranks else 1 << 31


def fuse(windows: Mapping[str, Sequence[tuple[Hashable, float]]], technique: str = "min_max",
         weights: Mapping[str, float] | None = None, rank_constant: int = DEFAULT_RANK_CONSTANT,
         min_range: float = DEFAULT_MIN_RANGE) -> list[Fused]:
    """Fuse the branch windows ``{branch: [(key, raw_score), ...] best first}``; returns the ranking."""
    for b, window in windows.items():
        scores = [s for _, s in window]
        if any(x < y for x, y in pairwise(scores)):
            raise ValueError(f"the {b} window must be sorted best first")
    if technique not in TECHNIQUES:
        raise ValueError(f"technique must be one of {TECHNIQUES}, got {technique!r}")
    if rank_constant < 1:
        raise ValueError("rank_constant must be >= 1")
    unknown = set(windows) - set(BRANCHES)
    if unknown:
        raise ValueError(f"unknown branches {sorted(unknown)}: expected {BRANCHES}")
    order = [b for b in BRANCHES if b in windows]
    w = normalized_weights(order, DEFAULT_WEIGHTS if weights is None else weights)
    fused = combine({b: windows[b] for b in order}, w, technique, rank_constant, min_range)
    for doc in fused:  # every hit names all branches, None where a branch did not return it
        doc.raw = {x: doc.raw.get(x) for x in BRANCHES}
        doc.ranks = {x: doc.ranks.get(x) for x in BRANCHES}
    return fused


def combine(windows: Mapping[str, Sequence[tuple[Hashable, float]]], weights: Mapping[str, float],
            technique: str = "min_max", rank_constant: int = DEFAULT_RANK_CONSTANT,
            min_range: float = DEFAULT_MIN_RANGE) -> list[Fused]:
    """The fusion rule itself, for windows of any names (``fuse`` checks the plugin's branch names and weights
    first; the offline tools call this with their own runs). ``weights`` must already sum to 1."""
    order = list(windows)
    docs: dict[Hashable, Fused] = {}
    for b in order:
        window = list(windows[b])
        raw = [s for _, s in window]
        norm = min_max(raw, min_range) if technique == "min_max" else z_score(raw) if technique == "z_score" else None
        rank = 0
        for r, (key, score) in enumerate(window):
            if r == 0 or score != window[r - 1][1]:
                rank = r + 1  # competition ranking: equal scores share a rank (1, 2, 2, 4)
            doc = docs.get(key)
            if doc is None:
                doc = docs[key] = Fused(key, 0.0, {x: None for x in order}, {x: None for x in order})
            if doc.ranks[b] is not None:
                continue  # a duplicate in one window keeps its better rank
            doc.raw[b] = score
            doc.ranks[b] = rank
            doc.fused += weights[b] * norm[r] if norm is not None else weights[b] / (rank_constant + rank)
    return sorted(docs.values(), key=lambda d: (-d.fused, d.best_rank, d.key))


def windows_from_hits(hits: Sequence[Mapping[str, Any]], branches: Iterable[str] = BRANCHES
                      ) -> dict[str, list[tuple[tuple[str, str], float]]]:
    """Branch windows rebuilt from the raw scores in each hit's `fields._sesa` (null = not in that window).

    Exact only when the hits are the whole candidate set (request `size` >= the response's `ext.sesa.candidates`).
    Keys are (index, id).
    """
    out: dict[str, list[tuple[tuple[str, str], float]]] = {b: [] for b in branches}
    for hit in hits:
        exp = hit.get("fields", {}).get("_sesa")
        exp = exp[0] if isinstance(exp, list) else exp
        for b, window in out.items():
            if exp and exp.get(b) is not None:
                window.append(((hit["_index"], hit["_id"]), float(exp[b])))
    for window in out.values():
        window.sort(key=lambda item: -item[1])  # stable: ties keep hit order
    return out


def blend_rerank(weight: float, rerank: Sequence[float], fused: Sequence[float]) -> list[float]:
    """The ``sesa_rerank`` blend of a reranked head (the Java ``SesaRerankProcessor`` serves it):
    ``weight * minmax(rerank) + (1 - weight) * minmax(fused)``, both min-max normalised over the head with no
    range floor (a side whose scores are all equal contributes 0). ``weight`` 1 keeps the pure rerank order."""
    if len(rerank) != len(fused):
        raise ValueError("rerank and fused scores must cover the same head")
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"rerank weight must be in [0, 1], got {weight}")
    def scaled(xs: Sequence[float]) -> list[float]:
        lo, hi = (min(xs), max(xs)) if xs else (0.0, 0.0)
        return [(x - lo) / (hi - lo) if hi > lo else 0.0 for x in xs]

    return [weight * a + (1 - weight) * b for a, b in zip(scaled(rerank), scaled(fused))]


def rerank_order(weight: float, head: Sequence[tuple[Hashable, float, float]]) -> list[Hashable]:
    """The head ``[(key, rerank score, fused score), ...]`` (fused order) ordered by :func:`blend_rerank`; ties
    keep the fused order."""
    blended = blend_rerank(weight, [r for _, r, _ in head], [f for _, _, f in head])
    order = sorted(range(len(head)), key=lambda i: (-blended[i], i))
    return [head[i][0] for i in order]
