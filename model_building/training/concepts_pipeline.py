"""``sesa-server train concepts``: data -> cached embeddings -> trained head -> artifact -> metrics.

Evaluation uses the written artifact through ``ConceptHead.load(...).top_k`` (the server's own
code path, float16 matrix included), exact dot-product search over the whole corpus, and ranx
nDCG@10 on the TEST qrels; fusion weights are chosen on held-out TRAIN queries only.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ir.splits import train_dev_queries
from model_building.training.concept_head_training import (
    ConceptTrainConfig,
    TrainingSet,
    config_dict,
    label_agreement,
    mine_hard_negatives,
    train_head,
    truthfulness,
    write_trained_artifact,
)
from model_building.training.data import BeirDataset, load_beir, self_supervised_pairs, training_pairs
from model_building.training.domain_bank import build_for_run
from model_building.training.embeddings import EmbeddingCache, load_server_encoder, QueryEmbeddings

log = logging.getLogger(__name__)


def zero_shot_rows(entries: list, vocab: str, encoder: Any, cache: EmbeddingCache) -> np.ndarray:
    """The zero-shot head rows: the server's cached built-in artifact when it matches, else embed."""
    from inference_server.runtime.concept_space import BUILTIN_PACKS, builtin_artifact_dir

    if vocab in BUILTIN_PACKS:
        d = builtin_artifact_dir(vocab, encoder.meta.version)
        if (d / "manifest.json").is_file():
            from inference_server.runtime.concept_head import ConceptHead

            head = ConceptHead.load(d)
            keys = [e.key for e in entries]
            if head.keys[: len(keys)] == keys:
                log.info("zero-shot rows from the server's cached artifact %s", d)
                return np.ascontiguousarray(head.matrix[: len(keys)], dtype=np.float32)
    m = cache.embed([e.embedding_text() for e in entries], query=False, desc=f"concepts {vocab}")
    return (m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def build_training_set(ds: BeirDataset, train_qids: list[str], d_emb: np.ndarray, qe: QueryEmbeddings,
                       cache: EmbeddingCache, cfg: ConceptTrainConfig, bm25: Any) -> TrainingSet:
    pairs = [p for p in training_pairs(ds, "train") if p.qid in set(train_qids)]
    positives_of: dict[str, set[int]] = {}
    for p in pairs:
        positives_of.setdefault(p.qid, set()).add(p.doc)
    sup = pairs * max(1, cfg.supervised_repeat)
    ss = self_supervised_pairs(ds, cfg.n_title, cfg.n_ict, seed=cfg.seed)
    q_sup = qe([p.qid for p in sup]) if sup else np.zeros((0, d_emb.shape[1]), np.float32)
    q_ss = cache.embed([p.query for p in ss], query=True, desc="self-supervised queries") if ss else \
        np.zeros((0, d_emb.shape[1]), np.float32)
    positives = [frozenset(positives_of[p.qid]) for p in sup] + [frozenset([p.doc]) for p in ss]
    bm_lists: dict[str, np.ndarray] = {}
    for q in positives_of:
        bm_lists[q] = bm25.search(ds.queries[q], cfg.hard_pool + 8)[0]
    bm = [bm_lists[p.qid] for p in sup] + [None] * len(ss)
    q_all = np.concatenate([q_sup, q_ss]).astype(np.float32)
    hard = mine_hard_negatives(q_all, d_emb, positives, cfg.hard_pool, bm)
    counts = {"qrels_pairs": len(pairs), "qrels_pairs_repeated": len(sup),
              "title_pairs": sum(p.source == "title" for p in ss), "ict_pairs": sum(p.source == "ict" for p in ss),
              "train_queries": len(positives_of)}
    return TrainingSet(q_all, np.array([p.doc for p in sup + ss], dtype=np.int64), positives, hard,
                       [p.source for p in sup + ss], counts)


# --- evaluation -------------------------------------------------------------------------------------


class EvalSet:
    """One dataset ready for evaluation: embeddings, BM25 and dense runs (computed once)."""

    def __init__(self, ds: BeirDataset, cache: EmbeddingCache, split: str, k: int = 100):
        from model_building.training.bm25 import BM25
        from model_building.training.retrieval import bm25_run, dense_run

        self.ds = ds
        self.qrels = ds.split(split)
        self.qids = sorted(q for q in self.qrels if q in ds.queries)
        self.qe = QueryEmbeddings(ds, cache)
        self.d_emb = cache.embed(ds.doc_texts, query=False, desc=f"{ds.name} docs")
        self.q_emb = self.qe(self.qids)
        self.bm25 = BM25(ds.doc_texts)
        self.runs = {"bm25": bm25_run(self.bm25, self.qids, ds.queries, k),
                     "dense": dense_run(self.qids, self.q_emb, self.d_emb, k)}

    def concept_run(self, head: Any, top_k: int, k: int = 100):
        from model_building.training.retrieval import concept_vectors, sparse_run

        dv = concept_vectors(head, self.d_emb, top_k)
        qv = concept_vectors(head, self.q_emb, top_k)
        return sparse_run(self.qids, qv, dv, k), dv, qv

    def ndcg(self, run) -> float:
        from model_building.training.retrieval import evaluate

        return evaluate(self.qrels, run, self.ds.doc_ids)["ndcg@10"]


def choose_concept_weight(runs: dict[str, Any], qrels: dict, doc_ids: list[str], step: float = 0.05,
                          max_weight: float = 0.5) -> tuple[dict, float]:
    """One free parameter instead of two: BM25 and dense keep equal weights and the concept branch gets
    ``w`` (the rest split evenly), ``w`` chosen on held-out train queries, ties to the smaller ``w``.
    Why: a 3-weight grid on ~120 dev queries overfits (it dropped the dense branch and lost on test);
    one parameter, starting from the plain BM25 + dense hybrid at w = 0, cannot stray as far."""
    from model_building.training.retrieval import fuse_min_max, mean_ndcg

    names = ["bm25", "dense", "concepts"]
    best: tuple[float, float] = (-1.0, 0.0)
    for i in range(round(max_weight / step) + 1):
        w = round(i * step, 4)
        ws = ((1 - w) / 2, (1 - w) / 2, w)
        score = mean_ndcg(qrels, fuse_min_max([runs[n] for n in names], ws), doc_ids)
        if score > best[0] + 1e-9:
            best = (score, w)
    w = best[1]
    return {"bm25": round((1 - w) / 2, 4), "dense": round((1 - w) / 2, 4), "concepts": w}, round(best[0], 4)


def dev_runs(dataset: str | Path, head: Any, top_k: int = 32, dev_fraction: float = 0.15, dev_seed: int = 13,
             encoder: Any = None, cache_dir: str | Path | None = None) -> tuple[dict[str, Any], dict, list[str]]:
    """BM25, dense and concept runs of the held-out train queries (the split ``train concepts`` made)."""
    from model_building.training.bm25 import BM25
    from model_building.training.retrieval import bm25_run, concept_vectors, dense_run, sparse_run

    encoder = encoder or load_server_encoder()
    cache = EmbeddingCache(encoder, cache_dir, show_progress=False)
    ds = load_beir(dataset)
    d_emb = cache.embed(ds.doc_texts, query=False, desc=f"{ds.name} docs")
    qe = QueryEmbeddings(ds, cache)
    _, dev_q = train_dev_queries(ds, dev_fraction, dev_seed)
    dq = qe(dev_q)
    runs = {"bm25": bm25_run(BM25(ds.doc_texts), dev_q, ds.queries), "dense": dense_run(dev_q, dq, d_emb),
            "concepts": sparse_run(dev_q, concept_vectors(head, dq, top_k), concept_vectors(head, d_emb, top_k))}
    return runs, {q: ds.split("train")[q] for q in dev_q}, ds.doc_ids


def choose_fusion_weights(runs: dict[str, Any], qrels: dict, doc_ids: list[str], step: float = 0.1) -> tuple[dict, float]:
    """Grid search of min-max weights (bm25, dense, concepts) on the simplex; best mean nDCG@10."""
    from model_building.training.retrieval import fuse_min_max, mean_ndcg

    names = ["bm25", "dense", "concepts"]
    grid = [round(i * step, 3) for i in range(round(1 / step) + 1)]
    best: tuple[float, tuple] = (-1.0, (0.5, 0.5, 0.0))
    for wb, wd in itertools.product(grid, grid):
        wc = round(1.0 - wb - wd, 3)
        if wc < -1e-9:
            continue
        ws = (wb, wd, max(0.0, wc))
        score = mean_ndcg(qrels, fuse_min_max([runs[n] for n in names], ws), doc_ids)
        if score > best[0] + 1e-9:
            best = (score, ws)
    return dict(zip(names, best[1])), round(best[0], 4)


def evaluate_heads(evalsets: dict[str, EvalSet], heads: dict[str, Any], top_k: int,
                   fusion_weights: dict[str, float] | None) -> dict[str, Any]:
    from model_building.training.retrieval import fuse_min_max

    out: dict[str, Any] = {}
    for name, es in evalsets.items():
        row: dict[str, Any] = {"queries": len(es.qids), "docs": len(es.ds.doc_ids)}
        row["bm25"] = es.ndcg(es.runs["bm25"])
        row["dense"] = es.ndcg(es.runs["dense"])
        row["hybrid_bm25_dense_w0.5"] = es.ndcg(fuse_min_max([es.runs["bm25"], es.runs["dense"]], [0.5, 0.5]))
        for hname, head in heads.items():
            run, dv, _ = es.concept_run(head, top_k)
            row[f"concepts_{hname}"] = es.ndcg(run)
            row[f"concepts_{hname}_nnz_doc"] = round(float(dv.getnnz(axis=1).mean()), 1)
            if fusion_weights:
                ws = [fusion_weights["bm25"], fusion_weights["dense"], fusion_weights["concepts"]]
                row[f"hybrid3_{hname}"] = es.ndcg(fuse_min_max([es.runs["bm25"], es.runs["dense"], run], ws))
        out[name] = row
    return out


def train_concepts(dataset: str | Path, vocab: str = "esco-skills", out: str | Path | None = None,
                   cfg: ConceptTrainConfig | None = None, *, encoder: Any = None,
                   cache_dir: str | Path | None = None, eval_dirs: Sequence[str | Path] = (),
                   name: str | None = None, show_progress: bool = True) -> dict[str, Any]:
    """The whole recipe; returns the manifest (metrics included) and writes the artifact."""
    import torch

    from inference_server.runtime.concept_head import ConceptHead
    from model_building.concept_packs.build import load_vocabulary
    from model_building.training.bm25 import BM25

    cfg = cfg or ConceptTrainConfig()
    t_all = time.perf_counter()
    torch.set_num_threads(max(1, cfg.threads))
    encoder = encoder or load_server_encoder()
    cache = EmbeddingCache(encoder, cache_dir, show_progress=show_progress)
    ds = load_beir(dataset, limit_docs=cfg.limit_docs)
    entries, vmeta, vname = load_vocabulary(vocab, limit=cfg.vocab_limit)
    anchor = zero_shot_rows(entries, vocab, encoder, cache)
    d_emb = cache.embed(ds.doc_texts, query=False, desc=f"{ds.name} docs")
    qe = QueryEmbeddings(ds, cache)

    train_q, dev_q = train_dev_queries(ds, cfg.dev_fraction, cfg.dev_seed, cfg.limit_queries)
    bm25 = BM25(ds.doc_texts)
    ts = build_training_set(ds, train_q, d_emb, qe, cache, cfg, bm25)
    log.info("training set: %s, %d pairs, dev %d queries", ts.counts, len(ts.pos), len(dev_q))
    dev_qrels = {q: ds.split("train")[q] for q in dev_q}
    dev = (qe(dev_q), dev_q, dev_qrels, ds.doc_ids) if dev_q else None
    w, history = train_head(anchor, d_emb, ts, cfg, dev)
    truth = truthfulness(w, anchor, sample=min(2000, len(w)), seed=cfg.seed)
    truth_zero = truthfulness(anchor, anchor, sample=min(2000, len(w)), seed=cfg.seed)
    sample = np.random.default_rng(0).choice(len(d_emb), size=min(1000, len(d_emb)), replace=False)
    truth["labels_on_corpus_docs"] = label_agreement(w, anchor, d_emb[sample], cfg.top_k)

    # fusion weights: held-out train queries only
    fusion, fusion_dev = None, None
    tmp_head = ConceptHead(w.astype(np.float16).astype(np.float32), [e.key for e in entries],
                           [e.label for e in entries], name="tmp", use_ort=False)
    if dev_q:
        from model_building.training.retrieval import bm25_run, concept_vectors, dense_run, sparse_run

        dq = qe(dev_q)
        runs = {"bm25": bm25_run(bm25, dev_q, ds.queries), "dense": dense_run(dev_q, dq, d_emb),
                "concepts": sparse_run(dev_q, concept_vectors(tmp_head, dq, cfg.top_k),
                                       concept_vectors(tmp_head, d_emb, cfg.top_k))}
        fusion, fusion_dev = choose_fusion_weights(runs, dev_qrels, ds.doc_ids)
        log.info("fusion weights chosen on %d dev queries: %s (dev nDCG@10 %.4f)", len(dev_q), fusion, fusion_dev)

    name = name or f"{vname}-sesa-{ds.name}"
    out = Path(out) if out else Path("models") / name
    manifest_extra = {
        "version_prefix": f"{ds.name}-1",
        "base_vocabulary": {"name": vname, "size": len(entries), **vmeta},
        "licence": vmeta.get("licence", "see base vocabulary") + "; trained head: Apache-2.0 (opensearch-sesa)",
        "recipe": {
            "objective": "softmax CE over scale*dot(topk(relu(W e_q)), topk(relu(W e_d))) with in-batch + hard "
                         "negatives; + l1 * L1(relu(W e)) + anchor * sum ||W_c - desc_c||^2 / dim",
            "encoder_frozen": True,
            "init": "zero-shot rows (normalised description embeddings)",
            "config": config_dict(cfg),
            "command": None,
        },
        "data": {
            "dataset": str(Path(dataset)),
            "dataset_sha256": ds.fingerprint(),
            "splits_used": ["train (qrels, minus held-out dev)", "corpus text (self-supervised)"],
            "test_qrels_used_for_training": False,
            "dev_queries": len(dev_q),
            **ts.counts,
            "hard_negatives": f"dense top-{cfg.hard_pool} and BM25 top-{cfg.hard_pool} of each train query, "
                              "dense top for self-supervised queries; judged positives excluded",
        },
        "seed": cfg.seed,
        "training": history,
        "truthfulness": {"trained": truth, "zero_shot": truth_zero},
        "fusion": {"technique": "min_max (window 100)", "weights": fusion, "chosen_on": f"{len(dev_q)} held-out "
                   "train queries", "dev_ndcg10": fusion_dev},
    }
    path = write_trained_artifact(out, w, entries, encoder.meta, name=name,
                                  passage_max_tokens=encoder.passage_max_tokens, extra=manifest_extra)
    if dev_q:
        build_for_run(path, ds, cache, train_q, dev_q, encoder.meta.model_id)
    head = ConceptHead.load(path)
    zero = ConceptHead(anchor, [e.key for e in entries], [e.label for e in entries], name="zero-shot")
    evalsets = {f"{ds.name}-test": EvalSet(ds, cache, "test")} if "test" in ds.qrels else {}
    for d in eval_dirs:
        eds = load_beir(d)
        evalsets[eds.name] = EvalSet(eds, cache, eds.eval_split)
    metrics = evaluate_heads(evalsets, {"trained": head, "zero_shot": zero}, cfg.top_k, fusion)
    manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    manifest["metrics"] = {"ndcg@10": metrics, "top_k": cfg.top_k,
                           "how": "exact dot-product search over each corpus with ConceptHead.top_k vectors of "
                                  "the shipped artifact; ranx nDCG@10 on test qrels"}
    manifest["total_seconds"] = round(time.perf_counter() - t_all, 1)
    (path / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest
