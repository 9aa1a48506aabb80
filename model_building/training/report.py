"""Model-card material for a trained concept space: real explanations and top labels."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np


def concept_report(artifact: str | Path, dataset: str | Path, *, cache_dir: str | Path | None = None,
                   seed: int = 2024, n_examples: int = 5, n_docs: int = 20, encoder: Any = None,
                   split: str = "test", top_k: int | None = None) -> dict[str, Any]:
    """Five explained (query, relevant document) pairs and the top-5 labels of random documents.

    Queries are drawn with ``seed`` among the split's judged queries; for each, the relevant
    document that the concept branch ranks highest is explained. Documents for the label
    table are drawn with ``seed`` from the whole corpus.
    """
    from inference_server.runtime.concept_head import ConceptHead
    from model_building.training.embeddings import QueryEmbeddings
    from model_building.training.data import load_beir
    from model_building.training.embeddings import EmbeddingCache, load_server_encoder
    from model_building.training.explain import (
        hub_concepts,
        markdown_doc_labels,
        markdown_examples,
        random_docs,
        shared_concepts,
        top_labels,
    )
    from model_building.training.retrieval import concept_vectors

    head = ConceptHead.load(artifact)
    k = int(top_k or head.manifest.get("recipe", {}).get("config", {}).get("top_k", 32))
    encoder = encoder or load_server_encoder()
    cache = EmbeddingCache(encoder, cache_dir, show_progress=False)
    ds = load_beir(dataset)
    d_emb = cache.embed(ds.doc_texts, query=False, desc=f"{ds.name} docs")
    qe = QueryEmbeddings(ds, cache)
    qrels = ds.split(split)
    qids = list(ds.judged(split))
    picked = sorted(random.Random(seed).sample(qids, min(n_examples, len(qids))), key=lambda q: qids.index(q))
    dv = concept_vectors(head, d_emb, k)
    qv = concept_vectors(head, qe(picked), k)
    sims = np.asarray((qv @ dv.T).todense())
    index = {d: i for i, d in enumerate(ds.doc_ids)}
    examples = []
    for j, q in enumerate(picked):
        order = np.argsort(-sims[j], kind="stable")
        rank_of = {int(d): r + 1 for r, d in enumerate(order)}
        rel = [index[d] for d, g in qrels[q].items() if g > 0 and d in index]
        best = min(rel, key=lambda d: rank_of[d])
        examples.append({"qid": q, "query": ds.queries[q], "doc_id": ds.doc_ids[best], "doc": ds.doc_texts[best],
                         "relevant": True, "rank": rank_of[best],
                         "explanation": shared_concepts(head, qe([q])[0], d_emb[best], k)})
    docs = random_docs(len(ds.doc_ids), n_docs, seed)
    labels = top_labels(head, d_emb[docs], 5, k)
    rows = [{"doc_id": ds.doc_ids[i], "title": ds.titles[i] or ds.bodies[i][:80], "labels": lab}
            for i, lab in zip(docs, labels)]
    hubs = hub_concepts(labels)
    md = ("### Explanation examples\n\n" + markdown_examples(examples) + "\n\n### Top-5 concepts of "
          f"{len(rows)} random {ds.name} documents (seed {seed})\n\n" + markdown_doc_labels(rows) + "\n\n"
          "Most frequent: " + "; ".join(f"{lab} ({n} of {len(rows)} lists)" for lab, n in hubs) + "\n")
    return {"artifact": str(artifact), "name": head.name, "version": head.version, "seed": seed, "top_k": k,
            "examples": examples, "documents": rows, "hubs": [{"label": lab, "lists": n} for lab, n in hubs],
            "markdown": md}
