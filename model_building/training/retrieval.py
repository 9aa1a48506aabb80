"""Exact retrieval in numpy (dense, concept, BM25), min-max fusion and ranx evaluation.

A *run* here is ``{qid: (doc_indices, scores)}``, best first. Fusion follows the project's
reference (OpenSearch normalization-processor semantics, ``ir/fusion.py``): per
query each branch's window (its top ``window`` results) is min-max normalised, a document
missing from a window counts 0, fused = weighted mean.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

Run = dict[str, tuple[np.ndarray, np.ndarray]]


def top_k_rows(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the indices and values of the k largest, best first."""
    k = min(k, scores.shape[1])
    if k < scores.shape[1]:
        idx = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        idx = np.tile(np.arange(scores.shape[1]), (scores.shape[0], 1))
    vals = np.take_along_axis(scores, idx, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    return np.take_along_axis(idx, order, axis=1), np.take_along_axis(vals, order, axis=1)


def dense_run(qids: Sequence[str], q_emb: np.ndarray, d_emb: np.ndarray, k: int = 100, chunk: int = 256) -> Run:
    out: Run = {}
    for s in range(0, len(qids), chunk):
        sims = q_emb[s:s + chunk] @ d_emb.T
        idx, vals = top_k_rows(sims, k)
        for j, q in enumerate(qids[s:s + chunk]):
            out[q] = (idx[j], vals[j])
    return out


def sparse_matrix(hits: Iterable, n_cols: int):
    """CSR matrix [n_texts, n_concepts] from a list of ConceptHits (indices, weights)."""
    from scipy import sparse

    rows, cols, vals = [], [], []
    n = 0
    for i, h in enumerate(hits):
        rows.append(np.full(len(h.indices), i, dtype=np.int64))
        cols.append(np.asarray(h.indices, dtype=np.int64))
        vals.append(np.asarray(h.weights, dtype=np.float32))
        n = i + 1
    if n == 0:
        return sparse.csr_matrix((0, n_cols), dtype=np.float32)
    return sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                             shape=(n, n_cols), dtype=np.float32)


def concept_vectors(head, emb: np.ndarray, k: int = 32, chunk: int = 512):
    """Sparse top-k concept vectors exactly as the server computes them (ConceptHead.top_k)."""
    from scipy import sparse

    parts = [sparse_matrix(head.top_k(emb[s:s + chunk], k), head.size) for s in range(0, len(emb), chunk)]
    return sparse.vstack(parts).tocsr() if parts else sparse_matrix([], head.size)


def sparse_run(qids: Sequence[str], q_vecs, d_vecs, k: int = 100, chunk: int = 256) -> Run:
    """Exact dot-product search of sparse query vectors over sparse document vectors."""
    out: Run = {}
    dt = d_vecs.T.tocsc()
    for s in range(0, len(qids), chunk):
        sims = np.asarray((q_vecs[s:s + chunk] @ dt).todense(), dtype=np.float32)
        idx, vals = top_k_rows(sims, k)
        for j, q in enumerate(qids[s:s + chunk]):
            keep = vals[j] > 0
            out[q] = (idx[j][keep], vals[j][keep])
    return out


def bm25_run(bm25, qids: Sequence[str], queries: Mapping[str, str], k: int = 100) -> Run:
    return {q: bm25.search(queries[q], k) for q in qids}


def min_max_window(scores: np.ndarray, min_range: float = 0.05) -> np.ndarray:
    """The project's min-max rule (ir/fusion.py): range floored at 5% of the top score."""
    if len(scores) == 0:
        return scores
    hi, lo = float(scores.max()), float(scores.min())
    rng = max(hi - lo, min_range * abs(hi))
    if rng <= 0:
        return np.ones_like(scores)
    return np.clip(1.0 - (hi - scores) / rng, 0.0, 1.0)


def fuse_min_max(runs: Sequence[Run], weights: Sequence[float], window: int = 100, k: int = 100) -> Run:
    total = float(sum(weights))
    if total <= 0:
        raise ValueError("fusion weights are all 0")
    out: Run = {}
    qids = set().union(*[r.keys() for r in runs])
    for q in qids:
        acc: dict[int, float] = {}
        for r, w in zip(runs, weights):
            if w == 0 or q not in r:
                continue
            idx, s = r[q]
            idx, s = idx[:window], s[:window]
            for d, v in zip(idx.tolist(), min_max_window(np.asarray(s, np.float64)).tolist()):
                acc[d] = acc.get(d, 0.0) + w * v / total
        if not acc:
            out[q] = (np.zeros(0, np.int64), np.zeros(0, np.float32))
            continue
        items = sorted(acc.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
        out[q] = (np.array([d for d, _ in items], np.int64), np.array([v for _, v in items], np.float32))
    return out


def to_ranx_run(run: Run, doc_ids: Sequence[str]) -> dict[str, dict[str, float]]:
    out = {}
    for q, (idx, s) in run.items():
        n = len(idx)
        # ranx sorts by score; add a tiny rank-based tie-breaker so our order is kept
        out[q] = {doc_ids[int(d)]: float(v) + (n - i) * 1e-9 for i, (d, v) in enumerate(zip(idx, s))}
        if not out[q]:
            out[q] = {"__none__": 0.0}
    return out


def evaluate(qrels: Mapping[str, Mapping[str, int]], run: Run, doc_ids: Sequence[str],
             metrics: Sequence[str] = ("ndcg@10",)) -> dict[str, float]:
    """ranx metrics over the judged queries of ``qrels`` (queries missing from the run score 0)."""
    from ranx import Qrels
    from ranx import Run as RanxRun
    from ranx import evaluate as rx_evaluate

    qr = {q: {d: int(g) for d, g in docs.items()} for q, docs in qrels.items() if any(g > 0 for g in docs.values())}
    rr = to_ranx_run({q: run[q] for q in qr if q in run}, doc_ids)
    for q in qr:
        rr.setdefault(q, {"__none__": 0.0})
    res = rx_evaluate(Qrels(qr), RanxRun(rr), list(metrics), make_comparable=True)
    if isinstance(res, float):
        res = {metrics[0]: res}
    return {m: round(float(v), 4) for m, v in res.items()}


def per_query_ndcg(qrels: Mapping[str, Mapping[str, int]], run: Run, doc_ids: Sequence[str], k: int = 10) -> dict[str, float]:
    """nDCG@k per query (exponential-free ranx definition: gain = grade), for model selection."""
    out = {}
    for q, docs in qrels.items():
        rel = {d: g for d, g in docs.items() if g > 0}
        if not rel:
            continue
        idx = run.get(q, (np.zeros(0, np.int64), None))[0][:k]
        dcg = sum(rel.get(doc_ids[int(d)], 0) / np.log2(i + 2) for i, d in enumerate(idx))
        ideal = sorted(rel.values(), reverse=True)[:k]
        idcg = sum(g / np.log2(i + 2) for i, g in enumerate(ideal))
        out[q] = dcg / idcg if idcg > 0 else 0.0
    return out


def mean_ndcg(qrels: Mapping[str, Mapping[str, int]], run: Run, doc_ids: Sequence[str], k: int = 10) -> float:
    v = per_query_ndcg(qrels, run, doc_ids, k)
    return float(np.mean(list(v.values()))) if v else 0.0
