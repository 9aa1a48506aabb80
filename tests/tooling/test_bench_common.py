"""The benchmark helpers compute what their reports claim."""

from __future__ import annotations

import math

import pytest

from integration.bench.common import latency_stats
from integration.bench.ingest import to_markdown


def test_latency_stats_are_percentiles_in_milliseconds():
    stats = latency_stats([0.001 * i for i in range(1, 101)])
    assert stats["n"] == 100
    assert stats["p50_ms"] == 50.5
    assert stats["p99_ms"] == 99.01
    assert math.isnan(latency_stats([])["p50_ms"])


def test_ingest_markdown_lists_every_batch_size_and_ratio():
    report = {
        "documents": 3, "dataset": "d", "server_encode_docs_per_s": 10.0,
        "runs": [{"batch_size": 1, "docs_per_s": 2.0, "failed": 0, "seconds": 1.5},
                 {"batch_size": 64, "docs_per_s": 9.0, "failed": 1, "seconds": 0.3}],
        "ratios": {"ingest_bs64_over_server": 0.9, "ingest_bs64_over_bs1": 4.5},
        "time_split_at_best_batch": {"opensearch_and_transport_share": 0.1},
    }
    md = to_markdown(report)
    assert "| 1 | 2.0 | 0 | 1.5 |" in md and "| 64 | 9.0 | 1 | 0.3 |" in md
    assert "ingest_bs64_over_bs1 | 4.5" in md


def test_search_benchmark_runs_every_configuration_on_its_own_queries(tmp_path, monkeypatch):
    import json

    from integration.bench import search as bench_search

    (tmp_path / "corpus.jsonl").write_text(json.dumps({"_id": "d1", "title": "t", "text": "x"}) + "\n")
    (tmp_path / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": str(i), "text": f"query {i}"}) + "\n" for i in range(20)))
    monkeypatch.setattr(bench_search, "_ensure_index", lambda *a: None)
    encoded = []
    seen = []

    class FakeClient:
        def search(self, index, body, params):
            seen.append((body["ext"]["sesa"]["mode"], body["ext"]["sesa"]["query_text"], body["ext"]["sesa"]["rerank"]))
            return {"hits": {"hits": []}, "ext": {"sesa": {"degraded": bool(body["ext"]["sesa"]["rerank"]),
                                                           "timing": {"encode_ms": 2.0, "total_ms": 5.0,
                                                                      "encode_server": {"compute_ms": 1.0}}}}}

    report = bench_search.run_search_benchmark(FakeClient(), "unused:1", str(tmp_path), queries=3,
                                               encoder=encoded.append, warmup=1)
    assert len(encoded) == 1 + 3
    assert list(report["configs"]) == ["bm25", "hybrid", "hybrid+rerank20", "hybrid+rerank50"]
    assert report["configs"]["hybrid+rerank50"]["degraded"] == 3
    assert report["configs"]["bm25"]["degraded"] == 0
    assert all(c["errors"] == 0 for c in report["configs"].values()), "the server's timing breakdown is no error"
    assert report["plugin_timing_p50_ms"]["hybrid"] == {"encode_ms": 2.0, "total_ms": 5.0}
    per_config = {}
    for mode, text, rerank in seen:
        per_config.setdefault((mode, json.dumps(rerank)), set()).add(text)
    slices = list(per_config.values())
    slices.append(set(encoded))
    assert all(a.isdisjoint(b) for i, a in enumerate(slices) for b in slices[i + 1:]), "no query shared"
    assert "hybrid_over_bm25_plus_encode" in report["ratios"]
    # the configurations run interleaved, query by query
    assert [m for m, _, _ in seen[4:8]] == ["bm25", "hybrid", "hybrid", "hybrid"]
    # two rounds need twice as many distinct queries; too few is a clear error, never a reused (cached) query
    seen.clear()
    report = bench_search.run_search_benchmark(FakeClient(), "unused:1", str(tmp_path), queries=2, rounds=2,
                                               encoder=encoded.append)
    assert len({text for _, text, _ in seen}) == len(seen) == bench_search.WARMUP * 4 + 16  # warm-ups: spare queries, titles, fillers
    seen.clear()
    report = bench_search.run_search_benchmark(FakeClient(), "unused:1", str(tmp_path), queries=3,
                                               encoder=encoded.append, warmup=1, rerank=False)
    assert list(report["configs"]) == ["bm25", "hybrid"] and {r for _, _, r in seen} == {False}
    assert "hybrid_over_bm25_plus_encode" in report["ratios"]
    with pytest.raises(ValueError, match="distinct"):
        bench_search.run_search_benchmark(FakeClient(), "unused:1", str(tmp_path), queries=3, rounds=2,
                                          encoder=encoded.append)


def test_chunked_ingest_benchmark_counts_windows_on_both_sides(monkeypatch):
    """With chunking the server side encodes with the option and the pipeline carries it; windows/s follow."""
    from integration.bench import ingest as bench_ingest

    class Doc:
        def __init__(self, i):
            self.id = str(i)

        def joined(self, sep):
            return f"text {self.id}"

        def source(self):
            return {"text": f"text {self.id}"}

    monkeypatch.setattr(bench_ingest, "_docs", lambda dataset, limit: [Doc(i) for i in range(4)])
    server_calls, pipelines = [], []
    monkeypatch.setattr(bench_ingest, "server_encode",
                        lambda address, texts, chunking=None: server_calls.append(chunking) or (8.0, 10))

    def fake_bulk(client, docs, bs, chunking=None):
        pipelines.append(chunking)
        return {"batch_size": bs, "docs": len(docs), "indexed": len(docs), "failed": 0, "seconds": 1.0,
                "docs_per_s": 4.0 if bs == 64 else 2.0}

    monkeypatch.setattr(bench_ingest, "bulk_throughput", fake_bulk)
    report = bench_ingest.run_ingest_benchmark(None, "unused:1", "d", chunking={"overlap_tokens": 32})
    assert server_calls == [{"overlap_tokens": 32}] and pipelines == [{"overlap_tokens": 32}] * 3
    assert report["server_encode_windows_per_s"] == 20.0  # 8 docs/s x 10 windows / 4 docs
    assert [r["windows_per_s"] for r in report["runs"]] == [5.0, 5.0, 10.0]
    assert report["ratios"]["ingest_bs64_over_server"] == 0.5
    md = to_markdown(report)
    assert "10 windows of 4 documents" in md and "| 64 | 4.0 | 10.0 | 0 | 1.0 |" in md


def test_bench_pipeline_encodes_exactly_what_the_server_side_does():
    from integration.bench.ingest import bench_pipeline

    off = bench_pipeline(1, None)["processors"][0]["sesa_encode"]
    assert off["batch_size"] == 1 and "chunking" not in off  # the shipped pipeline chunks; this one must not
    on = bench_pipeline(64, {"max_windows": 4})["processors"][0]["sesa_encode"]
    assert on["batch_size"] == 64 and on["chunking"] == {"max_windows": 4}
