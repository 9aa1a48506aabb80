"""`sesa bench search`: latency (p50/p99) and queries/s of BM25 only, hybrid, and hybrid + rerank with
N = 20 and 50, in one run, with the share of time spent in inference.

The judged ratio: hybrid p50 / (BM25 p50 + one Encode p50) should stay <= 1.3 — hybrid search adds one
Encode call and little else. Every configuration gets its own slice of the queries, so the query-encoding
cache never answers for a query another configuration already sent.
"""

from __future__ import annotations

import time
from typing import Any

from ..datasets import Dataset
from ..search import run_search
from .common import Stopwatch, hardware, latency_stats

CONFIGS = (
    ("bm25", {"mode": "bm25"}),
    ("hybrid", {"mode": "hybrid"}),
    ("hybrid+rerank20", {"mode": "hybrid", "rerank": {"top_n": 20}}),
    ("hybrid+rerank50", {"mode": "hybrid", "rerank": {"top_n": 50}}),
)


def _ensure_index(client, dataset: Dataset, index: str) -> None:
    from ..ingest import index_is_complete, ingest

    complete, _ = index_is_complete(client, dataset, index) if client.indices.exists(index=index) else (False, "")
    if not complete:
        result = ingest(client, dataset, index)
        if not result.ok:
            raise RuntimeError(f"could not ingest {dataset.path} into {index}: {result.summary()}")


def _encode_latencies(address: str, texts: list[str]) -> list[float]:
    from inference_server.contract import inference_pb2 as pb

    from ..inference import InferenceClient

    out = []
    with InferenceClient(address) as client:
        client.encode(["warm up"], kind=pb.TEXT_KIND_QUERY)
        for text in texts:
            with Stopwatch() as sw:
                client.encode([text], kind=pb.TEXT_KIND_QUERY)
            out.append(sw.seconds)
    return out


def run_search_benchmark(client, server_address: str, dataset_dir: str, queries: int = 50,
                         rounds: int = 1, index: str | None = None) -> dict[str, Any]:
    dataset = Dataset(dataset_dir)
    index = index or f"sesa-{dataset.name}"
    _ensure_index(client, dataset, index)
    texts = list(dataset.queries.values())
    needed = queries * (len(CONFIGS) + 1)
    if len(texts) < needed:
        texts = (texts * (needed // max(1, len(texts)) + 1))[:needed]
    started = time.time()
    encode = latency_stats(_encode_latencies(server_address, texts[:queries]))
    results: dict[str, Any] = {}
    for slot, (name, params) in enumerate(CONFIGS, start=1):
        batch = texts[slot * queries:(slot + 1) * queries]
        run_search(client, index, batch[0], size=10, explain=True, **params)  # warm-up
        samples, errors, degraded = [], 0, 0
        with Stopwatch() as total:
            for _ in range(rounds):
                for text in batch:
                    with Stopwatch() as sw:
                        try:
                            response = run_search(client, index, text, size=10, explain=True, **params)
                            degraded += bool(response.get("ext", {}).get("sesa", {}).get("degraded"))
                        except Exception:  # noqa: BLE001 - counted, reported
                            errors += 1
                    samples.append(sw.seconds)
        results[name] = {**latency_stats(samples), "qps": round(len(samples) / total.seconds, 2),
                         "errors": errors, "degraded": degraded}
    bm25, hybrid = results["bm25"]["p50_ms"], results["hybrid"]["p50_ms"]
    ratios = {"hybrid_over_bm25_plus_encode": round(hybrid / (bm25 + encode["p50_ms"]), 3)}
    inference_share = {name: round(min(1.0, encode["p50_ms"] / r["p50_ms"]), 3)
                       for name, r in results.items() if name != "bm25" and r["p50_ms"] > 0}
    return {
        "benchmark": "search", "dataset": str(dataset.path), "index": index, "queries_per_config": queries,
        "rounds": rounds, "encode_query": encode, "configs": results, "ratios": ratios,
        "encode_share_of_p50": inference_share, "hardware": hardware(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
    }


def to_markdown(report: dict[str, Any]) -> str:
    lines = [
        f"## Search benchmark ({report['index']}, {report['queries_per_config']} queries per configuration)",
        "",
        f"One query Encode alone: p50 {report['encode_query']['p50_ms']} ms",
        "",
        "| configuration | p50 ms | p99 ms | queries/s | errors | degraded |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in report["configs"].items():
        lines.append(f"| {name} | {r['p50_ms']} | {r['p99_ms']} | {r['qps']} | {r['errors']} | {r['degraded']} |")
    lines += ["", "| ratio | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in report["ratios"].items()]
    return "\n".join(lines) + "\n"
