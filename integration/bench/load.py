"""`sesa bench load`: concurrent bulk ingest and hybrid search against one node and one server for a bounded
time, with the accounting an operator needs to trust the system under load.

* ``bulk_clients`` threads send `_bulk` requests of ``bulk_size`` documents through the default ingest
  pipeline (each document id is sent once); ``searchers`` threads send hybrid searches with fresh query texts.
* A sampler reads, once a second, the resident memory of the node and the server (``/proc/<pid>/status``)
  and the server's Prometheus metrics (encoder queue depth, RESOURCE_EXHAUSTED answers).
* At the end every document sent is either in the index (with its vectors) or reported failed with a reason,
  no request took longer than its deadline plus a grace, the queue never exceeded its bound, and memory is
  reported as peak and as the growth between the first and the last quarter of the run.

The long form is this command (e.g. ``--duration 120``); the end-to-end suite runs a short form.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ir.beir import Dataset

from .. import schemas
from ..ingest import failure_reason
from .common import hardware, latency_stats

REQUEST_TIMEOUT_S = 120  # client-side ceiling: a request this slow counts as hung


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    sent: set[str] = field(default_factory=set)
    indexed: set[str] = field(default_factory=set)
    failed: dict[str, str] = field(default_factory=dict)
    bulk_seconds: list[float] = field(default_factory=list)
    search_seconds: list[float] = field(default_factory=list)
    search_outcomes: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)


def rss_bytes(pid: int | None) -> int | None:
    """Resident set size of a process (Linux), or None when it cannot be read."""
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


_METRIC = re.compile(r'^(sesa_[a-z_]+)(\{[^}]*\})?\s+([0-9.eE+-]+)$')


def read_metrics(url: str | None) -> dict[str, float]:
    """``name{labels}`` -> value from a Prometheus text endpoint ({} when unreachable)."""
    if not url:
        return {}
    try:
        with urllib.request.urlopen(url, timeout=2) as r:  # an operator-given local URL
            text = r.read().decode("utf-8", "replace")
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        m = _METRIC.match(line.strip())
        if m:
            out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def send_bulk(client, index: str, batch: list, tally: Tally) -> None:
    """One `_bulk` of ``batch`` through the index's default pipeline; every document lands in ``tally`` as
    indexed or failed with a reason, and the request's time in ``tally.bulk_seconds``."""
    body: list[dict[str, Any]] = []
    for d in batch:
        body += [{"index": {"_index": index, "_id": d.id}}, d.source()]
    with tally.lock:
        tally.sent.update(d.id for d in batch)
    started = time.monotonic()
    try:
        res = client.bulk(body=body, params={"request_timeout": REQUEST_TIMEOUT_S})
    except Exception as exc:  # noqa: BLE001 - the whole request failed: every document in it did
        with tally.lock:
            tally.errors[f"bulk: {type(exc).__name__}"] += 1
            for d in batch:
                tally.failed[d.id] = f"bulk request failed: {exc}"
        return
    finally:
        with tally.lock:
            tally.bulk_seconds.append(time.monotonic() - started)
    with tally.lock:
        for item in res["items"]:
            op = item.get("index", {})
            if op.get("error"):
                tally.failed[op["_id"]] = failure_reason(item)[0]
            else:
                tally.indexed.add(op["_id"])


def search_outcome(response: dict[str, Any]) -> str:
    """"degraded" when the plugin fell back (a branch or model call missing), else "ok"."""
    return "degraded" if response.get("ext", {}).get("sesa", {}).get("degraded") else "ok"


def _exhausted(metrics: dict[str, float]) -> float:
    return sum(v for k, v in metrics.items() if k.startswith("sesa_requests_total") and "RESOURCE_EXHAUSTED" in k)


def _queue_depth(metrics: dict[str, float]) -> float:
    return max((v for k, v in metrics.items() if k.startswith("sesa_queue_depth")), default=0.0)


