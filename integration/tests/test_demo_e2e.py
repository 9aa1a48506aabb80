"""`sesa up --demo` on the real stack: ESCO occupations indexed through the ingest pipeline, then profile-like
queries answered by hybrid search (reranked when the server has a reranker), each hit explained by the ESCO
skills it shares with the query. A 200-occupation slice keeps it short."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e


def test_demo_ranks_occupations_and_explains_them_with_shared_skills(stack, os_client, capsys):
    from integration import demo
    from integration.search import cluster_has_reranker, run_search

    demo.run({"node": {"url": stack.url}}, queries=("I build data pipelines in Python and SQL",), limit=200)
    out = capsys.readouterr().out
    assert "Demo: 200 ESCO occupations" in out and 'Query: "I build data pipelines in Python and SQL"' in out
    rerank = cluster_has_reranker(os_client)
    assert ("reranked by the cross-encoder where the index has evidence" in out) == rerank
    res = run_search(os_client, demo.DEMO_INDEX, "I build data pipelines in Python and SQL", mode="hybrid", size=5,
                     explain=True, rerank=rerank, source_fields=["title"])
    hits = res["hits"]["hits"]
    assert len(hits) == 5 and res["ext"]["sesa"]["degraded"] is False
    assert all(h["_source"]["title"] in out for h in hits), "the demo printed the same ranking"
    shared = [c for h in hits for c in h["fields"]["_sesa"][0]["shared_concepts"]]
    assert shared and all(c["label"] and c["contribution"] > 0 for c in shared)
    if rerank:
        # the demo index carries no evidence record (no judgements): the fused order stands and the demo says why
        info = res["ext"]["sesa"]["rerank"]
        assert info["applied"] is False and info["skipped"] == "no_evidence"
        assert all(h["fields"]["_sesa"][0].get("rerank") is None for h in hits)
        assert "(rerank skipped: no evidence that it helps on this index" in out
