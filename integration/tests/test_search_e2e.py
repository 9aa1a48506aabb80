"""The `sesa-search` pipeline on the real stack: `sesa_query` (Encode through our plugin) -> `sesa_fuse` ->
`sesa_rerank`, on a small corpus indexed through the real `sesa-ingest` pipeline.

What is checked: each mode alone returns what it should; the fused scores equal ir/fusion.py applied
to the raw branch scores the hits carry; a filter in `query` restricts every branch; explanations list the
concepts both the query and the document carry; rerank either reorders by the server's own Rerank scores (a
server with a reranker) or degrades visibly (a server without one); a stopped server degrades rerank, and
`strict` fails instead.

The server stop/start test only runs when the suite manages the inference server (`sesa up` state); it always
restarts it before it ends.
"""

from __future__ import annotations

import os
import uuid

import pytest

from integration import schemas
from ir import fusion

pytestmark = pytest.mark.e2e

CORPUS = {
    "py": {"title": "Python data engineer", "lang": "python",
           "text": "Build ETL pipelines in Python and SQL, orchestrate them with Airflow."},
    "ml": {"title": "Machine learning scientist", "lang": "python",
           "text": "Train statistical models on large datasets using Python and PyTorch."},
    "java": {"title": "Java backend developer", "lang": "java",
             "text": "Develop microservices in Java with Spring Boot and Kafka."},
    "dba": {"title": "Database administrator", "lang": "sql",
            "text": "Maintain relational databases, tune SQL queries and run backups."},
    "nurse": {"title": "Registered nurse", "lang": "none",
              "text": "Provide patient care in a hospital ward and administer medication."},
    "chef": {"title": "Head chef", "lang": "none",
             "text": "Plan menus, cook meals and manage the kitchen staff of a restaurant."},
    "car": {"title": "Automobile technician", "lang": "none",
            "text": "Fixes cars and engines in a garage."},
    "teacher": {"title": "Primary school teacher", "lang": "none",
                "text": "Teach reading and arithmetic to children aged six to eleven."},
}
TEXT_FIELDS = ("title", "text")


def _require() -> bool:
    return os.environ.get("SESA_REQUIRE_E2E", "") not in ("", "0", "false")


@pytest.fixture(scope="module")
def pipeline(os_client) -> str:
    """The search pipeline of schemas/ under its default name (idempotent, as the template flow applies it)."""
    name = schemas.conventions()["default_search_pipeline"]
    os_client.transport.perform_request("PUT", f"/_search/pipeline/{name}",
                                        body=schemas.load_json("search-pipeline.json"))
    return name


def make_index(os_client) -> str:
    """A fresh `sesa-*` index holding CORPUS, encoded through the default ingest pipeline by the running server."""
    name = f"sesa-search-e2e-{uuid.uuid4().hex[:8]}"
    os_client.indices.create(index=name, body={"mappings": {"properties": {"lang": {"type": "keyword"}}}})
    for doc_id, doc in CORPUS.items():
        os_client.index(index=name, id=doc_id, body=doc)
    os_client.indices.refresh(index=name)
    stored = os_client.search(index=name, body={"size": 100, "query": {"match_all": {}}})["hits"]["hits"]
    assert len(stored) == len(CORPUS)
    f = schemas.field_names()
    assert all(h["_source"].get(f["status"]) == "encoded" for h in stored), "the ingest pipeline did not run"
    return name


@pytest.fixture(scope="module")
def index(os_client):
    name = make_index(os_client)
    yield name
    if not os.environ.get("SESA_KEEP_STACK"):
        os_client.indices.delete(index=name, ignore_unavailable=True)


@pytest.fixture(scope="module")
def server(stack):
    from integration.inference import InferenceClient

    with InferenceClient(stack.server_address) as client:
        yield client


@pytest.fixture(scope="module")
def has_reranker(server) -> bool:
    return any(m.role == "reranker" for m in server.info().models)


def search(client, index: str, pipeline: str, query_text: str, *, params: dict | None = None, **kwargs) -> dict:
    from integration.search import search_body

    body = search_body(query_text, **kwargs)
    return client.search(index=index, body=body, params={"search_pipeline": pipeline, **(params or {})})


