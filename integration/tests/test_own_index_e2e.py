"""Bring your own index, on the real node and server: an index under any name either holds SESA output (created by
`sesa index create`, or mapped with one `sesa_text` field) or ingest refuses to write into it, with the fix.

* `sesa_encode` into an index without the mapping fails every document with a 400 naming the missing mapping and
  the fix, and creates no mapping at all (it used to map `sesa_dense` as floats and one sub-field per concept);
* one `sesa_text` field (any name) gives vectors, concepts and labels for documents sent with plain `_bulk` (no
  pipeline), hybrid search and rerank through `ext.sesa.field`, and `sesa index list` shows it.

(Killing the server during ingest into such an index: `test_ingest_scifact_faults_e2e.py`; `sesa index create` for
the template layout and ADI's nDCG: `test_ingest_eval_e2e.py`.)
"""

from __future__ import annotations

import os
import uuid

import pytest

from integration import schemas

pytestmark = pytest.mark.e2e

DOCS = {
    "py": {"title": "Python data engineer", "body": "Build ETL pipelines in Python and SQL, orchestrate them with Airflow."},
    "nurse": {"title": "Registered nurse", "body": "Provide patient care in a hospital ward and administer medication."},
    "chef": {"title": "Head chef", "body": "Plan menus, cook meals and manage the kitchen staff of a restaurant."},
    "car": {"title": "Automobile technician", "body": "Fixes cars and engines in a garage."},
}


def _bulk(client, index: str, docs: dict, **params) -> dict:
    body = []
    for doc_id, doc in docs.items():
        body += [{"index": {"_index": index, "_id": doc_id}}, doc]
    return client.bulk(body=body, params={"refresh": "true", **params})


def test_sesa_encode_refuses_an_index_that_cannot_hold_its_output(os_client):
    """The issue's first experience: `PUT my-docs` with the documented pipeline as default, then `_bulk`."""
    name = f"my-docs-{uuid.uuid4().hex[:6]}"
    os_client.indices.create(index=name, body={"settings": {"index.default_pipeline":
                                                            schemas.conventions()["default_ingest_pipeline"]}})
    try:
        res = _bulk(os_client, name, {k: {"title": v["title"], "text": v["body"]} for k, v in DOCS.items()})
        assert res["errors"] is True
        f = schemas.field_names()
        for item in res["items"]:
            op = item["index"]
            reason = str(op["error"])
            assert op["status"] == 400, op
            assert f["dense"] in reason and "knn_vector" in reason and "sesa index create" in reason, reason
        mapping = os_client.indices.get_mapping(index=name)[name]["mappings"]
        assert not set(mapping.get("properties", {})) & set(f.values()), mapping  # nothing written, nothing mapped
        assert os_client.count(index=name)["count"] == 0
    finally:
        os_client.indices.delete(index=name, ignore_unavailable=True)


