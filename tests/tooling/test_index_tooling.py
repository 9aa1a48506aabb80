"""`sesa index create|list`: the bodies it creates and what it finds in mappings (no cluster needed)."""

from __future__ import annotations

import pytest

from integration import schemas
from integration.cluster.errors import SesaError
from integration.cluster.indices import field_index_body, format_indices, pipeline_index_body, sesa_indices
from integration.cluster.templates import ModelFacts

FACTS = ModelFacts(dense_dimension=384, dense_model="enc@1", concept_model="esco-skills@2")


def test_the_pipeline_layout_is_the_templates_mapping_with_the_servers_facts():
    body = pipeline_index_body(FACTS)
    template = schemas.index_template(384, FACTS.models_meta())["template"]
    assert body == {"settings": template["settings"], "mappings": template["mappings"]}
    props = body["mappings"]["properties"]
    assert props["sesa_dense"]["type"] == "knn_vector" and props["sesa_dense"]["dimension"] == 384
    assert props["sesa_dense"]["method"]["engine"] == "lucene"
    assert body["mappings"]["_meta"]["sesa"]["models"] == {"sesa": {"dense": "enc@1", "concepts": "esco-skills@2"}}
    assert body["settings"]["default_pipeline"] == schemas.conventions()["default_ingest_pipeline"]
    # the chunking record is the shipped pipeline's sesa_encode option (what the plugin's guard compares with)
    shipped = schemas.encode_processor()["chunking"]
    assert body["mappings"]["_meta"]["sesa"]["chunking"] == {"sesa": shipped}


def test_an_index_records_the_chunking_it_is_created_for():
    assert pipeline_index_body(FACTS, None)["mappings"]["_meta"]["sesa"]["chunking"] == {"sesa": "off"}
    body = pipeline_index_body(FACTS, {"window_tokens": 128})
    assert body["mappings"]["_meta"]["sesa"] == {"models": FACTS.models_meta(), "chunking": {"sesa": {"window_tokens": 128}}}
    assert schemas.index_template(384, {})["template"]["mappings"]["_meta"]["sesa"]["chunking"] == schemas.chunking_meta()
    # the CLI's --chunking: absent = shipped, 'off' = none, else a JSON object
    assert schemas.chunking_arg(None) == schemas.encode_processor()["chunking"]
    assert schemas.chunking_arg("off") is None and schemas.chunking_arg("{}") == {}
    assert schemas.chunking_arg(' {"max_windows": 4} ') == {"max_windows": 4}
    for bad in ("[1]", "{nope"):
        with pytest.raises(SesaError, match="--chunking must be"):
            schemas.chunking_arg(bad)
    fields = field_index_body(["body"], chunking={"overlap_tokens": 16})["mappings"]["properties"]
    assert fields == {"body": {"type": "sesa_text", "chunking": {"overlap_tokens": 16}}}
    # sesa_text: no parameter is the plugin's default (it writes the shipped option in); 'off' keeps the first window
    assert field_index_body(["body"])["mappings"]["properties"] == {"body": {"type": "sesa_text"}}
    assert field_index_body(["body"], chunking=None)["mappings"]["properties"]["body"]["chunking"] == {"max_windows": 1}


def test_the_field_layout_maps_one_sesa_text_field_per_name():
    body = field_index_body(["body", "summary"], concept_space="wordnet-nouns")
    assert body["mappings"]["properties"] == {"body": {"type": "sesa_text", "concept_space": "wordnet-nouns"},
                                              "summary": {"type": "sesa_text", "concept_space": "wordnet-nouns"}}
    assert "default_pipeline" not in body["settings"] and body["settings"]["index.knn"] is True
    for bad in (["a.b"], ["_id"], [""]):
        with pytest.raises(SesaError, match="top-level names"):
            field_index_body(bad)


class _Client:
    """The read calls `sesa_indices` makes, answered from literals."""

    def __init__(self, mappings, counts, exists=None):
        from types import SimpleNamespace

        self.exists = exists or {}  # (index, field) -> documents that have the field
        self.counts = counts
        self.indices = SimpleNamespace(get_mapping=lambda index, params=None: mappings)

    def count(self, index, body=None):
        if body is None:
            return {"count": self.counts[index]}
        return {"count": self.exists.get((index, body["query"]["exists"]["field"]), 0)}