def search_status(client, index: str, pipeline: str, query_text: str, **kwargs) -> tuple[int, dict]:
    """(HTTP status, body) without raising on errors."""
    from opensearchpy.exceptions import TransportError

    try:
        return 200, search(client, index, pipeline, query_text, **kwargs)
    except TransportError as exc:
        return int(exc.status_code), exc.info if isinstance(exc.info, dict) else {"error": str(exc.info)}


def ids(res: dict) -> list[str]:
    return [h["_id"] for h in res["hits"]["hits"]]


def explanation(hit: dict) -> dict:
    from integration.search import explanation as exp

    return exp(hit)


def meta(res: dict) -> dict:
    return res.get("ext", {}).get("sesa", {})


def concept_idf(client, index: str, keys) -> dict[str, float]:
    """The test's oracle of the concept branch's idf: BM25's ln(1 + (N - df + 0.5) / (df + 0.5)), N the index's
    documents and df those carrying the concept, each counted with its own query."""
    import math

    field = schemas.field_names()["concepts"]
    n = client.count(index=index, body={"query": {"match_all": {}}})["count"]
    out = {}
    for k in keys:
        df = client.count(index=index, body={"query": {"rank_feature": {"field": f"{field}.{k}"}}})["count"]
        out[k] = math.log(1 + (n - df + 0.5) / (df + 0.5))
    return out


def passage(hit: dict) -> str:
    return "\n".join(str(hit["_source"][f]) for f in TEXT_FIELDS if hit["_source"].get(f))


# -- modes ------------------------------------------------------------------------------------------


def test_bm25_mode_returns_only_documents_with_the_query_terms(os_client, index, pipeline):
    res = search(os_client, index, pipeline, "python sql", mode="bm25", size=20)
    assert ids(res), "bm25 found nothing"
    for hit in res["hits"]["hits"]:
        text = passage(hit).lower()
        assert "python" in text or "sql" in text, hit["_id"]
        e = explanation(hit)
        assert e["bm25"] == pytest.approx(hit["_score"], rel=1e-6)
        assert e["dense"] is None and e["concepts"] is None
        assert e["fused"] == pytest.approx(e["bm25"], rel=1e-6)
    assert meta(res)["query"]["encoded"] is False, "bm25 mode must not call Encode"
    assert set(ids(res)) == {"py", "ml", "dba"}


def test_dense_mode_finds_a_paraphrase_without_shared_words(os_client, index, pipeline):
    query = "mechanic for vehicles"
    bm25 = search(os_client, index, pipeline, query, mode="bm25", size=20)
    assert "car" not in ids(bm25), "the paraphrase test needs a query without shared terms"
    res = search(os_client, index, pipeline, query, mode="dense", size=3)
    assert ids(res)[0] == "car", [(h["_id"], h["_score"]) for h in res["hits"]["hits"]]
    e = explanation(res["hits"]["hits"][0])
    assert e["bm25"] is None and e["dense"] is not None and 0 < e["dense"] <= 1


def test_concepts_mode_ranks_the_document_sharing_the_query_concepts_first(os_client, index, pipeline, server):
    from inference_server.contract import inference_pb2 as pb

    query = "cooking meals in a restaurant kitchen"
    res = search(os_client, index, pipeline, query, mode="concepts", size=20)
    assert ids(res)[0] == "chef", [(h["_id"], h["_score"]) for h in res["hits"]["hits"]]
    # the concept score is the dot product of the query's and the document's concept weights
    encoded = server.encode([query], kind=pb.TEXT_KIND_QUERY, top_k_concepts=32).embeddings[0]
    q = {c.key: c.weight for c in encoded.concepts}
    idf = concept_idf(os_client, index, q)
    field = schemas.field_names()["concepts"]
    for hit in res["hits"]["hits"]:
        doc = hit["_source"].get(field, {})
        # the concept score: each shared concept's query weight x its idf in the index x the document's weight
        dot = sum(w * idf[k] * doc.get(k, 0.0) for k, w in q.items())
        # rank_features keep ~9 significant bits per weight
        assert hit["_score"] == pytest.approx(dot, rel=0.02, abs=1e-4), hit["_id"]
        assert explanation(hit)["shared_concepts"], f"{hit['_id']} matched without a shared concept"
    top_query_concepts = [c.key for c in encoded.concepts[:3]]
    shared = [c["key"] for c in explanation(res["hits"]["hits"][0])["shared_concepts"]]
    assert set(shared) & set(top_query_concepts), (shared, top_query_concepts)


