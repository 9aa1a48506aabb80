"""Exact retrieval in numpy (dense, concept, BM25), min-max fusion and ranx evaluation.

A *run* here is ``{qid: (doc_indices, scores)}``, best first. Fusion follows the project's
reference (OpenSearch normalization-processor semantics, ``ir/fusion.py``): per
query each branch's window (its top ``window`` results) is min-max normalised, a document
missing from a window counts 0, fused = weighted mean.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from ir import metrics as ir_metrics
from ir.fusion import DEFAULT_MIN_RANGE, combine, min_max

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


def min_max_window(scores: np.ndarray, min_range: float = DEFAULT_MIN_RANGE) -> np.ndarray:
    """The project's min-max rule (:func:`ir.fusion.min_max`) on an array."""
    return np.asarray(min_max([float(x) for x in scores], min_range), dtype=np.float64).reshape(np.shape(scores))


def fuse_min_max(runs: Sequence[Run], weights: Sequence[float], window: int = 100, k: int = 100) -> Run:
    """Min-max fusion of runs by the project's one rule (:func:`ir.fusion.combine`, the reference of the plugin's
    ``sesa_fuse``): each run's top ``window`` normalised, weighted mean, ties to the better rank then the lower
    document index. A run of weight 0 is left out."""
    total = float(sum(weights))
    if total <= 0:
        raise ValueError("fusion weights are all 0")
    out: Run = {}
    qids = set().union(*[r.keys() for r in runs])
    for q in qids:
        windows, shares = {}, {}
        for n, (r, w) in enumerate(zip(runs, weights)):
            if w == 0 or q not in r:
                continue
            idx, s = r[q]
            windows[f"run{n}"] = list(zip(idx[:window].tolist(), np.asarray(s[:window], np.float64).tolist()))
            shares[f"run{n}"] = w / total
        fused = combine(windows, shares)[:k]
        out[q] = (np.array([d.key for d in fused], np.int64), np.array([d.fused for d in fused], np.float32))
    return out


def rankings(run: Run, doc_ids: Sequence[str]) -> dict[str, list[str]]:
    """A run as ``{qid: [doc id, best first]}``, what :func:`ir.metrics.evaluate` scores."""
    return {q: [doc_ids[int(d)] for d in idx] for q, (idx, _) in run.items()}


def evaluate(qrels: Mapping[str, Mapping[str, int]], run: Run, doc_ids: Sequence[str],
             metrics: Sequence[str] = ("ndcg@10",)) -> dict[str, float]:
    """The project's evaluator (:func:`ir.metrics.evaluate`, ranx) over the judged queries of ``qrels``
    (queries missing from the run score 0), means rounded to 4 places."""
    res = ir_metrics.evaluate(qrels, rankings(run, doc_ids), tuple(metrics))
    return {m: round(float(v), 4) for m, v in res.mean.items()}


def per_query_ndcg(qrels: Mapping[str, Mapping[str, int]], run: Run, doc_ids: Sequence[str], k: int = 10) -> dict[str, float]:
    """nDCG@k per judged query, for model selection (empty when nothing is judged relevant)."""
    if not ir_metrics.relevant_qrels(qrels):
        return {}
    return ir_metrics.evaluate(qrels, rankings(run, doc_ids), (f"ndcg@{k}",)).per_query[f"ndcg@{k}"]


def mean_ndcg(qrels: Mapping[str, Mapping[str, int]], run: Run, doc_ids: Sequence[str], k: int = 10) -> float:
    v = per_query_ndcg(qrels, run, doc_ids, k)
    return float(np.mean(list(v.values()))) if v else 0.0