def test_one_sesa_text_field_wires_vectors_search_and_rerank(os_client, stack, capsys):
    from integration import cli as sesa_cli
    from integration.inference import InferenceClient, model_ref
    from integration.tests.index_checks import assert_every_document_has_the_sesa_fields, cosine

    name = f"jobs-{uuid.uuid4().hex[:6]}"
    prefix = schemas.text_field_prefix("body")
    f = schemas.field_names(prefix)
    assert sesa_cli.main(["index", "create", name, "--field", "body", "--cluster", stack.url]) == 0
    try:
        res = _bulk(os_client, name, DOCS)  # plain _bulk: no pipeline parameter, no default pipeline
        assert res["errors"] is False, res
        assert_every_document_has_the_sesa_fields(os_client, name, len(DOCS), prefix)
        with InferenceClient(stack.server_address) as inference:
            fresh = inference.encode([d["body"] for d in DOCS.values()])
            models = {"dense": model_ref(fresh.dense_model), "concepts": model_ref(fresh.concept_model)}
            has_reranker = any(m.role == "reranker" for m in inference.info().models)
        stored = {h["_id"]: h["_source"] for h in os_client.search(index=name, body={"size": 10})["hits"]["hits"]}
        for doc_id, emb in zip(DOCS, fresh.embeddings):
            assert cosine(stored[doc_id][f["dense"]], list(emb.dense)) > 0.98, doc_id  # the body field, encoded
            assert stored[doc_id][f["model"]] == models
        meta = os_client.indices.get_mapping(index=name)[name]["mappings"]["_meta"]["sesa"]["models"]
        assert meta[prefix] == models

        pipeline = schemas.conventions()["default_search_pipeline"]
        body = {"size": 4, "ext": {"sesa": {"query_text": "who cooks food in a restaurant", "field": "body",
                                            "explain": True}}}
        hits = os_client.search(index=name, body=body, params={"search_pipeline": pipeline})
        assert hits["hits"]["hits"][0]["_id"] == "chef", hits["hits"]["hits"]
        assert hits["ext"]["sesa"]["degraded"] is False
        body["ext"]["sesa"]["rerank"] = {"top_n": 4, "without_evidence": "rerank", "out_of_domain": "rerank"}
        reranked = os_client.search(index=name, body=body, params={"search_pipeline": pipeline})
        rerank_info = reranked["ext"]["sesa"]["rerank"]
        if has_reranker:
            assert rerank_info["applied"] is True, rerank_info
        # a field that is not a sesa_text field is a 400 naming it
        from opensearchpy.exceptions import RequestError

        with pytest.raises(RequestError) as bad:
            os_client.search(index=name, body={"ext": {"sesa": {"query_text": "x", "field": "title"}}},
                             params={"search_pipeline": pipeline})
        assert "title" in str(bad.value.info)

        capsys.readouterr()
        assert sesa_cli.main(["index", "list", "--cluster", stack.url]) == 0
        listed = [line for line in capsys.readouterr().out.splitlines() if name in line]
        assert listed and "body" in listed[0] and models["dense"] in listed[0], listed
    finally:
        if not os.environ.get("SESA_KEEP_STACK"):
            os_client.indices.delete(index=name, ignore_unavailable=True)


def test_each_sesa_text_field_names_its_concept_space(os_client, stack, server_with_env):
    """A server serving two concept spaces (the default ESCO one and, as an extra, the trained SciFact head): a field
    mapped with `concept_space` gets that space's concepts and model record, the other field the default's; search
    on each field encodes the query in the field's space."""
    from integration.inference import InferenceClient

    trained = schemas.repo_root() / "models" / "esco-skills-sesa-scifact"
    server_with_env({"SESA_SERVER_MODELS__EXTRA_CONCEPT_SPACES": f'["{trained}"]'})
    with InferenceClient(stack.server_address) as inference:
        spaces = [s.name for s in inference.info().concept_spaces]
    default = spaces[0]  # the suite's server serves what `sesa up` does: the shipped ESCO space, or the built-in one
    assert default in ("esco-skills-sesa-esco", "esco-skills") and spaces == [default, "esco-skills-sesa-scifact"], spaces
    name = f"spaces-{uuid.uuid4().hex[:6]}"
    os_client.indices.create(index=name, body={"mappings": {"properties": {
        "body": {"type": "sesa_text"}, "claim": {"type": "sesa_text", "concept_space": "esco-skills-sesa-scifact"}}}})
    try:
        res = _bulk(os_client, name, {k: {"body": v["body"], "claim": v["body"]} for k, v in DOCS.items()})
        assert res["errors"] is False, res
        models = os_client.indices.get_mapping(index=name)[name]["mappings"]["_meta"]["sesa"]["models"]
        body_f, claim_f = (schemas.field_names(schemas.text_field_prefix(x)) for x in ("body", "claim"))
        assert models["body_sesa"]["concepts"].startswith(default + "@")
        assert models["claim_sesa"]["concepts"].startswith("esco-skills-sesa-scifact@")
        src = os_client.get(index=name, id="chef")["_source"]
        assert src[body_f["model"]]["concepts"] == models["body_sesa"]["concepts"]
        assert src[claim_f["model"]]["concepts"] == models["claim_sesa"]["concepts"]
        assert src[body_f["dense"]] == pytest.approx(src[claim_f["dense"]], abs=1e-6)  # one encoder, two spaces
        pipeline = schemas.conventions()["default_search_pipeline"]
        for field, space in (("body", default), ("claim", "esco-skills-sesa-scifact")):
            res = os_client.search(index=name, params={"search_pipeline": pipeline}, body={
                "size": 2, "ext": {"sesa": {"query_text": f"kitchen staff and menus ({field})", "field": field}}})
            assert res["ext"]["sesa"]["query"]["concept_model"].startswith(space + "@"), res["ext"]["sesa"]["query"]
    finally:
        if not os.environ.get("SESA_KEEP_STACK"):
            os_client.indices.delete(index=name, ignore_unavailable=True)