def test_concept_idf_off_scores_with_the_weights_alone(os_client, index, pipeline, server):
    """`concept_idf: false` in sesa_query: the concept score is the plain dot product, and no idf is reported."""
    from inference_server.contract import inference_pb2 as pb

    body = schemas.load_json("search-pipeline.json")
    body["request_processors"][0]["sesa_query"]["concept_idf"] = False
    name = f"{pipeline}-no-idf-{uuid.uuid4().hex[:6]}"
    os_client.transport.perform_request("PUT", f"/_search/pipeline/{name}", body=body)
    try:
        query = "cooking meals in a restaurant kitchen"
        res = search(os_client, index, name, query, mode="concepts", size=20)
        q = {c.key: c.weight for c in server.encode([query], kind=pb.TEXT_KIND_QUERY, top_k_concepts=32).embeddings[0].concepts}
        field = schemas.field_names()["concepts"]
        assert res["hits"]["hits"]
        for hit in res["hits"]["hits"]:
            doc = hit["_source"].get(field, {})
            assert hit["_score"] == pytest.approx(sum(w * doc.get(k, 0.0) for k, w in q.items()), rel=0.02, abs=1e-4)
            assert all("idf" not in c for c in explanation(hit)["shared_concepts"])
    finally:
        os_client.transport.perform_request("DELETE", f"/_search/pipeline/{name}")


# -- fusion -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("technique", ["min_max", "z_score", "rrf"])
def test_fused_scores_equal_the_python_reference(os_client, index, pipeline, technique):
    res = search(os_client, index, pipeline, "developer writing Python and SQL", size=100,
                 fusion={"technique": technique})
    info = meta(res)
    assert info["mode"] == "hybrid"
    assert len(res["hits"]["hits"]) == info["candidates"], "the page must hold every candidate"
    settings = info["fusion"]
    assert settings["technique"] == technique
    windows = fusion.windows_from_hits(res["hits"]["hits"])
    for branch, stats in info["branches"].items():
        assert len(windows[branch]) == stats["returned"], branch
    expected = fusion.fuse(windows, technique, weights=settings["weights"],
                           rank_constant=settings["rank_constant"], min_range=settings["min_range"])
    got = {(h["_index"], h["_id"]): explanation(h)["fused"] for h in res["hits"]["hits"]}
    assert set(got) == {d.key for d in expected}
    for d in expected:
        assert got[d.key] == pytest.approx(d.fused, rel=1e-5, abs=1e-9), d.key
    scores = [h["_score"] for h in res["hits"]["hits"]]
    assert scores == sorted(scores, reverse=True)
    if technique == "min_max":
        assert [d.key[1] for d in expected] == ids(res)


def test_request_weights_and_paging_apply_after_fusion(os_client, index, pipeline):
    weights = {"bm25": 1, "dense": 0, "concepts": 0}
    full = search(os_client, index, pipeline, "python", size=100, fusion={"weights": weights})
    # with only bm25 weighted, a document containing "python" leads and the bm25 scores decide
    assert "python" in passage(full["hits"]["hits"][0]).lower()
    assert meta(full)["fusion"]["weights"] == {"bm25": 1.0, "dense": 0.0, "concepts": 0.0}
    page = search(os_client, index, pipeline, "python", size=2, fusion={"weights": weights}, params={"from": 2})
    assert ids(page) == ids(full)[2:4]


