"""Vector search works on the real node without k-NN's native libraries: the lucene HNSW engine that our
index template pins, rank_features for concept vectors, and both combined in a bool query."""

from __future__ import annotations

import uuid

import pytest

from integration import schemas

pytestmark = pytest.mark.e2e

DIM = 4


@pytest.fixture
def index(os_client):
    """An index with the template's own mappings (rendered at a small dimension), outside its pattern so
    no ingest pipeline runs."""
    name = f"vectest-{uuid.uuid4().hex[:8]}"
    template = schemas.index_template(DIM, {"sesa": {"dense": "test@1", "concepts": "test@1"}})["template"]
    settings = {**template["settings"], "number_of_replicas": 0}
    settings.pop("default_pipeline", None)
    os_client.indices.create(index=name, body={"settings": settings, "mappings": template["mappings"]})
    f = schemas.field_names()
    docs = {
        "a": {"title": "fast running shoes", "text": "shoes for runners", f["dense"]: [1, 0, 0, 0],
              f["concepts"]: {"esco-run": 0.9, "esco-shoe": 0.5}},
        "b": {"title": "slow walking", "text": "walking in the park", f["dense"]: [0, 1, 0, 0],
              f["concepts"]: {"esco-walk": 0.8}},
        "c": {"title": "running a database", "text": "operate SQL databases", f["dense"]: [0.7, 0.7, 0, 0],
              f["concepts"]: {"esco-sql": 0.7, "esco-run": 0.1}},
    }
    for doc_id, doc in docs.items():
        os_client.index(index=name, id=doc_id, body=doc)
    os_client.indices.refresh(index=name)
    yield name
    os_client.indices.delete(index=name)


def _ids(response):
    return [hit["_id"] for hit in response["hits"]["hits"]]


def test_knn_query_uses_lucene_hnsw(os_client, index):
    f = schemas.field_names()
    mapping = os_client.indices.get_mapping(index=index)[index]["mappings"]["properties"][f["dense"]]
    assert mapping["method"]["engine"] == "lucene"
    res = os_client.search(index=index, body={"query": {"knn": {f["dense"]: {"vector": [1, 0.1, 0, 0], "k": 3}}}})
    assert _ids(res)[:2] == ["a", "c"]
    res = os_client.search(index=index, body={"query": {"knn": {f["dense"]: {"vector": [0, 1, 0, 0], "k": 3}}}})
    assert _ids(res)[0] == "b"


def test_rank_feature_scores_by_concept_weight(os_client, index):
    f = schemas.field_names()
    body = {"query": {"rank_feature": {"field": f"{f['concepts']}.esco-run", "linear": {}}}}
    res = os_client.search(index=index, body=body)
    assert _ids(res) == ["a", "c"]
    assert res["hits"]["hits"][0]["_score"] == pytest.approx(0.9, rel=0.01)


def test_bool_combines_bm25_knn_and_concepts(os_client, index):
    f = schemas.field_names()
    body = {
        "query": {
            "bool": {
                "should": [
                    {"match": {"title": "running"}},
                    {"rank_feature": {"field": f"{f['concepts']}.esco-sql", "linear": {}}},
                ],
                "filter": [{"knn": {f["dense"]: {"vector": [0.7, 0.7, 0, 0], "k": 2}}}],
            }
        }
    }
    res = os_client.search(index=index, body=body)
    assert set(_ids(res)) <= {"c", "a", "b"}
    assert _ids(res)[0] == "c"


def test_full_source_with_vectors_survives_segment_merges(os_client, index):
    """k-NN 3.5's derived source fails fetches after a merge (k-NN #3458); the template turns it off."""
    f = schemas.field_names()
    for i in range(3):  # several segments, then one
        os_client.index(index=index, id=f"m{i}", body={"title": f"merge {i}", f["dense"]: [0, 0, 1, i],
                                                        f["concepts"]: {"esco-merge": 0.5}})
        os_client.indices.refresh(index=index)
    os_client.indices.forcemerge(index=index, max_num_segments=1)
    os_client.indices.refresh(index=index)
    res = os_client.search(index=index, body={"size": 10, "query": {"match_all": {}}})
    assert len(res["hits"]["hits"]) == 6
    assert all(len(hit["_source"][f["dense"]]) == DIM for hit in res["hits"]["hits"])
