"""The short form of `sesa bench load` on the real stack: 8 concurrent bulk clients and 16 hybrid searchers
against one node and one server whose queue is deliberately small (64 sequences), so the server answers
RESOURCE_EXHAUSTED and the plugin has to back off and retry.

Checked: every document sent is indexed with its vectors or reported failed with a reason; no request
hangs past its deadline; the server's queue never exceeds its bound; both processes stay up; memory is
reported (the long form, `sesa bench load --duration-load 120`, is where its flatness is judged).
"""

from __future__ import annotations

import os

import pytest

from integration.tests.index_checks import require_dataset

pytestmark = pytest.mark.e2e

QUEUE = 64
DURATION_S = float(os.environ.get("SESA_TEST_LOAD_SECONDS", "25"))


def test_load_short_form_accounts_for_every_document(os_client, stack, server_with_env):
    from integration.bench.load import run_load, to_markdown
    from integration.cluster import node, server_process
    from integration.cluster.paths import state_paths
    from integration.inference import InferenceClient

    scifact = require_dataset("scifact")
    server_with_env({"SESA_SERVER_BATCHING__MAX_QUEUE_SIZE": str(QUEUE),
                     "SESA_SERVER_LIMITS__MAX_TEXTS_PER_CALL": str(QUEUE)})
    paths = state_paths()
    node_state, server_state = node.running_node(paths), server_process.running_server(paths)
    metrics_port = os.environ.get("SESA_SERVER_METRICS__PORT", "9464")
    report = run_load(os_client, str(scifact.path), duration_s=DURATION_S, bulk_clients=8, searchers=16,
                      node_pid=node_state.pid if node_state else None,
                      server_pid=server_state.pid if server_state else None,
                      metrics_url=f"http://127.0.0.1:{metrics_port}/metrics", max_queue=QUEUE,
                      deadline_s=60, progress=False)
    print(to_markdown(report))
    try:
        docs = report["documents"]
        assert docs["sent"] > 0 and docs["indexed"] > 0
        assert docs["accounted"], docs
        assert docs["in_index"] == docs["in_index_with_vectors"] == docs["indexed"]
        assert all(reason.strip() for reason in docs["failure_reasons"]), docs["failure_reasons"]
        assert not report["hung_threads"], report["hung_threads"]
        assert report["slowest_request_s"] < report["deadline_s"] + 30
        assert report["search"]["requests"] > 0
        assert report["server_queue"]["max_depth"] <= QUEUE
        # the small queue did overflow, and the plugin retried: a call that finally failed made 1 + 3 attempts
        exhausted = report["server_queue"]["resource_exhausted"]
        assert exhausted > 0, "the load never filled the queue: nothing was tested"
        assert report["memory"]["node"]["peak_mb"] and report["memory"]["server"]["peak_mb"]
        # both processes are still up and answering
        assert os_client.cluster.health()["status"] in ("green", "yellow")
        with InferenceClient(stack.server_address) as client:
            assert client.encode(["still serving"]).embeddings[0].dense
    finally:
        os_client.indices.delete(index=report["index"], ignore_unavailable=True)


def test_mixed_short_form_searches_go_ahead_of_ingest(os_client, stack):
    """`sesa bench mixed` in short phases on the real stack: searches during a saturating ingest are neither
    degraded nor failed, every document is indexed, the node reports the server's timing of each query encode
    (interactive class), and on the server the searches' sequences queue far less than the ingest's (the ratios
    themselves are judged by the long form, whose figures the README's benchmark table holds)."""
    from integration.bench.mixed import run_mixed, to_markdown

    scifact = require_dataset("scifact")
    metrics_port = os.environ.get("SESA_SERVER_METRICS__PORT", "9464")
    report = run_mixed(os_client, str(scifact.path), phase_s=float(os.environ.get("SESA_TEST_MIXED_SECONDS", "8")),
                       bulk_clients=4, search_docs=100, metrics_url=f"http://127.0.0.1:{metrics_port}/metrics",
                       progress=False)
    print(to_markdown(report))
    idle, during = report["search"]["idle"], report["search"]["during_ingest"]
    alone, mixed = report["ingest"]["alone"], report["ingest"]["during_searches"]
    assert idle["searches"] > 0 and during["searches"] > 0
    assert idle["degraded"] == idle["errors"] == during["degraded"] == during["errors"] == 0, (idle, during)
    assert alone["indexed"] > 0 and mixed["indexed"] > 0 and alone["failed"] == mixed["failed"] == 0
    assert during["server_encode"]["reported"] == during["searches"], "every query encode reports its timing"
    queue = report["server_queue_ms_mean_during_mixed"]
    interactive = queue['{model="encoder",priority="interactive"}']
    bulk = queue['{model="encoder",priority="bulk"}']
    assert interactive is not None and bulk is not None and interactive < bulk, queue
