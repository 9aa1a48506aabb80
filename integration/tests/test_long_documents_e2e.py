"""Long documents on the real stack: `sesa_encode` with `chunking` stores every window's vector and span, the dense
branch scores a document by its best window, and the hit names the passage that matched (no extra model call).

The shipped pipeline chunks with windows of the passage length; this test uses a pipeline of its own with smaller
windows, so that a text of a few sentences is many windows, in an index created for that chunking (a `sesa-*` index
records the shipped pipeline's and refuses documents cut another way, which the test checks first).
"""

from __future__ import annotations

import copy
import os
import uuid

import pytest

from integration import schemas

pytestmark = pytest.mark.e2e

QUERY = "Python software for hospital patient records in SQL"
FILLER = " ".join(f"Paragraph {i} is about the history of medieval castles, their walls and their towers." for i in range(60))
NEEDLE = "The hospital replaced paper patient records with a Python service that writes them to an SQL database."


def test_a_long_document_is_found_by_its_best_window_and_names_the_passage(os_client, stack):
    from integration.inference import InferenceClient
    from integration.tests.index_checks import cosine

    conv = schemas.conventions()
    f = schemas.field_names()
    pipeline_name = f"sesa-ingest-chunked-{uuid.uuid4().hex[:6]}"
    pipeline = copy.deepcopy(schemas.load_json("ingest-pipeline.json"))
    chunking = {"window_tokens": 128, "overlap_tokens": 16, "max_windows": 32}
    pipeline["processors"][0]["sesa_encode"]["chunking"] = chunking
    os_client.ingest.put_pipeline(id=pipeline_name, body=pipeline)
    index = f"sesa-long-{uuid.uuid4().hex[:6]}"
    text = f"{FILLER} {NEEDLE} {FILLER}"
    try:
        _other_chunking_is_refused(os_client, index, pipeline_name, chunking)
        # an index created for this chunking (the template's other _meta, the models, stays)
        os_client.indices.create(index=index, body={"mappings": {"_meta": {"sesa": {"chunking": {"sesa": chunking}}}}})
        assert os_client.indices.get_mapping(index=index)[index]["mappings"]["_meta"]["sesa"]["models"]
        os_client.index(index=index, id="long", body={"title": "Castles", "text": text},
                        params={"pipeline": pipeline_name, "refresh": "true"})
        os_client.index(index=index, id="short", body={"title": "Gardens", "text": "Roses and tulips in spring."},
                        params={"pipeline": pipeline_name, "refresh": "true"})
        short = os_client.get(index=index, id="short")["_source"]  # one window: no chunks, the vector is it
        assert f["chunks"] not in short and short[f["coverage"]] == pytest.approx(1.0) and short[f["dense"]]
        src = os_client.get(index=index, id="long")["_source"]
        chunks = src[f["chunks"]]
        assert len(chunks) > 5 and src[f["coverage"]] == pytest.approx(1.0)
        joined = "Castles\n" + text
        assert chunks[0]["start"] == 0 and chunks[-1]["end"] == len(joined)
        assert src[f["dense"]] == pytest.approx(chunks[0]["dense"], abs=1e-6)  # the single vector: the first window
        with InferenceClient(stack.server_address) as inference:  # a window's vector is Encode of its span
            mid = chunks[len(chunks) // 2]
            alone = inference.encode([joined[mid["start"]:mid["end"]]]).embeddings[0]
            assert cosine(mid["dense"], list(alone.dense)) > 0.98

        res = os_client.search(index=index, params={"search_pipeline": conv["default_search_pipeline"]}, body={
            "size": 2, "ext": {"sesa": {"query_text": QUERY, "mode": "dense", "explain": True}}})
        top = res["hits"]["hits"][0]
        assert top["_id"] == "long", res["hits"]["hits"]
        # a request without a _source setting gets the windows' spans, not their vectors; "_source": true gets all
        assert top["_source"][f["chunks"]] and all(set(w) == {"start", "end"} for w in top["_source"][f["chunks"]])
        full = os_client.search(index=index, params={"search_pipeline": conv["default_search_pipeline"]}, body={
            "size": 1, "_source": True, "ext": {"sesa": {"query_text": QUERY, "mode": "dense"}}})["hits"]["hits"][0]
        assert all(len(w["dense"]) == len(src[f["dense"]]) for w in full["_source"][f["chunks"]])
        passage = top["fields"]["_sesa"][0]["passage"]
        assert "Python service" in passage["text"] and joined[passage["start"]:passage["end"]] == passage["text"]

        # the passage is the window nearest to the query by the exact cosine (the windows' vectors in _source)
        with InferenceClient(stack.server_address) as inference:
            from integration.inference import pb

            query = list(inference.encode([QUERY], kind=pb.TEXT_KIND_QUERY).embeddings[0].dense)
        nearest = max(chunks, key=lambda w: cosine(query, w["dense"]))
        assert (passage["start"], passage["end"]) == (nearest["start"], nearest["end"])
        _same_passage_on_every_path(os_client, conv, index, pipeline_name, passage)
    finally:
        if not os.environ.get("SESA_KEEP_STACK"):
            os_client.indices.delete(index=index, ignore_unavailable=True)
        os_client.ingest.delete_pipeline(id=pipeline_name, ignore=[404])


def _other_chunking_is_refused(os_client, index: str, pipeline_name: str, chunking: dict) -> None:
    """The sesa-* template records the shipped pipeline's chunking: documents cut another way are refused with the
    reason, before the index exists (the template's record counts) and after, and nothing is written."""
    from opensearchpy.exceptions import TransportError

    shipped = schemas.encode_processor()["chunking"]
    assert shipped != chunking
    for attempt in ("auto-create", "existing"):
        res = os_client.bulk(body=[{"index": {"_index": index, "_id": "x"}}, {"title": "T", "text": "some text"}],
                             params={"pipeline": pipeline_name, "refresh": "true"})
        error = res["items"][0]["index"].get("error")
        assert error, (attempt, res["items"][0])
        reason = str(error)
        assert "records chunking" in reason and "_meta.sesa.chunking.sesa" in reason, reason
        assert "window_tokens=128" in reason and "allow_model_change" in reason, reason
        if attempt == "auto-create":
            assert not os_client.indices.exists(index=index), "a refused document creates no index"
            os_client.indices.create(index=index)  # from the template, with its record
    try:
        assert os_client.count(index=index)["count"] == 0
    finally:
        os_client.indices.delete(index=index)
    with pytest.raises(TransportError):
        os_client.indices.get(index=index)


def _same_passage_on_every_path(os_client, conv, index: str, pipeline: str, passage: dict) -> None:
    """The page fetch names each hit's best window (a lookup with inner hits, no window vector read from _source):
    the same passage whatever the request fetches, in hybrid with rerank, with highlights (the main branch fetches its
    own hits), and next to documents of one window (no chunks stored, so no passage: the whole text matched)."""
    params = {"search_pipeline": conv["default_search_pipeline"]}
    os_client.index(index=index, id="plain", body={"title": "Records", "text": "Patient records kept on paper."},
                    params={"pipeline": pipeline, "refresh": "true"})  # one window
    rerank = {"top_n": 5, "out_of_domain": "rerank", "without_evidence": "rerank"}
    bodies = {
        "dense, title only": {"size": 3, "_source": ["title"], "ext": {"sesa": {"query_text": QUERY, "mode": "dense",
                                                                                "explain": True}}},
        "hybrid + rerank": {"size": 3, "_source": False, "ext": {"sesa": {"query_text": QUERY, "mode": "hybrid",
                                                                           "explain": True, "rerank": rerank}}},
        "highlight": {"size": 3, "_source": ["title"], "highlight": {"fields": {"text": {}}},
                      "ext": {"sesa": {"query_text": QUERY, "mode": "dense", "explain": True}}},
    }
    for name, body in bodies.items():
        hits = {h["_id"]: h for h in os_client.search(index=index, params=params, body=body)["hits"]["hits"]}
        assert set(hits) == {"long", "short", "plain"}, (name, list(hits))
        assert hits["long"]["fields"]["_sesa"][0]["passage"] == passage, name
        assert hits["short"]["fields"]["_sesa"][0]["passage"] is None, f"{name}: one window, no passage"
        assert hits["plain"]["fields"]["_sesa"][0]["passage"] is None, f"{name}: one window, no passage"
        assert not any("inner_hits" in h for h in hits.values()), f"{name}: the lookup's inner hits leaked"
        for h in hits.values():
            if body["_source"] is False:
                assert "_source" not in h, name
            else:
                assert set(h["_source"]) <= {"title"}, (name, h["_source"])
    # nothing to name: no explanation, nothing looked up, the request's _source as asked
    hits = os_client.search(index=index, params=params, body={
        "size": 3, "_source": ["title"], "ext": {"sesa": {"query_text": QUERY, "mode": "hybrid", "explain": False,
                                                          "rerank": False}}})["hits"]["hits"]
    assert hits and all("fields" not in h and set(h["_source"]) <= {"title"} for h in hits), hits


def test_a_sesa_text_field_with_chunking_stores_every_window_and_names_the_passage(os_client, stack):
    """`chunking` as a sesa_text mapping parameter means what sesa_encode's option means: the system processor stores
    every window of the field's text (no pipeline), the field's search scores a document by its best window and names
    it; the parameter cannot change once set."""
    from opensearchpy.exceptions import RequestError

    conv = schemas.conventions()
    f = schemas.field_names(schemas.text_field_prefix("body"))
    chunking = {"window_tokens": 128, "overlap_tokens": 16, "max_windows": 32}
    index = f"long-text-{uuid.uuid4().hex[:6]}"
    text = f"{FILLER} {NEEDLE} {FILLER}"
    os_client.indices.create(index=index, body={"mappings": {"properties": {
        "title": {"type": "keyword"}, "body": {"type": "sesa_text", "chunking": chunking}}}})
    try:
        props = os_client.indices.get_mapping(index=index)[index]["mappings"]["properties"]
        assert props["body"]["chunking"] == chunking, props["body"]
        assert props[f["chunks"]]["type"] == "nested" and props[f["coverage"]]["type"] == "float"
        assert props[f["chunks"]]["properties"]["dense"]["dimension"] == props[f["dense"]]["dimension"]
        os_client.index(index=index, id="long", body={"title": "Castles", "body": text}, params={"refresh": "true"})
        os_client.index(index=index, id="short", body={"title": "Gardens", "body": "Roses and tulips in spring."},
                        params={"refresh": "true"})
        src = os_client.get(index=index, id="long")["_source"]
        chunks = src[f["chunks"]]
        assert len(chunks) > 5 and src[f["coverage"]] == pytest.approx(1.0)
        assert chunks[0]["start"] == 0 and chunks[-1]["end"] == len(text)  # offsets into the field's own text
        assert src[f["dense"]] == pytest.approx(chunks[0]["dense"], abs=1e-6)

        params = {"search_pipeline": conv["default_search_pipeline"]}
        rerank = {"top_n": 5, "out_of_domain": "rerank", "without_evidence": "rerank"}
        passages = []
        for ext in ({"mode": "dense", "explain": True}, {"mode": "hybrid", "explain": True, "rerank": rerank}):
            res = os_client.search(index=index, params=params, body={
                "size": 2, "_source": ["title"], "ext": {"sesa": {"query_text": QUERY, "field": "body", **ext}}})
            hits = {h["_id"]: h for h in res["hits"]["hits"]}
            if ext["mode"] == "dense":  # (the cross-encoder, trained on SciFact, may order two such texts either way)
                assert res["hits"]["hits"][0]["_id"] == "long", res["hits"]["hits"]
            top = hits["long"]
            assert "inner_hits" not in top and top["_source"] == {"title": "Castles"}
            passage = top["fields"]["_sesa"][0]["passage"]
            assert "Python service" in passage["text"] and text[passage["start"]:passage["end"]] == passage["text"]
            passages.append(passage)
        assert passages[0] == passages[1]

        with pytest.raises(RequestError) as changed:
            os_client.indices.put_mapping(index=index, body={"properties": {"body": {
                "type": "sesa_text", "chunking": {**chunking, "max_windows": 8}}}})
        assert "chunking" in str(changed.value.info), changed.value.info
    finally:
        if not os.environ.get("SESA_KEEP_STACK"):
            os_client.indices.delete(index=index, ignore_unavailable=True)
