"""`sesa bench search`: latency (p50/p99) and queries/s of BM25 only, hybrid, and hybrid + rerank with
N = 20 and 50, in one run, with the share of time spent in inference.

The judged ratio: hybrid p50 / (BM25 p50 + one Encode p50) should stay <= 1.3 — hybrid search adds one
Encode call and little else. Every configuration and every round gets its own queries, so the plugin's
query-encoding cache never answers, and the configurations run interleaved, query by query.
"""

from __future__ import annotations

import time
import uuid
from contextlib import contextmanager
from typing import Any

import numpy as np

from ir.beir import Dataset

from .. import schemas
from ..search import run_search
from .common import Stopwatch, provenance, latency_stats

WARMUP = 150  # unmeasured queries per configuration before the measurement

CONFIGS = (
    ("bm25", {"mode": "bm25"}),
    ("hybrid", {"mode": "hybrid"}),
    # out_of_domain / without_evidence "rerank": the cross-encoder's cost is what is measured, whatever the query's
    # domain and whatever the index's evidence
    ("hybrid+rerank20", {"mode": "hybrid", "rerank": {"top_n": 20, "out_of_domain": "rerank", "without_evidence": "rerank"}}),
    ("hybrid+rerank50", {"mode": "hybrid", "rerank": {"top_n": 50, "out_of_domain": "rerank", "without_evidence": "rerank"}}),
)


def _ensure_index(client, dataset: Dataset, index: str) -> None:
    from ..ingest import index_is_complete, ingest

    complete, _ = index_is_complete(client, dataset, index) if client.indices.exists(index=index) else (False, "")
    if not complete:
        result = ingest(client, dataset, index)
        if not result.ok:
            raise RuntimeError(f"could not ingest {dataset.path} into {index}: {result.summary()}")


class _Encoder:
    """One query Encode straight to the server (the denominator's "one Encode call")."""

    def __init__(self, address: str):
        from inference_server.contract import inference_pb2 as pb

        from ..inference import InferenceClient

        self._kind = pb.TEXT_KIND_QUERY
        self._client = InferenceClient(address)
        self._client.encode(["warm up"], kind=self._kind)

    def __call__(self, text: str) -> None:
        self._client.encode([text], kind=self._kind)

    def close(self) -> None:
        self._client.close()


def _query_slots(texts: list[str], slots: int, queries: int, rounds: int) -> list[list[list[str]]]:
    """``[round][slot]`` -> its own query texts: no text is sent twice, so the plugin's query-encoding cache
    never answers (a cached encoding would make hybrid look cheaper than it is)."""
    needed = slots * queries * rounds
    if len(texts) < needed:
        raise ValueError(
            f"the dataset has {len(texts)} queries; {rounds} round(s) x {slots} slots x {queries} queries need "
            f"{needed} distinct ones: lower --queries or --rounds"
        )
    out, i = [], 0
    for _ in range(rounds):
        row = []
        for _ in range(slots):
            row.append(texts[i:i + queries])
            i += queries
        out.append(row)
    return out


def _warmup_texts(dataset: Dataset, spare_queries: list[str], n: int) -> list[str]:
    """``n`` texts no measured slot uses: the queries left over, then document titles (query-like, and not
    queries), then numbered fillers."""
    out = list(dict.fromkeys(spare_queries))[:n]
    used = set(out)
    if len(out) < n:
        for doc in dataset.iter_corpus():
            title = (doc.title or "").strip()
            if title and title not in used:
                out.append(title)
                used.add(title)
                if len(out) == n:
                    break
    out += [f"warm up query {i}" for i in range(n - len(out))]
    return out


@contextmanager
def _fresh_pipeline(client):
    """A copy of the cluster's SESA search pipeline under a new name: a new processor, so an empty
    query-encoding cache (queries sent earlier, by anyone, are not cached in it). Deleted afterwards."""
    name = schemas.conventions()["default_search_pipeline"]
    try:
        body = client.transport.perform_request("GET", f"/_search/pipeline/{name}")[name]
    except Exception:  # noqa: BLE001 - a fake client in unit tests, or no pipeline: use the default one
        yield name
        return
    copy = f"{name}-bench-{uuid.uuid4().hex[:8]}"
    client.transport.perform_request("PUT", f"/_search/pipeline/{copy}", body=body)
    try:
        yield copy
    finally:
        client.transport.perform_request("DELETE", f"/_search/pipeline/{copy}")


def run_search_benchmark(client, server_address: str, dataset_dir: str, queries: int = 50,
                         rounds: int = 1, index: str | None = None, encoder=None, warmup: int = WARMUP,
                         rerank: bool = True) -> dict[str, Any]:
    """Interleaved: for each query position every configuration (and the bare Encode) runs once in turn, so
    a slow phase of this shared machine hits all of them alike and the ratio stays meaningful. ``warmup``
    unmeasured queries per configuration come first: a freshly started node runs its search code interpreted
    for the first few hundred searches, and measuring that is measuring the JIT."""
    configs = CONFIGS if rerank else tuple(c for c in CONFIGS if "rerank" not in c[1])
    dataset = Dataset(dataset_dir)
    index = index or f"sesa-{dataset.name}"
    _ensure_index(client, dataset, index)
    texts = list(dict.fromkeys(dataset.queries.values()))
    slots = _query_slots(texts, len(configs) + 1, queries, rounds)
    warm = _warmup_texts(dataset, texts[(len(configs) + 1) * queries * rounds:], warmup * (len(configs) + 1))
    started = time.time()
    with _fresh_pipeline(client) as pipeline:
        return _measure(client, server_address, dataset, index, pipeline, configs, slots, queries, rounds, encoder,
                        started, warm)


