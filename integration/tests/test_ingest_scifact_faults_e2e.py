"""Nothing is lost when the inference server dies during an ingest: the real server process is stopped
while `sesa ingest` streams SciFact (5,183 abstracts) through the real `sesa-ingest` pipeline (which chunks: every
window of a text of several windows stored as `sesa_chunks`), and into an index mapped with one `sesa_text` field
(encoded by the plugin's system processor, no pipeline, no chunking).

Every document is either indexed WITH its vectors (with chunking: with every window of its text, never some of
them) or counted failed with a reason; the failed count equals the documents missing from the index; after a
restart a re-run indexes exactly the missing ones, and then every document carries its four SESA fields, with
vectors equal to what Encode returns for the same text (a fixed-seed sample of 300; the ADI test compares every
document; through the pipeline, the windows of a sample of 100 equal the server's chunked Encode, spans included).
"""

from __future__ import annotations

import threading
import time

import pytest

from integration import schemas
from integration.tests.index_checks import (
    assert_every_document_has_all_its_windows,
    assert_every_document_has_the_sesa_fields,
    assert_no_document_without_vectors,
    assert_vectors_equal_encode,
    count,
    require_dataset,
)

pytestmark = pytest.mark.e2e

INDEX = "sesa-scifact-faults-e2e"
TEXT_INDEX = "scifact-text-faults-e2e"  # any name: `sesa index create --field text`
# the shipped pipeline's chunking option (README: windows of the server's passage length, 32 tokens overlap)
CHUNKING = schemas.encode_processor()["chunking"]
KILL_AFTER = 1000  # documents indexed before the server is stopped


@pytest.fixture
def scifact():
    return require_dataset("scifact")


@pytest.mark.parametrize("layout", ["pipeline", "sesa_text"])
def test_killing_the_server_mid_scifact_ingest_loses_nothing_and_a_rerun_completes(os_client, scifact, stack,
                                                                                  managed_server, layout):
    from integration.cluster import server_process
    from integration.cluster.indices import create_index
    from integration.ingest import ingest

    paths, state, args = managed_server
    index = {"pipeline": INDEX, "sesa_text": TEXT_INDEX}[layout]
    if os_client.indices.exists(index=index):
        os_client.indices.delete(index=index)
    checks = {}
    pipeline = None  # the index's default pipeline (sesa-* indices: sesa-ingest)
    if layout == "sesa_text":
        create_index(os_client, index, None, fields=["text"])
        checks = {"prefix": schemas.text_field_prefix("text")}
    results = {}

    def run_first_pass():
        results["first"] = ingest(os_client, scifact, index, pipeline=pipeline, batch_size=64, progress=False)

    worker = threading.Thread(target=run_first_pass)
    worker.start()
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:  # stop the server once part of the corpus is in
        if os_client.indices.exists(index=index) and count(os_client, index) >= KILL_AFTER:
            break
        time.sleep(1)
    host, port = state.address.rsplit(":", 1)
    server_process.stop(paths)
    try:
        worker.join(timeout=900)
        assert not worker.is_alive(), "the ingest did not finish after the server died"
        first = results["first"]
        total = scifact.document_count
        indexed = count(os_client, index)
        assert first.failed > 0, "the server was stopped too late to test anything"
        assert first.indexed == indexed >= KILL_AFTER
        assert first.failed == total - indexed, "every document missing from the index is counted failed"
        assert first.failures and all(reason.strip() for reason in first.failures), "failures carry reasons"
        assert_no_document_without_vectors(os_client, index, **checks)
        if layout == "pipeline":  # every document that made it in has all its windows (read back: no Encode now)
            assert assert_every_document_has_all_its_windows(os_client, index, scifact, stack.server_address,
                                                             CHUNKING, sample=0) == indexed
    finally:
        server_process.start(paths, host, int(port), None, extra_args=args)
    second = ingest(os_client, scifact, index, pipeline=pipeline, batch_size=64, progress=False)
    assert second.ok and second.failed == 0, second.summary()
    assert second.indexed == first.failed, "the re-run indexes exactly what was missing"
    assert_every_document_has_the_sesa_fields(os_client, index, scifact.document_count, **checks)
    if layout == "pipeline":
        # the single vector is the first window's, which ends at a sentence boundary: compared with the chunked
        # Encode, window by window, not with Encode of the whole (truncated) text
        assert assert_every_document_has_all_its_windows(os_client, index, scifact, stack.server_address, CHUNKING,
                                                         sample=100) == scifact.document_count
    else:  # a new sesa_text field chunks as the shipped pipeline does (the plugin writes that option into it)
        mapped = os_client.indices.get_mapping(index=index)[index]["mappings"]["properties"]["text"]
        assert mapped["chunking"] == {"window_tokens": 0, "overlap_tokens": 32, "max_windows": 64} == CHUNKING
        assert assert_vectors_equal_encode(os_client, index, scifact, stack.server_address, sample=300,
                                           text_of=lambda d: d.text, chunking=CHUNKING, **checks) == 300
    os_client.indices.delete(index=index)