def test_a_filter_in_query_restricts_every_branch(os_client, index, pipeline):
    flt = {"term": {"lang": "python"}}
    for mode in ("bm25", "dense", "concepts", "hybrid"):
        res = search(os_client, index, pipeline, "cook meals in a restaurant", mode=mode, size=20, filter_query=flt)
        assert set(ids(res)) <= {"py", "ml"}, (mode, ids(res))
        assert "chef" not in ids(res)
    res = search(os_client, index, pipeline, "cook meals in a restaurant", size=20, filter_query=flt)
    for branch, stats in meta(res)["branches"].items():
        assert stats["returned"] <= 2, branch
    assert meta(res)["branches"]["dense"]["returned"] == 2, "k-NN pre-filter: k results found inside the filter"


def test_explanations_list_the_concepts_both_carry(os_client, index, pipeline, server):
    from inference_server.contract import inference_pb2 as pb

    query = "data engineer building pipelines in Python"
    res = search(os_client, index, pipeline, query, size=100)
    encoded = server.encode([query], kind=pb.TEXT_KIND_QUERY, top_k_concepts=32).embeddings[0]
    q = {c.key: c for c in encoded.concepts}
    idf = concept_idf(os_client, index, q)
    field = schemas.field_names()["concepts"]
    saw_shared = False
    for hit in res["hits"]["hits"]:
        e = explanation(hit)
        doc = hit["_source"].get(field, {})
        everything = sorted(
            ({"key": k, "contribution": q[k].weight * idf[k] * w} for k, w in doc.items() if k in q and w > 0),
            key=lambda c: (-c["contribution"], c["key"]),
        )
        shared = e["shared_concepts"]
        assert [c["key"] for c in shared] == [c["key"] for c in everything[:10]], hit["_id"]
        for c in shared:
            saw_shared = True
            assert c["label"] == q[c["key"]].label
            assert c["query_weight"] == pytest.approx(q[c["key"]].weight, rel=1e-5)
            assert c["doc_weight"] == pytest.approx(doc[c["key"]], rel=1e-5)
            assert c["idf"] == pytest.approx(idf[c["key"]], rel=1e-5)
            assert c["contribution"] == pytest.approx(c["query_weight"] * c["idf"] * c["doc_weight"], rel=1e-5)
        # the concepts branch score is the sum of all contributions (rank_features keep ~9 bits per weight)
        assert (e["concepts"] is None) == (not everything), hit["_id"]
        if everything:
            assert e["concepts"] == pytest.approx(sum(c["contribution"] for c in everything), rel=0.02)
    assert saw_shared
    top = res["hits"]["hits"][0]
    assert top["_id"] == "py", ids(res)


def test_the_response_carries_the_servers_timing_of_the_query_encode(os_client, index, pipeline):
    """ext.sesa.timing.encode_server: how long the query waited and computed on the server, in the interactive
    class (ahead of ingest); absent when the encoding came from the plugin's cache (the server did nothing)."""
    query = f"nurses in a hospital ward {uuid.uuid4().hex[:6]}"
    first = meta(search(os_client, index, pipeline, query, size=3))["timing"]
    server = first["encode_server"]
    assert server["priority"] == "interactive" and server["compute_ms"] > 0 and server["queue_ms"] >= 0
    assert server["total_ms"] >= server["compute_ms"] and first["encode_ms"] >= server["total_ms"] * 0.5
    cached = meta(search(os_client, index, pipeline, query, size=3))["timing"]
    assert "encode_server" not in cached or cached["encode_server"] is None
    # the plugin's gRPC callbacks ran in its own OpenSearch thread pool, which node stats and _cat show
    pools = os_client.cat.thread_pool(thread_pool_patterns="sesa_inference", format="json", h="name,type,completed")
    assert pools and all(p["name"] == "sesa_inference" and p["type"] == "scaling" for p in pools), pools
    assert sum(int(p["completed"]) for p in pools) > 0, pools


def test_source_filtering_is_respected(os_client, index, pipeline):
    res = search(os_client, index, pipeline, "python", size=3, source_fields=["title"])
    for hit in res["hits"]["hits"]:
        assert set(hit["_source"]) == {"title"}
    assert any(explanation(h)["shared_concepts"] for h in res["hits"]["hits"]), \
        "explanations still read the concept weights the user did not ask for"