def _measure(client, server_address, dataset, index, pipeline, configs, slots, queries, rounds, encoder, started, warm):
    encode = encoder or _Encoder(server_address)
    # warm-up on texts no measured slot uses, interleaved like the measurement
    for i in range(0, len(warm), len(configs) + 1):
        encode(warm[i])
        for slot, (_, params) in enumerate(configs, start=1):
            run_search(client, index, warm[i + slot], pipeline=pipeline, size=10, explain=True, **params)
    samples: dict[str, list[float]] = {name: [] for name, _ in configs}
    encode_samples: list[float] = []
    errors = {name: 0 for name, _ in configs}
    degraded = {name: 0 for name, _ in configs}
    cached = {name: 0 for name, _ in configs}
    timing: dict[str, dict[str, list[float]]] = {name: {} for name, _ in configs}
    try:
        for r in range(rounds):
            for i in range(queries):
                with Stopwatch() as sw:
                    encode(slots[r][0][i])
                encode_samples.append(sw.seconds)
                for slot, (name, params) in enumerate(configs, start=1):
                    with Stopwatch() as sw:
                        try:
                            response = run_search(client, index, slots[r][slot][i], pipeline=pipeline, size=10,
                                                  explain=True, **params)
                            info = response.get("ext", {}).get("sesa", {})
                            degraded[name] += bool(info.get("degraded"))
                            cached[name] += bool(info.get("query", {}).get("cached"))
                            for key, value in (info.get("timing") or {}).items():
                                if isinstance(value, (int, float)):  # encode_server is the server's own breakdown
                                    timing[name].setdefault(key, []).append(float(value))
                        except Exception:  # noqa: BLE001 - counted, reported
                            errors[name] += 1
                    samples[name].append(sw.seconds)
    finally:
        if encoder is None:
            encode.close()
    encode_stats = latency_stats(encode_samples)
    results = {name: {**latency_stats(samples[name]), "qps": round(len(samples[name]) / max(1e-9, sum(samples[name])), 2),
                      "errors": errors[name], "degraded": degraded[name], "cached_encodings": cached[name]}
               for name, _ in configs}
    bm25, hybrid = results["bm25"]["p50_ms"], results["hybrid"]["p50_ms"]
    ratios = {"hybrid_over_bm25_plus_encode": round(hybrid / max(1e-9, bm25 + encode_stats["p50_ms"]), 3)}
    inference_share = {name: round(min(1.0, encode_stats["p50_ms"] / r["p50_ms"]), 3)
                       for name, r in results.items() if name != "bm25" and r["p50_ms"] > 0}
    return {
        "benchmark": "search", "dataset": str(dataset.path), "index": index, "queries_per_config": queries,
        "rounds": rounds, "warmup_queries_per_config": len(warm) // (len(configs) + 1), "interleaved": True, "pipeline": pipeline, "encode_query": encode_stats, "configs": results, "ratios": ratios,
        "encode_share_of_p50": inference_share,
        # the plugin's own account (ext.sesa.timing): median ms of its Encode call and of the side branches
        "plugin_timing_p50_ms": {name: {k: round(float(np.median(v)), 2) for k, v in t.items()}
                                 for name, t in timing.items() if t},
        **provenance(started),
    }


def to_markdown(report: dict[str, Any]) -> str:
    lines = [
        f"## Search benchmark ({report['index']}, {report['queries_per_config']} queries per configuration)",
        "",
        (f"One query Encode alone: p50 {report['encode_query']['p50_ms']} ms; configurations interleaved, "
         "no query text sent twice, on a fresh copy of the search pipeline (empty query-encoding cache), after "
         f"{report.get('warmup_queries_per_config', 0)} unmeasured queries per configuration"),
        "",
        "| configuration | p50 ms | p99 ms | queries/s | errors | degraded | cached encodings |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in report["configs"].items():
        lines.append(f"| {name} | {r['p50_ms']} | {r['p99_ms']} | {r['qps']} | {r['errors']} | {r['degraded']} | {r.get('cached_encodings', 0)} |")
    if report.get("plugin_timing_p50_ms"):
        lines += ["", "Inside the node (`ext.sesa.timing`, p50 ms):", "",
                  "| configuration | Encode call | side branches | total |", "|---|---|---|---|"]
        for name, t in report["plugin_timing_p50_ms"].items():
            lines.append(f"| {name} | {t.get('encode_ms', '–')} | {t.get('side_branches_ms', '–')} | "
                         f"{t.get('total_ms', '–')} |")
    lines += ["", "| ratio | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in report["ratios"].items()]
    return "\n".join(lines) + "\n"
