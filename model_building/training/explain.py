"""Explanations in concept space and model-card material.

A query-document concept score is ``sum_c v_q[c] * v_d[c]`` over the concepts both keep in
their top-k; each shared concept's contribution ``v_q[c] * v_d[c]`` is what the product shows
as the reason for a match.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np


def shared_concepts(head: Any, q_emb: np.ndarray, d_emb: np.ndarray, k: int = 32, top: int = 5) -> dict[str, Any]:
    """Score and the strongest shared concepts (key, label, contribution, weights) of one pair."""
    hq, hd = head.top_k(np.stack([q_emb, d_emb]).astype(np.float32), k)
    wq = dict(zip(hq.indices.tolist(), hq.weights.tolist()))
    wd = dict(zip(hd.indices.tolist(), hd.weights.tolist()))
    both = [(c, wq[c] * wd[c]) for c in wq.keys() & wd.keys()]
    both.sort(key=lambda x: (-x[1], x[0]))
    total = float(sum(v for _, v in both))
    return {
        "score": round(total, 4),
        "shared": len(both),
        "concepts": [{"key": head.keys[c], "label": head.labels[c], "contribution": round(v, 4),
                      "share": round(v / total, 3) if total > 0 else 0.0,
                      "query_weight": round(wq[c], 4), "doc_weight": round(wd[c], 4)} for c, v in both[:top]],
    }


def top_labels(head: Any, emb: np.ndarray, n: int = 5, k: int = 32) -> list[list[tuple[str, float]]]:
    hits = head.top_k(np.asarray(emb, dtype=np.float32), k)
    return [[(head.labels[i], round(float(w), 3)) for i, w in zip(h.indices[:n], h.weights[:n])] for h in hits]


def hub_concepts(lists: Sequence[Sequence[tuple[str, float]]], top: int = 3) -> list[tuple[str, int]]:
    """The labels found in the most top-n lists, with how many lists hold each (issue 18's hub check: a concept in
    more than 3 of 20 documents' top-5 lists explains none of them)."""
    counts = Counter(label for labels in lists for label in {lab for lab, _ in labels})
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]


def random_docs(n_docs: int, n: int = 20, seed: int = 2024) -> list[int]:
    return sorted(random.Random(seed).sample(range(n_docs), min(n, n_docs)))


def _short(t: str, n: int = 140) -> str:
    t = " ".join(t.split())
    return t if len(t) <= n else t[: n - 1].rsplit(" ", 1)[0] + "…"


def markdown_examples(examples: Sequence[dict[str, Any]]) -> str:
    lines = []
    for i, ex in enumerate(examples, 1):
        lines.append(f"{i}. **Query** ({ex['qid']}): {ex['query']}  ")
        lines.append(f"   **Document** {ex['doc_id']} ({'relevant' if ex['relevant'] else 'not judged relevant'}, "
                     f"concept rank {ex['rank']}): {_short(ex['doc'])}  ")
        lines.append(f"   concept score {ex['explanation']['score']}, {ex['explanation']['shared']} shared concepts; "
                     "strongest:")
        lines.append("")
        lines.append("   | concept | key | contribution | share | w(query) | w(doc) |")
        lines.append("   |---|---|---|---|---|---|")
        for c in ex["explanation"]["concepts"]:
            lines.append(f"   | {c['label']} | `{c['key']}` | {c['contribution']} | {c['share']:.0%} | "
                         f"{c['query_weight']} | {c['doc_weight']} |")
        lines.append("")
    return "\n".join(lines)


def markdown_doc_labels(rows: Sequence[dict[str, Any]]) -> str:
    lines = ["| doc | title | top-5 concepts (weight) |", "|---|---|---|"]
    for r in rows:
        labels = "; ".join(f"{lab} ({w})" for lab, w in r["labels"])
        lines.append(f"| {r['doc_id']} | {_short(r['title'], 80)} | {labels} |")
    return "\n".join(lines)
