"""Retrieval metrics with ranx: nDCG@10, Recall@100, MRR@10, kept per query.

- Judgements with grade > 0 are relevant; graded judgements are used as graded gains (ranx's `ndcg`
  is Järvelin & Kekäläinen's: gain = grade, discount = log2(rank + 1), as trec_eval and BEIR).
- Recall@100 and MRR@10 count any grade > 0 as relevant.
- A run is evaluated by its ranking as returned by the cluster (scores become rank-derived values, so
  ties are broken exactly as OpenSearch broke them).
- Every judged query counts: a query with no hits scores 0 on every metric.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

METRICS: tuple[str, ...] = ("ndcg@10", "recall@100", "mrr@10")
PRIMARY = "ndcg@10"
LABELS = {"ndcg@10": "nDCG@10", "recall@100": "Recall@100", "mrr@10": "MRR@10"}


@dataclass
class Evaluation:
    mean: dict[str, float]
    per_query: dict[str, dict[str, float]]  # metric -> query id -> score
    queries: int
    metrics: tuple[str, ...] = field(default=METRICS)

    def to_dict(self) -> dict:
        return {"mean": self.mean, "per_query": self.per_query, "queries": self.queries}


def relevant_qrels(qrels: Mapping[str, Mapping[str, int]]) -> dict[str, dict[str, int]]:
    """Only grades > 0; queries without any relevant document are dropped."""
    out: dict[str, dict[str, int]] = {}
    for qid, docs in qrels.items():
        rel = {str(d): int(g) for d, g in docs.items() if int(g) > 0}
        if rel:
            out[str(qid)] = rel
    return out


def run_from_rankings(rankings: Mapping[str, Sequence[str]]) -> dict[str, dict[str, float]]:
    """{qid: [doc ids, best first]} -> {qid: {doc id: score}} with strictly decreasing scores; a doc id
    repeated in a ranking keeps its first (best) position."""
    run: dict[str, dict[str, float]] = {}
    for qid, docs in rankings.items():
        scores: dict[str, float] = {}
        for rank, doc in enumerate(docs):
            scores.setdefault(str(doc), float(len(docs) - rank))
        run[str(qid)] = scores
    return run


def evaluate(qrels: Mapping[str, Mapping[str, int]], rankings: Mapping[str, Sequence[str]],
             metrics: Sequence[str] = METRICS) -> Evaluation:
    """Mean and per-query scores over the judged queries of `qrels` (queries of `rankings` without
    judgements are ignored)."""
    from ranx import Qrels, Run
    from ranx import evaluate as ranx_evaluate

    judged = relevant_qrels(qrels)
    if not judged:
        raise ValueError("no judged queries (no judgement with a grade > 0)")
    run = run_from_rankings({q: docs for q, docs in rankings.items() if q in judged and len(docs) > 0})
    per_query: dict[str, dict[str, float]] = {m: {q: 0.0 for q in judged} for m in metrics}
    if run:
        sub_qrels = {q: judged[q] for q in run}
        ranx_run = Run.from_dict(run)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numba's type-safety notes on first compilation
            ranx_evaluate(Qrels.from_dict(sub_qrels), ranx_run, list(metrics), make_comparable=True)
        for m in metrics:
            for q, value in ranx_run.scores[m].items():
                per_query[m][q] = float(value)
    mean = {m: sum(per_query[m].values()) / len(judged) for m in metrics}
    return Evaluation(mean=mean, per_query=per_query, queries=len(judged), metrics=tuple(metrics))


# -- concept assignment (skill extraction) ------------------------------------------------------------------

CONCEPT_METRICS: tuple[str, ...] = ("rp@5", "rp@10", "mrr")
LABELS.update({"rp@5": "RP@5", "rp@10": "RP@10", "mrr": "MRR"})


def r_precision_at(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    """|top-k ∩ relevant| / min(k, |relevant|): the skill-extraction literature's R-Precision@k (Decorte et al.)."""
    if not relevant:
        raise ValueError("R-Precision needs at least one relevant item")
    return len(set(ranked[:k]) & relevant) / min(k, len(relevant))


def reciprocal_rank(ranked: Sequence[str], relevant: set[str]) -> float:
    """1 / rank of the first relevant item in ``ranked`` (0 when none is in it)."""
    for rank, item in enumerate(ranked, 1):
        if item in relevant:
            return 1.0 / rank
    return 0.0


def evaluate_concepts(qrels: Mapping[str, Mapping[str, int]], rankings: Mapping[str, Sequence[str]]) -> Evaluation:
    """RP@5, RP@10 and MRR of ranked concept ids over every text with at least one annotated concept (a text
    without a ranking scores 0)."""
    judged = relevant_qrels(qrels)
    if not judged:
        raise ValueError("no annotated texts (no judgement with a grade > 0)")
    per_query: dict[str, dict[str, float]] = {m: {} for m in CONCEPT_METRICS}
    for qid, rel in judged.items():
        ranked = list(rankings.get(qid, ()))
        relevant = set(rel)
        per_query["rp@5"][qid] = r_precision_at(ranked, relevant, 5)
        per_query["rp@10"][qid] = r_precision_at(ranked, relevant, 10)
        per_query["mrr"][qid] = reciprocal_rank(ranked, relevant)
    mean = {m: sum(v.values()) / len(judged) for m, v in per_query.items()}
    return Evaluation(mean=mean, per_query=per_query, queries=len(judged), metrics=CONCEPT_METRICS)