def test_bad_requests_are_400(os_client, index, pipeline):
    status, body = search_status(os_client, index, pipeline, "q", mode="bm25", fusion={"technique": "sum"})
    assert status == 400 and "ext.sesa.fusion.technique" in str(body)
    from opensearchpy.exceptions import RequestError

    with pytest.raises(RequestError, match="ext.sesa.query_text"):
        os_client.search(index=index, body={"ext": {"sesa": {"mode": "hybrid"}}}, params={"search_pipeline": pipeline})
    with pytest.raises(RequestError, match="search_pipeline"):
        # ext.sesa without the pipeline must not run as a plain search
        os_client.search(index=index, body={"ext": {"sesa": {"query_text": "python"}}})
    with pytest.raises(RequestError, match="sort"):
        os_client.search(index=index, params={"search_pipeline": pipeline},
                         body={"sort": [{"lang": "asc"}], "ext": {"sesa": {"query_text": "q"}}})


# -- rerank -----------------------------------------------------------------------------------------


def _pipeline_rerank_weight() -> float:
    procs = schemas.load_json("search-pipeline.json")["response_processors"]
    rerank = next(p["sesa_rerank"] for p in procs if "sesa_rerank" in p)
    return float(rerank.get("rerank_weight", 1.0))


def _unit(xs: list[float]) -> list[float]:
    lo, hi = min(xs), max(xs)
    return [0.0 if hi == lo else (x - lo) / (hi - lo) for x in xs]


def test_rerank_reorders_by_the_servers_scores(os_client, index, pipeline, server, has_reranker):
    if not has_reranker:
        pytest.skip("the inference server has no reranker (models.reranker): rerank can only degrade; "
                    "see test_rerank_without_a_reranker_degrades")
    query = "who writes Python code"
    # the test index has no evidence record and a job query is outside the shipped (SciFact) reranker's domain:
    # rerank it anyway, this test checks the order
    anyway = {"out_of_domain": "rerank", "without_evidence": "rerank"}
    fused = search(os_client, index, pipeline, query, size=100, rerank=False)
    top = fused["hits"]["hits"][:5]
    scores = [s.score for s in server.rerank(query, [passage(h) for h in top], chunk_long_passages=True).scores]
    fused_scores = [explanation(h)["fused"] for h in top]

    # weight 1: the pure cross-encoder order, _score = the raw rerank score
    res = search(os_client, index, pipeline, query, size=100, rerank={"top_n": 5, "weight": 1.0, **anyway})
    assert meta(res)["degraded"] is False and meta(res)["rerank"]["applied"] is True
    timing = meta(res)["rerank"]["rerank_server"]  # the server's own account of the call, scheduled as a search
    assert timing["priority"] == "interactive" and timing["compute_ms"] > 0 and timing["queue_ms"] >= 0
    expected = [h["_id"] for _, h in sorted(zip(scores, top), key=lambda p: -p[0])]
    assert ids(res)[:5] == expected
    assert ids(res)[5:] == ids(fused)[5:]
    for hit in res["hits"]["hits"][:5]:
        e = explanation(hit)
        assert e["rerank"] == pytest.approx(hit["_score"], rel=1e-6) and "rerank_blended" not in e
        assert e["fused"] == pytest.approx(explanation(next(h for h in top if h["_id"] == hit["_id"]))["fused"])

    # the pipeline's own weight (the trained blend): w * minmax(rerank) + (1 - w) * minmax(fused) over the head
    w = _pipeline_rerank_weight()
    res = search(os_client, index, pipeline, query, size=100, rerank={"top_n": 5, **anyway})
    assert meta(res)["rerank"]["weight"] == pytest.approx(w)
    blend = [w * r + (1 - w) * f for r, f in zip(_unit(scores), _unit(fused_scores))]
    expected = [h["_id"] for _, _, h in sorted(zip(blend, range(5), top), key=lambda p: (-p[0], p[1]))]
    assert ids(res)[:5] == expected
    assert ids(res)[5:] == ids(fused)[5:]
    by_id = dict(zip((h["_id"] for h in top), zip(scores, blend)))
    for hit in res["hits"]["hits"][:5]:
        e = explanation(hit)
        raw, blended = by_id[hit["_id"]]
        assert e["rerank"] == pytest.approx(raw, rel=1e-5, abs=1e-5)
        if w < 1:
            assert hit["_score"] == pytest.approx(blended, abs=1e-5) and e["rerank_blended"] == pytest.approx(blended, abs=1e-5)


