"""`sesa ingest` against an in-memory fake of the cluster, through opensearch-py's real streaming_bulk."""

from __future__ import annotations

import pytest
from eval_fakes import FakeClient, connection_error
from test_eval_datasets import write_dataset

from integration import ingest as ingest_mod
from integration.cluster.errors import SesaError
from ir.beir import Dataset

STATUS = "sesa_status"


@pytest.fixture
def ds(tmp_path):
    return Dataset(write_dataset(tmp_path / "tiny"))


def sent_ids(client):
    return [call for call in client.calls if call[0] == "bulk"]


def test_new_sesa_index_is_created_by_the_template_and_filled(ds):
    client = FakeClient()
    res = ingest_mod.ingest(client, ds, "sesa-tiny", progress=False)
    assert res.ok and res.created_index
    assert ("create", "sesa-tiny", None) in client.calls  # no body: the template decides
    assert res.indexed == 4 and res.already_present == 0 and res.corpus_documents == 4
    assert set(client.indices_data["sesa-tiny"]) == {"d1", "d2", "3", "d4"}
    assert all(d[STATUS] == "encoded" for d in client.indices_data["sesa-tiny"].values())
    assert client.indices_data["sesa-tiny"]["d1"] == {"title": "Alpha", "text": "first document", STATUS: "encoded"}
    assert res.to_dict()["ok"] is True


def test_plain_index_gets_the_template_text_mappings_and_one_shard(ds):
    client = FakeClient()
    ingest_mod.ingest(client, ds, "bm25-tiny", pipeline="_none", progress=False)
    body = client.index_bodies["bm25-tiny"]
    assert set(body["mappings"]["properties"]) == {"title", "text"}
    assert body["mappings"]["properties"]["text"]["analyzer"] == "english"
    assert body["settings"]["number_of_shards"] == 1
    assert all(r["pipeline"] == "_none" for r in client.bulk_requests)


def test_resume_skips_documents_with_status_and_resends_those_without(ds):
    client = FakeClient()
    client.indices.create(index="sesa-tiny")
    client.put_docs("sesa-tiny", {"d1": {"title": "Alpha", STATUS: "encoded"},
                                  "d2": {"title": ""},  # indexed without vectors: must be sent again
                                  "zz": {"title": "not in corpus", STATUS: "encoded"}})
    res = ingest_mod.ingest(client, ds, "sesa-tiny", progress=False)
    assert res.require_status and not res.created_index
    assert res.already_present == 1
    assert res.indexed == 3
    assert sum(r["docs"] for r in client.bulk_requests) == 3
    assert client.indices_data["sesa-tiny"]["d2"][STATUS] == "encoded"
    again = ingest_mod.ingest(client, ds, "sesa-tiny", progress=False)
    assert again.already_present == 4 and again.indexed == 0 and again.ok
    assert sum(r["docs"] for r in client.bulk_requests) == 3  # nothing sent the second time


def test_resume_on_plain_index_skips_any_present_id(ds):
    client = FakeClient()
    client.put_docs("bm25-tiny", {"d1": {"title": "x"}, "3": {"title": "y"}}, body=ingest_mod.plain_index_body())
    res = ingest_mod.ingest(client, ds, "bm25-tiny", pipeline="_none", progress=False)
    assert not res.require_status
    assert res.already_present == 2 and res.indexed == 2


def test_pipeline_none_on_a_sesa_index_does_not_require_status(ds):
    client = FakeClient()
    client.indices.create(index="sesa-tiny")
    client.put_docs("sesa-tiny", {"d1": {"title": "Alpha"}})
    res = ingest_mod.ingest(client, ds, "sesa-tiny", pipeline="_none", progress=False)
    assert not res.require_status and res.already_present == 1 and res.indexed == 3


def test_fresh_deletes_the_index_first(ds):
    client = FakeClient()
    client.put_docs("bm25-tiny", {"d1": {}, "old": {}}, body=ingest_mod.plain_index_body())
    res = ingest_mod.ingest(client, ds, "bm25-tiny", pipeline="_none", fresh=True, progress=False)
    assert ("delete", "bm25-tiny") in client.calls
    assert res.created_index and res.indexed == 4
    assert "old" not in client.indices_data["bm25-tiny"]


def test_batch_size_sets_documents_per_bulk_request(ds):
    client = FakeClient()
    ingest_mod.ingest(client, ds, "bm25-tiny", pipeline="_none", batch_size=3, progress=False)
    assert [r["docs"] for r in client.bulk_requests] == [3, 1]
    with pytest.raises(SesaError, match="at least 1"):
        ingest_mod.ingest(client, ds, "bm25-tiny", batch_size=0, progress=False)


