"""Modes -> request bodies, and the query runner's handling of unavailable modes (fake cluster)."""

from __future__ import annotations

import pytest
from eval_fakes import FakeClient
from opensearchpy.exceptions import RequestError

from integration.evaluation import modes, runner


def test_bm25_is_a_plain_multi_match_without_pipeline():
    req = modes.request("bm25", "cell growth", size=100)
    assert req.params == {}
    assert "ext" not in req.body
    mm = req.body["query"]["multi_match"]
    assert mm["query"] == "cell growth" and mm["fields"] == ["title", "text"]
    assert req.body["size"] == 100


@pytest.mark.parametrize("mode, sesa_mode, rerank", [
    ("dense", "dense", False), ("concepts", "concepts", False), ("hybrid", "hybrid", False),
    ("hybrid+rerank", "hybrid", True),
])
def test_pipeline_modes_use_ext_sesa(mode, sesa_mode, rerank):
    req = modes.request(mode, "q text", size=50)
    assert req.params == {"search_pipeline": "sesa-search"}
    sesa = req.body["ext"]["sesa"]
    assert (sesa["query_text"], sesa["mode"], sesa["rerank"]) == ("q text", sesa_mode, rerank)
    assert not sesa.get("explain")
    assert req.body["size"] == 50
    assert "query" not in req.body


def test_parse_modes():
    assert modes.parse_modes("bm25, hybrid,bm25") == ["bm25", "hybrid"]
    with pytest.raises(ValueError, match="unknown mode 'splade'"):
        modes.parse_modes("bm25,splade")
    with pytest.raises(ValueError, match="no modes"):
        modes.parse_modes(" , ")


def test_fusion_weights_go_to_the_hybrid_modes_only():
    w = modes.parse_fusion_weights("bm25=0.425, dense=0.425,concepts=0.15")
    assert w == {"bm25": 0.425, "dense": 0.425, "concepts": 0.15}
    assert modes.parse_fusion_weights("bm25=1") == {"bm25": 1.0, "dense": 0.0, "concepts": 0.0}
    assert modes.request("hybrid+rerank", "q", fusion_weights=w).body["ext"]["sesa"]["fusion"] == {"weights": w}
    assert "fusion" not in modes.request("dense", "q", fusion_weights=w).body["ext"]["sesa"]
    assert "ext" not in modes.request("bm25", "q", fusion_weights=w).body
    for bad, why in [("bm25", "BRANCH=WEIGHT"), ("splade=1", "one of"), ("bm25=x", "not a number"),
                     ("bm25=-1", ">= 0"), ("bm25=nan", ">= 0"), ("bm25=0", "at least one"),
                     ("bm25=1,bm25=2", "twice")]:
        with pytest.raises(ValueError, match=why):
            modes.parse_fusion_weights(bad)


def test_run_mode_sends_the_fusion_weights():
    seen = []
    client = FakeClient(searcher=lambda index, body, params: seen.append(body) or _hits(["d1"]))
    runner.run_mode(client, "idx", "hybrid", {"q1": "a"}, progress=False, fusion_weights={"bm25": 1.0})
    assert seen[0]["ext"]["sesa"]["fusion"] == {"weights": {"bm25": 1.0}}


def _hits(ids):
    return {"took": 3, "hits": {"hits": [{"_id": i, "_score": 1.0} for i in ids]}}


def test_run_mode_collects_rankings_and_latencies():
    client = FakeClient(searcher=lambda index, body, params: _hits(["d2", "d1"]))
    run = runner.run_mode(client, "idx", "bm25", {"q1": "a", "q2": "b"}, progress=False)
    assert run.ok
    assert run.rankings == {"q1": ["d2", "d1"], "q2": ["d2", "d1"]}
    assert len(run.latencies_ms) == 2 and run.took_ms == [3.0, 3.0]
    assert set(run.latency_summary()) == {"mean", "p50", "p95", "max"}


def test_missing_search_pipeline_makes_pipeline_modes_unavailable():
    client = FakeClient()
    fields = {"sesa_dense", "sesa_concepts"}
    assert runner.unavailable_reason(client, "idx", "bm25", fields) is None
    reason = runner.unavailable_reason(client, "idx", "hybrid", fields)
    assert reason == "search pipeline 'sesa-search' does not exist on the cluster"
    run = runner.run_mode(client, "idx", "hybrid", {"q1": "a"}, progress=False, unavailable=reason)
    assert not run.ok and run.unavailable == reason and run.rankings == {}


def test_index_without_sesa_fields_makes_dense_unavailable():
    client = FakeClient()
    client.routes["/_search/pipeline/sesa-search"] = {"sesa-search": {}}
    reason = runner.unavailable_reason(client, "bm25-x", "dense", {"title", "text"})
    assert "has no sesa_dense field" in reason
    assert runner.unavailable_reason(client, "sesa-x", "concepts", {"sesa_concepts"}) is None


def test_a_rejected_query_makes_the_mode_unavailable_instead_of_crashing():
    def searcher(index, body, params):
        if body["ext"]["sesa"]["query_text"] == "bad":
            raise RequestError(400, "x_content_parse_exception", {"error": {
                "root_cause": [{"type": "x_content_parse_exception", "reason": "unknown field [sesa]"}]}})
        return _hits(["d1"])

    client = FakeClient(searcher=searcher)
    run = runner.run_mode(client, "idx", "dense", {"q1": "ok", "q2": "bad", "q3": "ok"}, progress=False)
    assert not run.ok
    assert run.unavailable == ("query q2 failed after 1 of 3 succeeded: HTTP 400 x_content_parse_exception: "
                               "unknown field [sesa]")


def test_degraded_rerank_is_noted():
    response = _hits(["d1"])
    response["ext"] = {"sesa": {"rerank": {"degraded": True, "reason": "timeout"}}}
    client = FakeClient(searcher=lambda index, body, params: response)
    run = runner.run_mode(client, "idx", "hybrid+rerank", {"q1": "a", "q2": "b"}, progress=False)
    assert run.ok and run.rerank_degraded == 2
    assert run.notes == ["rerank degraded on 2 of 2 queries (e.g. timeout)"]
    response["ext"] = {"sesa": {"degraded": True, "degraded_reason": "reranker unreachable"}}
    run = runner.run_mode(client, "idx", "hybrid+rerank", {"q1": "a"}, progress=False)
    assert run.notes == ["rerank degraded on 1 of 1 queries (e.g. reranker unreachable)"]


def test_queries_the_reranker_skipped_as_out_of_domain_are_counted_not_degraded():
    skipped, reranked = _hits(["d1"]), _hits(["d1"])
    skipped["ext"] = {"sesa": {"degraded": False, "rerank": {"applied": False, "skipped": "out_of_domain"}}}
    reranked["ext"] = {"sesa": {"degraded": False, "rerank": {"applied": True}}}
    client = FakeClient(searcher=lambda index, body, params: skipped if body["ext"]["sesa"]["query_text"] == "a"
                        else reranked)
    run = runner.run_mode(client, "idx", "hybrid+rerank", {"q1": "a", "q2": "b", "q3": "a"}, progress=False)
    assert run.ok and run.rerank_out_of_domain == 2 and run.rerank_degraded == 0
    assert run.notes == ["rerank skipped on 2 of 3 queries: outside the reranker's domain (fused order kept)"]