def test_a_query_outside_the_rerankers_domain_keeps_the_fused_order(os_client, index, pipeline, server, has_reranker):
    """The server checks each Rerank query against the reranker's domain bank (the shipped one: its SciFact
    training queries); after the evidence gate (passed here by the request) the pipeline keeps the fused order for a
    query outside it, says so in ext.sesa.rerank, and reranks in-domain queries as before."""
    if not has_reranker or not server.rerank("probe", ["p"]).HasField("domain"):
        pytest.skip("the server's reranker ships no domain bank (SESA_TEST_RERANKER is not the shipped model)")
    jobs = "who writes Python code"
    fused = search(os_client, index, pipeline, jobs, size=8, rerank=False)
    res = search(os_client, index, pipeline, jobs, size=8, rerank={"top_n": 5, "without_evidence": "rerank"})
    info = meta(res)["rerank"]
    assert info["applied"] is False and info["skipped"] == "out_of_domain" and meta(res)["degraded"] is False
    d = info["domain"]
    assert d["in_domain"] is False and d["similarity"] < d["threshold"] and "scifact" in d["reference"]
    assert ids(res) == ids(fused) and all(explanation(h).get("rerank") is None for h in res["hits"]["hits"])
    direct = server.rerank(jobs, ["p"]).domain
    assert d["similarity"] == pytest.approx(direct.similarity, abs=1e-5)

    claim = "Vitamin D deficiency increases the risk of multiple sclerosis."
    res = search(os_client, index, pipeline, claim, size=8, rerank={"top_n": 5, "without_evidence": "rerank"})
    info = meta(res)["rerank"]
    assert info["applied"] is True and info["domain"]["in_domain"] is True
    assert all(explanation(h)["rerank"] is not None for h in res["hits"]["hits"][:5])


def test_a_changed_served_model_refuses_the_old_index_and_serves_a_new_one(stack, os_client, index, pipeline,
                                                                          server_with_env):
    """The server restarted with the trained SciFact concept head (models/esco-skills-sesa-scifact, which ships a
    domain bank). (1) The module's index was encoded with the zero-shot space: every search that compares vectors is
    refused with a 400 naming both models and the fix, never silently mixed; BM25 alone still answers. (2) On an index
    encoded by the new server, with the weights its training chose (0.425 / 0.425 / 0.15, sent in the request: the
    index has no evidence record), a job query is outside the head's domain and the hybrid fuses BM25 + dense only;
    a biomedical claim is inside and keeps the concept weight. (Query texts used nowhere else: the plugin caches
    query encodings.)"""
    from opensearchpy.exceptions import RequestError

    from integration.cluster import stack as stack_mod

    original_facts = stack_mod.model_facts(stack.server_address)
    trained = schemas.repo_root() / "models" / "esco-skills-sesa-scifact"
    server_with_env({"SESA_SERVER_MODELS__CONCEPT_SPACE": str(trained)}, drop=("--concept-space",))
    for mode in ("hybrid", "concepts", "dense"):
        with pytest.raises(RequestError) as refused:
            search(os_client, index, pipeline, f"nurses who administer medication ({mode})", size=8, mode=mode)
        reason = str(refused.value.info)
        assert refused.value.status_code == 400 and index in reason and "esco-skills-sesa-scifact" in reason, reason
        assert "re-index" in reason, reason
    assert ids(search(os_client, index, pipeline, "nurses who administer medication", size=8, mode="bm25"))

    # what an operator does after changing the served models: `sesa up --no-server` stamps the template anew
    from integration.cluster.templates import apply_all

    apply_all(os_client, stack_mod.model_facts(stack.server_address))
    fresh = make_index(os_client)
    try:
        trained_weights = {"weights": {"bm25": 0.425, "dense": 0.425, "concepts": 0.15}}
        pipeline_weight = trained_weights["weights"]["concepts"]
        res = search(os_client, fresh, pipeline, "which engineers maintain relational databases", size=8,
                     fusion=trained_weights)
        fusion_info = meta(res)["fusion"]
        assert fusion_info["concepts_dropped"] == "out_of_domain" and fusion_info["weights"]["concepts"] == 0
        d = fusion_info["concept_domain"]
        assert d["in_domain"] is False and d["similarity"] < d["threshold"] and "scifact" in d["reference"]
        assert any(explanation(h)["shared_concepts"] for h in res["hits"]["hits"]), "explanations keep their concepts"

        res = search(os_client, fresh, pipeline,
                     "Statin therapy lowers the risk of cardiovascular events in older adults.", size=8,
                     fusion=trained_weights)
        fusion_info = meta(res)["fusion"]
        assert "concepts_dropped" not in fusion_info and fusion_info["concept_domain"]["in_domain"] is True
        assert fusion_info["weights"]["concepts"] == pytest.approx(pipeline_weight)
    finally:
        if not os.environ.get("SESA_KEEP_STACK"):
            os_client.indices.delete(index=fresh, ignore_unavailable=True)
        apply_all(os_client, original_facts)