def run_load(client, dataset_dir: str, *, duration_s: float = 120.0, bulk_clients: int = 8, searchers: int = 16,
             bulk_size: int = 16, index: str | None = None, node_pid: int | None = None,
             server_pid: int | None = None, metrics_url: str | None = None, max_queue: int | None = None,
             deadline_s: float = 60.0, progress: bool = True) -> dict[str, Any]:
    dataset = Dataset(dataset_dir)
    index = index or f"sesa-load-{uuid.uuid4().hex[:8]}"
    docs = iter(dataset.iter_corpus())
    docs_lock = threading.Lock()
    queries = list(dataset.queries.values())
    tally = Tally()
    stop = threading.Event()
    samples: list[dict[str, Any]] = []
    search_pipeline = schemas.conventions()["default_search_pipeline"]
    run_tag = uuid.uuid4().hex[:6]
    if not client.indices.exists(index=index):
        client.indices.create(index=index)
    baseline = read_metrics(metrics_url)

    def next_docs() -> list:
        with docs_lock:
            return list(itertools.islice(docs, bulk_size))

    def bulk_worker() -> None:
        while not stop.is_set():
            batch = next_docs()
            if not batch:
                return
            send_bulk(client, index, batch, tally)

    def search_worker(n: int) -> None:
        for i in itertools.count():
            if stop.is_set():
                return
            text = f"{queries[(n * 7919 + i) % len(queries)]} {run_tag}-{n}-{i}"  # fresh: never cached
            started = time.monotonic()
            try:
                res = client.search(index=index, body={"size": 10, "ext": {"sesa": {"query_text": text}}},
                                    params={"search_pipeline": search_pipeline, "request_timeout": REQUEST_TIMEOUT_S})
                outcome = search_outcome(res)
            except Exception as exc:  # noqa: BLE001 - counted
                outcome = f"error {getattr(exc, 'status_code', type(exc).__name__)}"
            with tally.lock:
                tally.search_seconds.append(time.monotonic() - started)
                tally.search_outcomes[outcome] += 1

    def sampler() -> None:
        t0 = time.monotonic()
        while not stop.wait(1.0):
            m = read_metrics(metrics_url)
            samples.append({"t": round(time.monotonic() - t0, 1), "node_rss": rss_bytes(node_pid),
                            "server_rss": rss_bytes(server_pid), "queue_depth": _queue_depth(m),
                            "resource_exhausted": _exhausted(m) - _exhausted(baseline)})
            if progress:
                with tally.lock:
                    print(f"\r{samples[-1]['t']:6.1f}s  indexed {len(tally.indexed)}  failed {len(tally.failed)}  "
                          f"searches {sum(tally.search_outcomes.values())}  queue {samples[-1]['queue_depth']:.0f}",
                          end="", flush=True)

    threads = [threading.Thread(target=bulk_worker, name=f"bulk-{i}") for i in range(bulk_clients)]
    threads += [threading.Thread(target=search_worker, args=(i,), name=f"search-{i}") for i in range(searchers)]
    watcher = threading.Thread(target=sampler, name="sampler")
    started = time.monotonic()
    watcher.start()
    for t in threads:
        t.start()
    time.sleep(duration_s)
    stop.set()
    hung = []
    for t in threads:
        t.join(timeout=deadline_s + 30)
        if t.is_alive():
            hung.append(t.name)
    elapsed = time.monotonic() - started
    watcher.join(timeout=5)
    if progress:
        print()
    client.indices.refresh(index=index)
    in_index = client.count(index=index)["count"]
    dense = schemas.field_names()["dense"]
    with_vectors = client.count(index=index, body={"query": {"exists": {"field": dense}}})["count"]
    final = read_metrics(metrics_url)

    def memory(key: str) -> dict[str, Any]:
        values = [s[key] for s in samples if s[key]]
        if not values:
            return {"peak_mb": None}
        q = max(1, len(values) // 4)
        first, last = float(np.mean(values[:q])), float(np.mean(values[-q:]))
        return {"peak_mb": round(max(values) / 2**20, 1), "first_quarter_mb": round(first / 2**20, 1),
                "last_quarter_mb": round(last / 2**20, 1), "growth": round(last / first, 3)}

    searches = sum(tally.search_outcomes.values())
    slowest = max(tally.bulk_seconds + tally.search_seconds, default=0.0)
    reasons = Counter(tally.failed.values())
    report = {
        "benchmark": "load", "dataset": str(dataset.path), "index": index, "duration_s": round(elapsed, 1),
        "bulk_clients": bulk_clients, "searchers": searchers, "bulk_size": bulk_size,
        "documents": {"sent": len(tally.sent), "indexed": len(tally.indexed), "failed": len(tally.failed),
                      "in_index": in_index, "in_index_with_vectors": with_vectors,
                      "accounted": len(tally.indexed) + len(tally.failed) == len(tally.sent)
                      and in_index == len(tally.indexed) == with_vectors,
                      "failure_reasons": dict(reasons.most_common(5))},
        "ingest": {"docs_per_s": round(len(tally.indexed) / elapsed, 2), "bulk_latency": latency_stats(tally.bulk_seconds)},
        "search": {"requests": searches, "requests_per_s": round(searches / elapsed, 2),
                   "outcomes": dict(tally.search_outcomes), "latency": latency_stats(tally.search_seconds)},
        "slowest_request_s": round(slowest, 2), "deadline_s": deadline_s, "hung_threads": hung,
        "request_errors": dict(tally.errors),
        "server_queue": {"max_depth": max((s["queue_depth"] for s in samples), default=0.0), "bound": max_queue,
                         "resource_exhausted": _exhausted(final) - _exhausted(baseline)},
        "memory": {"node": memory("node_rss"), "server": memory("server_rss")},
        "samples": samples, "hardware": hardware(),
    }
    return report


def to_markdown(r: dict[str, Any]) -> str:
    d, s, q, m = r["documents"], r["search"], r["server_queue"], r["memory"]
    return "\n".join([
        (f"## Load ({r['bulk_clients']} bulk clients x {r['bulk_size']} docs, {r['searchers']} hybrid searchers, "
         f"{r['duration_s']} s)"),
        "",
        "| measure | value |",
        "|---|---|",
        f"| documents sent / indexed with vectors / failed with a reason | {d['sent']} / {d['in_index_with_vectors']} / {d['failed']} |",
        f"| every document accounted for | {d['accounted']} |",
        f"| ingest docs/s | {r['ingest']['docs_per_s']} (bulk p99 {r['ingest']['bulk_latency']['p99_ms']} ms) |",
        f"| searches/s | {s['requests_per_s']} (p50 {s['latency']['p50_ms']} ms, p99 {s['latency']['p99_ms']} ms) |",
        f"| search outcomes | {s['outcomes']} |",
        f"| slowest request | {r['slowest_request_s']} s (deadline {r['deadline_s']} s); hung: {len(r['hung_threads'])} |",
        f"| server queue max depth / bound | {q['max_depth']:.0f} / {q['bound']} |",
        f"| RESOURCE_EXHAUSTED answers (retried by the plugin) | {q['resource_exhausted']:.0f} |",
        f"| node RSS peak / growth (last vs first quarter) | {m['node'].get('peak_mb')} MB / {m['node'].get('growth')} |",
        f"| server RSS peak / growth | {m['server'].get('peak_mb')} MB / {m['server'].get('growth')} |",
    ]) + "\n"
