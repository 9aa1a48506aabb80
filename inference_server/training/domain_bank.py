"""Build a trained model's domain bank (``domain.npy`` + ``manifest.domain``) from its training run's queries.

Trained models: the reranker (the server reports the check in ``RerankResponse.domain``) and the SESA
concept head (``Embedding.concept_domain`` of each query).

The bank holds the embeddings of the run's *train* queries; the threshold is a low percentile
(default 5th) of the k-NN similarity of the run's held-out *dev* queries to that bank. So about 95%
of queries like the ones the blend weight was chosen on pass, and the rule never looks at any
evaluation collection. See ``inference_server.runtime.domain`` for how the server applies it.

    sesa-server train domain --model models/sesa-reranker-minilm-l6-scifact --dataset ../shared/data/scifact
    sesa-server train domain --model models/esco-skills-sesa-scifact --dataset ../shared/data/scifact
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inference_server import paths
from inference_server.runtime.domain import DOMAIN_FILE, knn_similarity, normalise

log = logging.getLogger(__name__)

DEFAULT_K = 10
DEFAULT_PERCENTILE = 5.0


def domain_bank(train_emb: np.ndarray, dev_emb: np.ndarray, k: int = DEFAULT_K,
                percentile: float = DEFAULT_PERCENTILE) -> tuple[np.ndarray, float, np.ndarray]:
    """(bank rows, threshold, dev similarities): the threshold is the ``percentile`` of the dev queries'
    mean cosine to their ``k`` nearest train queries."""
    if len(train_emb) == 0 or len(dev_emb) == 0:
        raise ValueError("a domain bank needs train and held-out dev queries (got "
                         f"{len(train_emb)} train, {len(dev_emb)} dev)")
    if not 0.0 <= percentile <= 50.0:
        raise ValueError(f"percentile must be in [0, 50], got {percentile}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    bank = normalise(train_emb)
    dev_sims = knn_similarity(normalise(dev_emb), bank, k)
    return bank, float(np.percentile(dev_sims, percentile)), dev_sims


def write_domain_bank(model_dir: str | Path, bank: np.ndarray, spec: dict[str, Any]) -> dict[str, Any]:
    """Save ``domain.npy`` (float16) into a reranker dir and record ``spec`` (+ its file's sha256) in the
    manifest; returns the updated manifest."""
    out = Path(model_dir)
    path = out / DOMAIN_FILE
    np.save(path, np.asarray(bank, dtype=np.float16), allow_pickle=False)
    mpath = out / "manifest.json"
    manifest = json.loads(mpath.read_text(encoding="utf-8"))
    manifest["domain"] = {"file": DOMAIN_FILE, **spec}
    manifest.setdefault("files", {})[DOMAIN_FILE] = {"sha256": paths.sha256_file(path), "bytes": path.stat().st_size}
    mpath.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def build_for_run(model_dir: str | Path, ds: Any, cache: Any, train_q: Sequence[str], dev_q: Sequence[str],
                  encoder_id: str, k: int = DEFAULT_K, percentile: float = DEFAULT_PERCENTILE) -> dict[str, Any]:
    """Embed a run's train and dev queries with the server's encoder, write the bank, return its spec."""
    from inference_server.training.concepts_pipeline import QueryEmbeddings

    qe = QueryEmbeddings(ds, cache)
    bank, threshold, dev_sims = domain_bank(qe(list(train_q)), qe(list(dev_q)), k, percentile)
    spec = {"k": k, "threshold": round(threshold, 4), "percentile": percentile, "queries": len(train_q),
            "encoder": encoder_id, "dimension": int(bank.shape[1]),
            "reference": f"{len(train_q)} {ds.name} train queries",
            "threshold_from": f"{percentile:g}th percentile of the k-NN similarity of {len(dev_q)} held-out dev "
                              f"queries (median {float(np.median(dev_sims)):.3f})",
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    write_domain_bank(model_dir, bank, spec)
    log.info("domain bank: %s, k %d, threshold %.4f", spec["reference"], k, threshold)
    return spec


def add_domain_bank(model_dir: str | Path, dataset: str | Path, *, k: int = DEFAULT_K,
                    percentile: float = DEFAULT_PERCENTILE, encoder: Any = None, cache_dir: str | Path | None = None,
                    show_progress: bool = True) -> dict[str, Any]:
    """Give an already trained reranker or concept-head dir its bank, from the same train/dev split its
    training run used (read from its manifest's recipe)."""
    from inference_server.training.concept_head import train_dev_queries
    from inference_server.training.data import load_beir
    from inference_server.training.embeddings import EmbeddingCache, load_server_encoder

    manifest_path = Path(model_dir) / "manifest.json"
    if not manifest_path.is_file():
        raise ValueError(f"{model_dir}: no manifest.json (not a trained reranker or concept-space dir)")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if manifest.get("role") == "reranker":
        from inference_server.training.reranker import RerankerTrainConfig

        rc = RerankerTrainConfig.from_manifest(manifest)
        split = (rc.dev_fraction, rc.dev_seed, rc.limit_queries, rc.limit_docs)
    elif manifest.get("kind") == "trained" and "recipe" in manifest:
        cc = manifest["recipe"].get("config", {})
        split = (float(cc.get("dev_fraction", 0.15)), int(cc.get("dev_seed", 13)), cc.get("limit_queries"),
                 cc.get("limit_docs"))
    else:
        raise ValueError(f"{model_dir}: not a trained reranker or concept head (manifest role "
                         f"{manifest.get('role')!r}, kind {manifest.get('kind')!r}; zero-shot packs have no "
                         "training queries)")
    encoder = encoder or load_server_encoder()
    cache = EmbeddingCache(encoder, cache_dir, show_progress=show_progress)
    ds = load_beir(dataset, limit_docs=split[3])
    train_q, dev_q = train_dev_queries(ds, split[0], split[1], split[2])
    return build_for_run(model_dir, ds, cache, train_q, dev_q, encoder.meta.model_id, k, percentile)