def test_an_index_evidence_record_decides_what_scores_and_whether_rerank_runs(os_client, index, pipeline,
                                                                             has_reranker):
    """Without a record the evidence-free default scores (BM25 + dense, the concepts explain) and rerank is skipped;
    the record `sesa tune` writes into the index's _meta replaces the pipeline's weights and switches rerank on or
    off, and each response says where its settings came from."""
    from integration.evaluation import tuning

    query = "relational databases and SQL tuning for a hospital ward"
    res = search(os_client, index, pipeline, query, size=8, rerank=True)
    f = meta(res)["fusion"]
    assert f["weights_source"] == "pipeline" and f["weights"]["concepts"] == 0 and "evidence" not in f
    if has_reranker:
        assert meta(res)["rerank"]["applied"] is False and meta(res)["rerank"]["skipped"] == "no_evidence"
        assert meta(res)["degraded"] is False
    assert any(explanation(h)["shared_concepts"] for h in res["hits"]["hits"]), "the concepts still explain"

    bm25_only = {"bm25": 1.0, "dense": 0.0, "concepts": 0.0}
    record = {"version": 1, "fusion": {"technique": "min_max", "weights": bm25_only, "rank_constant": 60},
              "rerank": {"enabled": True, "weight": 1.0}, "measured": {"by": "e2e", "dev_queries": 0}}
    tuning.write_record(os_client, index, record)
    try:
        res = search(os_client, index, pipeline, query, size=100,
                     rerank={"top_n": 5, "out_of_domain": "rerank"})
        f = meta(res)["fusion"]
        assert f["weights_source"] == "index_evidence" and f["weights"] == bm25_only
        assert f["evidence"]["measured"] == record["measured"] and index in f["evidence"]["index"]
        if has_reranker:
            r = meta(res)["rerank"]
            assert r["applied"] is True and r["weight_source"] == "index_evidence" and r["weight"] == 1.0
        fused = search(os_client, index, pipeline, query, size=100)
        expected = fusion.fuse(fusion.windows_from_hits(fused["hits"]["hits"]), "min_max", weights=bm25_only)
        assert [explanation(h)["fused"] for h in fused["hits"]["hits"]] == pytest.approx([d.fused for d in expected],
                                                                                        abs=1e-5)
        # the request still wins over the record
        res = search(os_client, index, pipeline, query, size=8, fusion={"weights": {"bm25": 0.5, "dense": 0.5}})
        assert meta(res)["fusion"]["weights_source"] == "request"

        tuning.write_record(os_client, index, {**record, "rerank": {"enabled": False}})
        res = search(os_client, index, pipeline, query, size=8, rerank=True)
        if has_reranker:
            assert meta(res)["rerank"]["applied"] is False and meta(res)["rerank"]["skipped"] == "evidence_against"
    finally:
        assert tuning.clear_record(os_client, index) == [index]
    assert meta(search(os_client, index, pipeline, query, size=8))["fusion"]["weights_source"] == "pipeline"