def test_failures_are_grouped_by_reason_with_examples(ds):
    err = lambda i: {"type": "illegal_argument_exception",
                     "reason": f"[sesa_encode] inference server rejected the text of document [{i}]"}
    client = FakeClient(fail_ids={"d1": err("d1"), "d2": err("d2"),
                                  "d4": {"type": "mapper_parsing_exception", "reason": "bad field"}})
    res = ingest_mod.ingest(client, ds, "sesa-tiny", progress=False)
    assert not res.ok
    assert res.indexed == 1 and res.failed == 3
    assert len(res.failures) == 2
    grouped = next(g for r, g in res.failures.items() if "rejected" in r)
    assert grouped.count == 2 and grouped.examples == ["d1", "d2"]
    assert any(r.startswith("HTTP 400 mapper_parsing_exception: bad field") for r in res.failures)
    text = res.summary()
    assert "failed:           3" in text and "2 x HTTP 400 illegal_argument_exception" in text
    # a re-run sends only the failed documents
    client.fail_ids.clear()
    before = sum(r["docs"] for r in client.bulk_requests)
    again = ingest_mod.ingest(client, ds, "sesa-tiny", progress=False)
    assert again.ok and again.indexed == 3 and again.already_present == 1
    assert sum(r["docs"] for r in client.bulk_requests) - before == 3


def test_a_failing_bulk_request_fails_its_documents_without_raising(ds):
    client = FakeClient()
    client.bulk_raises = connection_error()
    res = ingest_mod.ingest(client, ds, "bm25-tiny", pipeline="_none", progress=False, max_retries=0)
    assert res.failed == 4 and res.indexed == 0
    (reason, group), = res.failures.items()
    assert "connection refused" in reason and group.count == 4


def test_unknown_pipeline_is_a_clear_error(ds):
    with pytest.raises(SesaError, match="ingest pipeline 'nope' does not exist"):
        ingest_mod.ingest(FakeClient(), ds, "x-tiny", pipeline="nope", progress=False)


def test_existing_ids_pages_through_a_scroll_and_clears_it():
    client = FakeClient()
    client.put_docs("bm25-x", {f"id{i}": {} for i in range(5)}, body=ingest_mod.plain_index_body())
    assert ingest_mod.existing_ids(client, "bm25-x", page_size=2) == {f"id{i}" for i in range(5)}
    assert client.scrolls == {}
    search = next(c for c in client.calls if c[0] == "search")
    assert search[2]["_source"] is False and search[2]["sort"] == ["_doc"]


def test_index_is_complete(ds):
    client = FakeClient()
    assert ingest_mod.index_is_complete(client, ds, "sesa-tiny") == (False, "index sesa-tiny does not exist")
    client.indices.create(index="sesa-tiny")
    client.put_docs("sesa-tiny", {"d1": {STATUS: "encoded"}, "d2": {}, "3": {STATUS: "encoded"}, "d4": {STATUS: "x"}})
    complete, why = ingest_mod.index_is_complete(client, ds, "sesa-tiny")
    assert not complete and "3 documents with sesa_status, the corpus 4" in why
    ingest_mod.ingest(client, ds, "sesa-tiny", progress=False)
    assert ingest_mod.index_is_complete(client, ds, "sesa-tiny") == (True, "")


def test_cli_exit_status_is_2_when_documents_failed(ds, monkeypatch, capsys):
    import argparse

    from integration.cluster import stack

    client = FakeClient(fail_ids={"d1": {"type": "x", "reason": "boom"}})
    monkeypatch.setattr(stack, "opensearch_client", lambda url: client)
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    ingest_mod.register(sub)
    args = parser.parse_args(["ingest", str(ds.path), "--index", "sesa-tiny", "--no-progress",
                              "--cluster", "http://fake:9200"])
    assert args.func(args) == ingest_mod.EXIT_FAILED_DOCS
    assert "1 x HTTP 400 x: boom" in capsys.readouterr().out
    client.fail_ids.clear()
    assert args.func(args) == 0


def test_cluster_url_resolution(monkeypatch):
    monkeypatch.setenv("SESA_CLUSTER_URL", "http://env:9999/")
    assert ingest_mod.resolve_cluster_url("http://arg:1/") == "http://arg:1"
    assert ingest_mod.resolve_cluster_url(None) == "http://env:9999"
