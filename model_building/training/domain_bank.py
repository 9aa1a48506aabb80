"""Build a trained model's domain bank (``domain.json`` + ``manifest.domain``) from its training run's queries.

Trained models: the reranker (the server reports the check in ``RerankResponse.domain``) and the SESA
concept head (``Embedding.concept_domain`` of each query).

The bank holds the run's *train* query texts; the threshold is a low percentile (default 5th) of the
k-NN similarity of the run's held-out *dev* queries to them, computed by the server with the encoder
it serves. So about 95% of queries like the ones the blend or fusion weight was chosen on pass, and
the rule never looks at any evaluation collection. See ``inference_server.runtime.domain``.

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
from inference_server.runtime.domain import DOMAIN_FILE, calibrate, write_queries

log = logging.getLogger(__name__)

DEFAULT_K = 10
DEFAULT_PERCENTILE = 5.0


def write_domain_bank(model_dir: str | Path, train: list[str], dev: list[str], spec: dict[str, Any]) -> dict[str, Any]:
    """Save ``domain.json`` (the train and dev query texts) into a model dir and record ``spec`` (+ the file's
    sha256) in its manifest; returns the updated manifest."""
    out = Path(model_dir)
    path = out / DOMAIN_FILE
    write_queries(path, train, dev)
    mpath = out / "manifest.json"
    manifest = json.loads(mpath.read_text(encoding="utf-8"))
    manifest["domain"] = {"file": DOMAIN_FILE, **spec}
    manifest.setdefault("files", {})[DOMAIN_FILE] = {"sha256": paths.sha256_file(path), "bytes": path.stat().st_size}
    mpath.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def build_for_run(model_dir: str | Path, ds: Any, cache: Any, train_q: Sequence[str], dev_q: Sequence[str],
                  encoder_id: str, k: int = DEFAULT_K, percentile: float = DEFAULT_PERCENTILE) -> dict[str, Any]:
    """Write a run's train and dev query texts as the model's bank and return its spec; the threshold these
    give with the training tools' (fp32) embeddings is recorded for reference (servers recompute it)."""
    from model_building.training.embeddings import QueryEmbeddings

    qe = QueryEmbeddings(ds, cache)
    _, threshold, dev_sims = calibrate(qe(list(train_q)), qe(list(dev_q)), k, percentile)
    spec = {"k": k, "percentile": percentile, "queries": {"train": len(train_q), "dev": len(dev_q)},
            "reference": f"{len(train_q)} {ds.name} train queries",
            "threshold_fp32": round(threshold, 4), "encoder_fp32": encoder_id,
            "threshold_rule": f"{percentile:g}th percentile of the k-NN similarity of the {len(dev_q)} held-out "
                              f"dev queries to the {len(train_q)} train queries, computed by the serving encoder at "
                              f"start-up (with {encoder_id} in fp32: {threshold:.4f}, dev median "
                              f"{float(np.median(dev_sims)):.3f})",
            "licence": "query texts of the training data (see the model's licence field)",
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    write_domain_bank(model_dir, [ds.queries[q] for q in train_q], [ds.queries[q] for q in dev_q], spec)
    log.info("domain bank: %s, k %d, threshold %.4f with the fp32 encoder", spec["reference"], k, threshold)
    return spec


def add_domain_bank(model_dir: str | Path, dataset: str | Path, *, k: int = DEFAULT_K,
                    percentile: float = DEFAULT_PERCENTILE, encoder: Any = None, cache_dir: str | Path | None = None,
                    show_progress: bool = True) -> dict[str, Any]:
    """Give an already trained reranker or concept-head dir its bank, from the same train/dev split its
    training run used (read from its manifest's recipe)."""
    from ir.splits import train_dev_queries
    from model_building.training.data import load_beir
    from model_building.training.embeddings import EmbeddingCache, load_server_encoder

    manifest_path = Path(model_dir) / "manifest.json"
    if not manifest_path.is_file():
        raise ValueError(f"{model_dir}: no manifest.json (not a trained reranker or concept-space dir)")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if manifest.get("role") == "reranker":
        from model_building.training.reranker import RerankerTrainConfig

        rc = RerankerTrainConfig.from_manifest(manifest)
        split = (rc.dev_fraction, rc.dev_seed, rc.limit_queries, rc.limit_docs)
    elif manifest.get("kind") == "trained" and "recipe" in manifest:
        from model_building.training.concept_head_training import ConceptTrainConfig

        cc = ConceptTrainConfig.from_manifest(manifest)
        split = (cc.dev_fraction, cc.dev_seed, cc.limit_queries, cc.limit_docs)
    else:
        raise ValueError(f"{model_dir}: not a trained reranker or concept head (manifest role "
                         f"{manifest.get('role')!r}, kind {manifest.get('kind')!r}; zero-shot packs have no "
                         "training queries)")
    encoder = encoder or load_server_encoder()
    cache = EmbeddingCache(encoder, cache_dir, show_progress=show_progress)
    ds = load_beir(dataset, limit_docs=split[3])
    train_q, dev_q = train_dev_queries(ds, split[0], split[1], split[2])
    return build_for_run(model_dir, ds, cache, train_q, dev_q, encoder.meta.model_id, k, percentile)