def test_rerank_without_a_reranker_degrades(os_client, index, pipeline, has_reranker, server_with_env):
    if has_reranker:  # CI's server has one: run this against the same server without it
        server_with_env({}, drop=("--reranker",))
    query = "who writes Python code"
    fused = search(os_client, index, pipeline, query, size=5)
    res = search(os_client, index, pipeline, query, size=5, rerank={"without_evidence": "rerank"})
    assert ids(res) == ids(fused), "degraded: the fused order"
    info = meta(res)
    assert info["degraded"] is True
    assert "FAILED_PRECONDITION" in info["degraded_reason"]
    for hit in res["hits"]["hits"]:
        e = explanation(hit)
        assert e["rerank"] is None and "FAILED_PRECONDITION" in e["degraded"]
    status, body = search_status(os_client, index, pipeline, query, size=5,
                                 rerank={"strict": True, "without_evidence": "rerank"})
    assert status >= 400 and "strict" in str(body)


def test_a_stopped_server_degrades_rerank_and_strict_fails(stack, os_client, index, pipeline, managed_server):
    from integration.cluster import server_process

    paths, state, args = managed_server
    cached_query = "engineer who builds data pipelines"
    new_query = f"a query never seen before {uuid.uuid4().hex}"  # the encoding cache outlives a test run
    warm = search(os_client, index, pipeline, cached_query, size=5)  # puts the query encoding into the cache
    host, port = state.address.rsplit(":", 1)
    server_process.stop(paths)
    try:
        # bm25 needs no Encode: only rerank fails, and it degrades with the reason
        res = search(os_client, index, pipeline, "python", mode="bm25", size=5,
                     rerank={"timeout": "2s", "without_evidence": "rerank"})
        assert meta(res)["degraded"] is True
        assert "UNAVAILABLE" in meta(res)["degraded_reason"] or "DEADLINE" in meta(res)["degraded_reason"]
        assert all(explanation(h)["degraded"] for h in res["hits"]["hits"])
        assert ids(res) == ids(search(os_client, index, pipeline, "python", mode="bm25", size=5))
        # hybrid with a cached query encoding still searches; rerank degrades
        res = search(os_client, index, pipeline, cached_query, size=5, rerank={"without_evidence": "rerank"})
        assert ids(res) == ids(warm) and meta(res)["degraded"] is True
        assert meta(res)["query"]["cached"] is True
        # strict fails instead
        status, body = search_status(os_client, index, pipeline, "python", mode="bm25", size=5,
                                     rerank={"strict": True, "timeout": "2s", "without_evidence": "rerank"})
        assert status in (503, 504), (status, body)
        # a new query text needs Encode: hybrid falls back to its BM25 branch, marked degraded ...
        res = search(os_client, index, pipeline, new_query + " python", size=5)
        assert meta(res)["degraded"] is True and meta(res)["query"]["encoded"] is False
        assert meta(res)["degraded_reason"].startswith("query encoding failed, BM25 only: ")
        assert ids(res) == ids(search(os_client, index, pipeline, new_query + " python", mode="bm25", size=5))
        assert all(explanation(h)["degraded"] and explanation(h)["dense"] is None for h in res["hits"]["hits"])
        # ... strict fails with the server's status, and so does a dense-only search
        status, err = search_status(os_client, index, pipeline, new_query, size=5, strict=True)
        assert status in (503, 504) and "strict is set" in str(err), (status, err)
        status, _ = search_status(os_client, index, pipeline, new_query, mode="dense", size=5)
        assert status in (503, 504)
    finally:
        server_process.start(paths, host, int(port), None, extra_args=args)
    res = search(os_client, index, pipeline, new_query, size=5)
    assert meta(res)["query"]["encoded"] is True and meta(res)["query"]["cached"] is False
