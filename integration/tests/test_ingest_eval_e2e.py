"""`sesa ingest` and `sesa eval` on the real stack: the ADI collection goes through the real `sesa-ingest`
pipeline (our plugin calling the real inference server), every stored vector is checked against what the
server's Encode returns for the same text, and the evaluation writes its reports.

The shared datasets are found at SESA_DATA_DIR (default: <repo>/../shared/data).
"""

from __future__ import annotations

import json
import os
import warnings

import pytest

from integration import schemas
from integration.tests.index_checks import (
    assert_every_document_has_the_sesa_fields,
    assert_vectors_equal_encode,
    fetch_sources,
    require_dataset,
)

pytestmark = pytest.mark.e2e

INDEX = "sesa-adi-e2e"


@pytest.fixture(scope="module")
def adi():
    return require_dataset("adi")


@pytest.fixture(scope="module")
def server_info(stack):
    from integration.inference import InferenceClient

    with InferenceClient(stack.server_address) as client:
        return client.info()


@pytest.fixture(scope="module")
def ingested(os_client, adi):
    from integration.ingest import ingest

    result = ingest(os_client, adi, INDEX, fresh=True, batch_size=32, progress=False)
    yield result
    if not os.environ.get("SESA_KEEP_STACK"):
        os_client.indices.delete(index=INDEX, ignore_unavailable=True)


def test_ingest_indexes_every_document_through_the_pipeline(ingested, adi):
    assert ingested.ok, ingested.summary()
    assert ingested.created_index and ingested.require_status
    assert ingested.indexed == adi.document_count == 82


def test_every_document_has_the_sesa_fields(os_client, ingested, adi, server_info):
    f = schemas.field_names()
    encoder = next(m for m in server_info.models if m.role == "encoder")
    assert_every_document_has_the_sesa_fields(os_client, INDEX, adi.document_count)
    docs = fetch_sources(os_client, INDEX, [d.id for d in adi.iter_corpus()])
    assert set(docs) == {d.id for d in adi.iter_corpus()}
    for doc_id, src in docs.items():
        assert src[f["status"]] == schemas.conventions()["status_values"]["encoded"], doc_id
        assert len(src[f["dense"]]) == encoder.dimension, doc_id
        assert isinstance(src[f["concepts"]], dict) and src[f["concepts"]], doc_id
        assert all(w > 0 for w in src[f["concepts"]].values()), doc_id
        assert isinstance(src[f["concept_labels"]], list) and src[f["concept_labels"]], doc_id
        assert set(src[f["model"]]) == {"dense", "concepts"}, doc_id


def test_stored_vectors_equal_what_encode_returns(os_client, ingested, adi, stack):
    assert assert_vectors_equal_encode(os_client, INDEX, adi, stack.server_address) == adi.document_count


def test_rerun_ingests_nothing(os_client, ingested, adi):
    from integration.ingest import ingest

    again = ingest(os_client, adi, INDEX, progress=False)
    assert again.ok and again.indexed == 0 and again.already_present == 82


def test_eval_writes_reports(os_client, ingested, adi, stack, tmp_path, capsys):
    from integration import cli as sesa_cli
    from integration.evaluation.report import REQUIRED_KEYS
    from integration.evaluation.runner import search_pipeline_exists

    pipeline_exists, why = search_pipeline_exists(os_client, schemas.conventions()["default_search_pipeline"])
    modes = ["bm25", "bm25+dense", "dense", "concepts", "hybrid", "hybrid+rerank"] if pipeline_exists else ["bm25"]
    out = tmp_path / "report"
    rc = sesa_cli.main(["eval", str(adi.path), "--index", INDEX, "--modes", ",".join(modes), "--out", str(out),
                        "--cluster", stack.url, "--server", stack.server_address, "--no-progress",
                        "--permutations", "2000"])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert "| bm25 |" in printed
    report = json.loads((out / "report.json").read_text())
    assert set(REQUIRED_KEYS) <= set(report)
    assert report["dataset"]["judged_queries"] == 35
    assert report["index"] == INDEX
    bm25 = report["modes"]["bm25"]
    assert bm25["status"] == "ok"
    # plain BM25 on ADI: 0.41-0.48 in the reference baselines; a broken index or query would be far below
    assert 0.3 < bm25["metrics"]["ndcg@10"] < 0.7, bm25
    assert len(report["per_query"]["bm25"]["ndcg@10"]) == 35
    assert report["opensearch"]["version"] == schemas.conventions()["opensearch_version"]
    assert report["plugin"].get("version"), report["plugin"]
    assert report["models"]["inference_server"].get("models"), report["models"]["inference_server"]
    for mode in modes[1:]:
        assert report["modes"][mode]["status"] == "ok", (mode, report["modes"][mode])
    if pipeline_exists:
        # every mode is also compared with the plain BM25 + dense hybrid, the comparison a user makes first
        plain = report["significance"]["plain_hybrid"]
        assert plain["baseline"] == "bm25+dense" and set(plain["comparisons"]) == set(modes) - {"bm25+dense"}
        assert "Δ vs bm25+dense" in printed
    else:
        warnings.warn(f"only the bm25 mode was evaluated: {why}", stacklevel=1)
    assert (out / "report.md").read_text().count("| bm25 |") == 1
    assert (out / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_index_under_any_name_gives_the_same_ndcg(os_client, ingested, adi, stack, tmp_path, capsys):
    """`sesa index create` then `sesa ingest` on a name outside `sesa-*`: the same mapping, vectors and nDCG@10 as the
    template path, and `sesa index list` shows it with its models."""
    import uuid

    from integration import cli as sesa_cli

    name = f"adi-any-name-{uuid.uuid4().hex[:6]}"
    common = ["--cluster", stack.url]
    try:
        assert sesa_cli.main(["index", "create", name, "--server", stack.server_address, *common]) == 0
        assert sesa_cli.main(["ingest", str(adi.path), "--index", name, "--no-progress", *common]) == 0
        assert_every_document_has_the_sesa_fields(os_client, name, adi.document_count)
        ndcg = {}
        for index in (INDEX, name):
            out = tmp_path / index
            assert sesa_cli.main(["eval", str(adi.path), "--index", index, "--modes", "bm25,hybrid", "--out", str(out),
                                  "--server", stack.server_address, "--no-progress", *common]) == 0
            report = json.loads((out / "report.json").read_text())
            ndcg[index] = {m: report["modes"][m]["metrics"]["ndcg@10"] for m in ("bm25", "hybrid")}
        assert ndcg[name] == pytest.approx(ndcg[INDEX], abs=0.002), ndcg
        capsys.readouterr()
        assert sesa_cli.main(["index", "list", *common]) == 0
        listed = capsys.readouterr().out
        assert f"{name} ({adi.document_count} docs)" in listed and "BROKEN" not in listed.split(name)[1].split("\n")[0]
    finally:
        if not os.environ.get("SESA_KEEP_STACK"):
            os_client.indices.delete(index=name, ignore_unavailable=True)
