"""Faults on the real stack, beyond a dead server (test_ingest_scifact_faults_e2e, test_search_e2e):

* a SLOW inference server (the real server with `faults.delay_ms`): ingest and search keep their deadlines,
  documents fail with the reason instead of hanging, a hybrid search degrades to BM25 inside its deadline,
  `strict` fails with 504;
* a NODE RESTART: the ingest and search pipelines, the index template and a dynamic `sesa.*` cluster
  setting come back from the node's persisted cluster state, and ingest + hybrid search work again.
"""

from __future__ import annotations

import copy
import time
import uuid

import pytest

from integration import schemas
from integration.tests.index_checks import count

pytestmark = pytest.mark.e2e

DELAY_MS = 4000
DEADLINE = "1s"


@pytest.fixture
def slow_server(server_with_env):
    """The suite's server restarted with every Encode/Rerank delayed by DELAY_MS; restored afterwards."""
    server_with_env({"SESA_SERVER_FAULTS__DELAY_MS": str(DELAY_MS)})


def _pipelines_with_deadline(client, suffix: str) -> tuple[str, str]:
    conv = schemas.conventions()
    ingest_body = copy.deepcopy(client.ingest.get_pipeline(id=conv["default_ingest_pipeline"])[
        conv["default_ingest_pipeline"]])
    for proc in ingest_body["processors"]:
        if "sesa_encode" in proc:
            proc["sesa_encode"]["timeout"] = DEADLINE
    search_name = conv["default_search_pipeline"]
    search_body = copy.deepcopy(client.transport.perform_request("GET", f"/_search/pipeline/{search_name}")[search_name])
    for proc in search_body["request_processors"]:
        if "sesa_query" in proc:
            proc["sesa_query"]["timeout"] = DEADLINE
    for proc in search_body["response_processors"]:
        if "sesa_rerank" in proc:
            proc["sesa_rerank"]["timeout"] = DEADLINE
    ingest_name, search_copy = f"sesa-slow-ingest-{suffix}", f"sesa-slow-search-{suffix}"
    client.ingest.put_pipeline(id=ingest_name, body=ingest_body)
    client.transport.perform_request("PUT", f"/_search/pipeline/{search_copy}", body=search_body)
    return ingest_name, search_copy


def test_a_slow_server_is_bounded_by_the_deadlines(os_client, slow_server):
    from opensearchpy.exceptions import TransportError

    suffix = uuid.uuid4().hex[:8]
    index = f"sesa-slow-e2e-{suffix}"
    ingest_pipeline, search_pipeline = _pipelines_with_deadline(os_client, suffix)
    try:
        # ingest: every document fails with the deadline as its reason, within a bounded time, none indexed
        os_client.indices.create(index=index)
        lines = []
        for i in range(8):
            lines += [{"index": {"_index": index, "_id": str(i)}}, {"title": f"doc {i}", "text": "slow server text"}]
        started = time.monotonic()
        res = os_client.bulk(body=lines, params={"pipeline": ingest_pipeline})
        took = time.monotonic() - started
        assert took < 10, f"the bulk took {took:.1f}s although the pipeline's deadline is {DEADLINE}"
        errors = [item["index"].get("error") for item in res["items"]]
        assert all(errors), "every document fails while the server is too slow"
        assert all("DEADLINE" in str(e) or "deadline" in str(e) for e in errors), errors[0]
        assert count(os_client, index) == 0, "nothing is indexed without its vectors"

        # documents for the searches below, written around the pipeline (BM25 fields only): the searches
        # must find something for degradation to show, whatever else the suite left in the cluster
        for i in range(3):
            os_client.index(index=index, id=f"plain-{i}", body={"title": f"slow text {i}", "text": "slow server text"},
                            params={"pipeline": "_none", "refresh": "true"})

        # search: hybrid degrades to BM25 inside the deadline; strict fails with 504
        body = {"size": 5, "ext": {"sesa": {"query_text": f"slow query {suffix}"}}}
        started = time.monotonic()
        res = os_client.search(index=index, body=body, params={"search_pipeline": search_pipeline})
        took = time.monotonic() - started
        assert res["ext"]["sesa"]["degraded"] is True, res["ext"]
        assert [h["_id"] for h in res["hits"]["hits"]], "the BM25 branch answers"
        assert "DEADLINE" in res["ext"]["sesa"]["degraded_reason"], res["ext"]["sesa"]["degraded_reason"]
        assert took < DELAY_MS / 1000, f"a degraded search took {took:.1f}s"
        body["ext"]["sesa"]["strict"] = True
        body["ext"]["sesa"]["query_text"] = f"another slow query {suffix}"
        with pytest.raises(TransportError) as err:
            os_client.search(index=index, body=body, params={"search_pipeline": search_pipeline})
        assert err.value.status_code == 504, err.value.info
        # rerank over BM25 hits: degrades inside its deadline
        body = {"size": 3, "ext": {"sesa": {"query_text": "text", "mode": "bm25", "rerank": {"without_evidence": "rerank"}}}}
        started = time.monotonic()
        res = os_client.search(index=index, body=body, params={"search_pipeline": search_pipeline})
        assert time.monotonic() - started < DELAY_MS / 1000
        assert res["hits"]["hits"] and res["ext"]["sesa"]["degraded"] is True, res["ext"]
    finally:
        os_client.indices.delete(index=index, ignore_unavailable=True)
        os_client.ingest.delete_pipeline(id=ingest_pipeline)
        os_client.transport.perform_request("DELETE", f"/_search/pipeline/{search_pipeline}")


def test_pipelines_template_and_settings_survive_a_node_restart(os_client, stack):
    from integration.cluster import stack as stack_mod

    if stack.options is None:
        pytest.skip("the suite runs against an external cluster (SESA_TEST_CLUSTER_URL): no node to restart")
    conv = schemas.conventions()
    os_client.cluster.put_settings(body={"persistent": {"sesa.inference.timeout": "45s"}})
    try:
        stack_mod.restart_node(stack.options)
        assert conv["default_ingest_pipeline"] in os_client.ingest.get_pipeline()
        search = os_client.transport.perform_request("GET", f"/_search/pipeline/{conv['default_search_pipeline']}")
        assert conv["default_search_pipeline"] in search
        assert os_client.indices.exists_index_template(name=conv["default_index_template"])
        settings = os_client.cluster.get_settings(flat_settings=True)["persistent"]
        assert settings.get("sesa.inference.timeout") == "45s"
        # and the stack works: a document is ingested with its vectors and found by hybrid search
        index = f"sesa-restart-e2e-{uuid.uuid4().hex[:8]}"
        os_client.index(index=index, id="1", body={"title": "restart", "text": "pipelines survive restarts"},
                        params={"refresh": "true"})
        doc = os_client.get(index=index, id="1")["_source"]
        assert len(doc[schemas.field_names()["dense"]]) > 0
        res = os_client.search(index=index, body={"ext": {"sesa": {"query_text": "do pipelines survive?"}}},
                               params={"search_pipeline": conv["default_search_pipeline"]})
        assert [h["_id"] for h in res["hits"]["hits"]] == ["1"] and res["ext"]["sesa"]["degraded"] is False
        os_client.indices.delete(index=index)
    finally:
        os_client.cluster.put_settings(body={"persistent": {"sesa.inference.timeout": None}})
