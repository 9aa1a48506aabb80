"""Long documents on the real stack: `sesa_encode` with `chunking` stores every window's vector and span, the dense
branch scores a document by its best window, and the hit names the passage that matched (no extra model call).

Chunking is off in the shipped pipeline until it is measured as a default; this test uses a pipeline of its own.
"""

from __future__ import annotations

import copy
import os
import uuid

import pytest

from integration import schemas

pytestmark = pytest.mark.e2e

FILLER = " ".join(f"Paragraph {i} is about the history of medieval castles, their walls and their towers." for i in range(60))
NEEDLE = "The hospital replaced paper patient records with a Python service that writes them to an SQL database."


def test_a_long_document_is_found_by_its_best_window_and_names_the_passage(os_client, stack):
    from integration.inference import InferenceClient
    from integration.tests.index_checks import cosine

    conv = schemas.conventions()
    f = schemas.field_names()
    pipeline_name = f"sesa-ingest-chunked-{uuid.uuid4().hex[:6]}"
    pipeline = copy.deepcopy(schemas.load_json("ingest-pipeline.json"))
    pipeline["processors"][0]["sesa_encode"]["chunking"] = {"window_tokens": 128, "overlap_tokens": 16, "max_windows": 32}
    os_client.ingest.put_pipeline(id=pipeline_name, body=pipeline)
    index = f"sesa-long-{uuid.uuid4().hex[:6]}"
    text = f"{FILLER} {NEEDLE} {FILLER}"
    try:
        os_client.index(index=index, id="long", body={"title": "Castles", "text": text},
                        params={"pipeline": pipeline_name, "refresh": "true"})
        os_client.index(index=index, id="short", body={"title": "Gardens", "text": "Roses and tulips in spring."},
                        params={"pipeline": pipeline_name, "refresh": "true"})
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
            "size": 2, "ext": {"sesa": {"query_text": "Python software for hospital patient records in SQL",
                                        "mode": "dense", "explain": True}}})
        top = res["hits"]["hits"][0]
        assert top["_id"] == "long", res["hits"]["hits"]
        passage = top["fields"]["_sesa"][0]["passage"]
        assert "Python service" in passage["text"] and joined[passage["start"]:passage["end"]] == passage["text"]
    finally:
        if not os.environ.get("SESA_KEEP_STACK"):
            os_client.indices.delete(index=index, ignore_unavailable=True)
        os_client.ingest.delete_pipeline(id=pipeline_name, ignore=[404])