def test_list_finds_sesa_indices_and_names_a_broken_mapping():
    good = pipeline_index_body(FACTS)["mappings"]
    broken = {"properties": {"text": {"type": "text"}, "sesa_dense": {"type": "float"},
                             "sesa_concepts": {"properties": {"esco-1": {"type": "float"}}},
                             "sesa_concept_labels": {"type": "text"}}}
    field = {"properties": {"body": {"type": "sesa_text"}, "body_sesa_dense": {"type": "knn_vector", "dimension": 384},
                            "body_sesa_concepts": {"type": "rank_features"},
                            "body_sesa_concept_labels": {"type": "keyword"}},
             "_meta": {"sesa": {"models": {"body_sesa": {"dense": "enc@1", "concepts": "nouns@1"}}}}}
    plain = {"properties": {"title": {"type": "text"}}}
    client = _Client({"good": {"mappings": good}, "my-docs": {"mappings": broken}, "fielded": {"mappings": field},
                      "plain": {"mappings": plain}, ".hidden": {"mappings": good}},
                     {"good": 5, "my-docs": 2, "fielded": 1, "plain": 9})
    rows = {r["index"]: r for r in sesa_indices(client)}
    assert set(rows) == {"good", "my-docs", "fielded"}
    assert rows["good"]["problems"] == [] and rows["good"]["docs"] == 5
    assert rows["my-docs"]["problems"] == ["sesa_dense is float, not knn_vector", "sesa_concepts is object, not rank_features",
                                           "sesa_concept_labels is text, not keyword"]
    assert rows["fielded"]["sesa_text_fields"] == ["body"] and rows["fielded"]["problems"] == []
    text = format_indices(list(rows.values()))
    assert "BROKEN MAPPING: sesa_dense is float, not knn_vector" in text and "fielded (1 docs): body;" in text
    assert "nouns@1" in text
    assert format_indices([]).startswith("no index carries SESA fields")


def test_list_says_when_the_clusters_pipeline_cuts_texts_otherwise_than_an_index_records():
    from types import SimpleNamespace

    from integration.cluster.indices import deployed_chunking

    good = pipeline_index_body(FACTS)["mappings"]
    old = pipeline_index_body(FACTS, {"max_windows": 16})["mappings"]
    partial = pipeline_index_body(FACTS, {"max_windows": 64})["mappings"]  # other keys at their defaults
    client = _Client({"good": {"mappings": good}, "old": {"mappings": old}, "partial": {"mappings": partial}},
                     {"good": 1, "old": 1, "partial": 1})
    name = schemas.conventions()["default_ingest_pipeline"]
    deployed = schemas.load_json("ingest-pipeline.json")
    client.ingest = SimpleNamespace(get_pipeline=lambda id: {name: deployed})
    assert deployed_chunking(client) == schemas.encode_processor()["chunking"]
    rows = {r["index"]: r for r in sesa_indices(client)}
    assert rows["good"]["targets"]["sesa"]["pipeline_cuts_alike"] is True
    assert rows["partial"]["targets"]["sesa"]["pipeline_cuts_alike"] is True
    assert rows["old"]["targets"]["sesa"]["pipeline_cuts_alike"] is False
    text = format_indices(list(rows.values()))
    assert text.count("pipeline cuts texts otherwise") == 1 and "old (1 docs)" in text

    def missing(id):
        raise RuntimeError("404")

    client.ingest = SimpleNamespace(get_pipeline=missing)  # unknown: nothing claimed
    assert all("pipeline_cuts_alike" not in r["targets"]["sesa"] for r in sesa_indices(client))


def test_list_says_which_documents_were_encoded_without_windows():
    good = pipeline_index_body(FACTS)["mappings"]
    assert "sesa_coverage" in good["properties"]
    client = _Client({"mixed": {"mappings": good}, "chunked": {"mappings": good}, "old": {"mappings": good}},
                     {"mixed": 10, "chunked": 4, "old": 3},
                     {("mixed", "sesa_dense"): 10, ("mixed", "sesa_coverage"): 6,
                      ("chunked", "sesa_dense"): 4, ("chunked", "sesa_coverage"): 4, ("old", "sesa_dense"): 3})
    rows = {r["index"]: r for r in sesa_indices(client)}
    assert rows["mixed"]["targets"]["sesa"]["windows"] == {"encoded": 10, "with_windows": 6}
    text = format_indices(list(rows.values()))
    assert "sesa: 4 of 10 documents were encoded without windows" in text and "_reindex" in text
    assert "sesa: every encoded document has its windows" in text  # chunked
    assert text.count("sesa: sesa_encode must cut texts with chunking") == 3  # each index's record is shown
    assert text.count("without windows") == 1  # an index never chunked is not flagged
