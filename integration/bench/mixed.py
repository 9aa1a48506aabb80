"""`sesa bench mixed`: do searches stay fast while bulk ingest saturates the inference server?

Production clusters index and search at the same time. One run, three measured phases on one node and one
server, so every figure is a ratio of the same run:

1. **idle**: hybrid searches at a fixed rate (one every ``search_interval_s``, fresh query texts, open loop:
   a slow search does not delay the next one) against an index filled beforehand, nothing else running;
2. **ingest alone**: ``bulk_clients`` concurrent `_bulk` clients feed the default ingest pipeline;
3. **mixed**: the same ingest and the same search rate at once.

Reported: search p50/p99 idle vs during ingest (and their ratios), the degraded share with the default
deadlines, ingest docs/s alone vs during the searches, the server's own queue and compute time of the
searches' query encodes (``ext.sesa.timing.encode_server``), and the Prometheus queue time by priority class.
Targets (issue 22, 2-core CPU): p50 ratio <= 5, p99 ratio <= 10, no degraded search, ingest ratio >= 0.85.
"""

from __future__ import annotations

import itertools
import statistics
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ir.beir import Dataset

from .. import schemas
from .common import latency_stats, provenance
from .load import REQUEST_TIMEOUT_S, Tally, read_metrics, search_outcome, send_bulk

TARGETS = {"p50_ratio_max": 5.0, "p99_ratio_max": 10.0, "degraded_max": 0, "ingest_ratio_min": 0.85}


class _Searcher:
    """Hybrid searches at a fixed rate (open loop) with fresh texts, recording latency and outcome."""

    def __init__(self, client, index: str, queries: list[str], interval_s: float, workers: int = 16):
        self.client, self.index, self.queries, self.interval_s = client, index, queries, interval_s
        self.pipeline = schemas.conventions()["default_search_pipeline"]
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="mixed-search")
        self.tag = uuid.uuid4().hex[:6]
        self.counter = itertools.count()

    def _one(self, phase: dict[str, Any]) -> None:
        i = next(self.counter)
        text = f"{self.queries[(i * 7919) % len(self.queries)]} {self.tag}-{i}"  # fresh: never cached
        started = time.monotonic()
        server = None
        try:
            res = self.client.search(index=self.index, body={"size": 10, "ext": {"sesa": {"query_text": text}}},
                                     params={"search_pipeline": self.pipeline, "request_timeout": REQUEST_TIMEOUT_S})
            outcome = search_outcome(res)
            server = res.get("ext", {}).get("sesa", {}).get("timing", {}).get("encode_server")
        except Exception as exc:  # noqa: BLE001 - counted
            outcome = f"error {getattr(exc, 'status_code', type(exc).__name__)}"
        with phase["lock"]:
            phase["seconds"].append(time.monotonic() - started)
            phase["outcomes"][outcome] = phase["outcomes"].get(outcome, 0) + 1
            if isinstance(server, dict):
                phase["server"].append(server)

    def run(self, duration_s: float) -> dict[str, Any]:
        phase: dict[str, Any] = {"lock": threading.Lock(), "seconds": [], "outcomes": {}, "server": []}
        start = time.monotonic()
        futures = []
        for k in itertools.count():
            due = start + k * self.interval_s
            if due - start >= duration_s:
                break
            time.sleep(max(0.0, due - time.monotonic()))
            futures.append(self.pool.submit(self._one, phase))
        for f in futures:
            f.result()
        return _search_summary(phase)

    def close(self) -> None:
        self.pool.shutdown(wait=True)


def _search_summary(phase: dict[str, Any]) -> dict[str, Any]:
    n = len(phase["seconds"])
    degraded = phase["outcomes"].get("degraded", 0)
    errors = sum(v for k, v in phase["outcomes"].items() if k.startswith("error"))

    def median(key: str) -> float | None:
        values = [float(s[key]) for s in phase["server"] if isinstance(s.get(key), (int, float))]
        return round(statistics.median(values), 2) if values else None

    return {"searches": n, "latency": latency_stats(phase["seconds"]), "outcomes": phase["outcomes"],
            "degraded": degraded, "errors": errors,
            "server_encode": {"reported": len(phase["server"]), "queue_ms_p50": median("queue_ms"),
                              "compute_ms_p50": median("compute_ms")}}


class _Ingest:
    """``clients`` threads sending `_bulk` requests of ``bulk_size`` documents until stopped or out of docs."""

    def __init__(self, client, index: str, docs, clients: int, bulk_size: int):
        self.client, self.index, self.clients, self.bulk_size = client, index, clients, bulk_size
        self.docs, self.lock = docs, threading.Lock()
        self.tally = Tally()

    def _batch(self) -> list:
        with self.lock:
            return list(itertools.islice(self.docs, self.bulk_size))

    def start(self, stop: threading.Event) -> list[threading.Thread]:
        def worker() -> None:
            while not stop.is_set():
                batch = self._batch()
                if not batch:
                    return
                send_bulk(self.client, self.index, batch, self.tally)

        threads = [threading.Thread(target=worker, name=f"mixed-bulk-{i}") for i in range(self.clients)]
        for t in threads:
            t.start()
        return threads


def _ingest_phase(ingest: _Ingest, duration_s: float, searcher: _Searcher | None) -> dict[str, Any]:
    """Ingest for ``duration_s`` (with searches when ``searcher`` is given); docs/s counts bulks that ended
    inside the window."""
    before = len(ingest.tally.indexed)
    failed_before = len(ingest.tally.failed)
    stop = threading.Event()
    threads = ingest.start(stop)
    time.sleep(min(2.0, duration_s / 10))  # let the bulk clients fill the server's queue first
    started = time.monotonic()
    start_count = len(ingest.tally.indexed)
    search = searcher.run(duration_s) if searcher is not None else None
    if searcher is None:
        time.sleep(duration_s)
    elapsed = time.monotonic() - started
    indexed_in_window = len(ingest.tally.indexed) - start_count
    stop.set()
    for t in threads:
        t.join(REQUEST_TIMEOUT_S + 30)
    out = {"docs_per_s": round(indexed_in_window / elapsed, 2), "window_s": round(elapsed, 1),
           "indexed": len(ingest.tally.indexed) - before, "failed": len(ingest.tally.failed) - failed_before}
    if search is not None:
        out["search"] = search
    return out


def _queue_seconds(metrics: dict[str, float]) -> dict[str, dict[str, float]]:
    """Prometheus sesa_queue_seconds sum and count per (model, priority)."""
    out: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        if key.startswith("sesa_queue_seconds_sum") or key.startswith("sesa_queue_seconds_count"):
            labels = key[key.index("{"):] if "{" in key else ""
            out.setdefault(labels, {})["sum" if "_sum" in key else "count"] = value
    return out


def _mean_queue_ms(before: dict, after: dict) -> dict[str, float | None]:
    out = {}
    for labels, a in after.items():
        b = before.get(labels, {})
        n = a.get("count", 0) - b.get("count", 0)
        out[labels] = round(1000 * (a.get("sum", 0) - b.get("sum", 0)) / n, 2) if n > 0 else None
    return out


def run_mixed(client, dataset_dir: str, *, phase_s: float = 30.0, search_interval_s: float = 0.2,
              bulk_clients: int = 4, bulk_size: int = 32, search_docs: int = 500, metrics_url: str | None = None,
              keep_indices: bool = False, progress: bool = True) -> dict[str, Any]:
    """The three phases of the module docstring; returns the report (see ``to_markdown``)."""
    started_at = time.time()
    dataset = Dataset(dataset_dir)
    tag = uuid.uuid4().hex[:8]
    search_index, ingest_index = f"sesa-mixed-{tag}-search", f"sesa-mixed-{tag}-ingest"
    docs = iter(dataset.iter_corpus())
    queries = list(dataset.queries.values())

    def say(msg: str) -> None:
        if progress:
            print(msg, flush=True)

    for name in (search_index, ingest_index):
        client.indices.create(index=name)
    try:
        say(f"filling {search_index} with {search_docs} documents (not measured)")
        fill = _Ingest(client, search_index, itertools.islice(docs, search_docs), bulk_clients, bulk_size)
        stop = threading.Event()
        for t in fill.start(stop):
            t.join()
        client.indices.refresh(index=search_index)
        searcher = _Searcher(client, search_index, queries, search_interval_s)
        searcher.run(min(5.0, phase_s / 4))  # warm-up: JIT, caches, connections (not measured)

        say(f"phase 1/3: searches every {search_interval_s * 1000:.0f} ms, nothing else ({phase_s:.0f} s)")
        idle = searcher.run(phase_s)
        ingest = _Ingest(client, ingest_index, docs, bulk_clients, bulk_size)
        say(f"phase 2/3: ingest alone, {bulk_clients} bulk clients x {bulk_size} docs ({phase_s:.0f} s)")
        alone = _ingest_phase(ingest, phase_s, None)
        say("phase 3/3: the same ingest and the same searches at once")
        m0 = _queue_seconds(read_metrics(metrics_url))
        mixed = _ingest_phase(ingest, phase_s, searcher)
        m1 = _queue_seconds(read_metrics(metrics_url))
        searcher.close()
    finally:
        if not keep_indices:
            client.indices.delete(index=f"{search_index},{ingest_index}", ignore_unavailable=True)

    during = mixed.pop("search")
    ratio = _ratios(idle, during, alone, mixed)
    report = {
        "benchmark": "mixed", "dataset": str(dataset.path), "phase_s": phase_s,
        "search_interval_ms": round(search_interval_s * 1000), "bulk_clients": bulk_clients,
        "bulk_size": bulk_size, "search_docs": search_docs,
        "search": {"idle": idle, "during_ingest": during},
        "ingest": {"alone": alone, "during_searches": mixed},
        "ratios": ratio, "targets": TARGETS, "met": _met(ratio, during),
        "server_queue_ms_mean_during_mixed": _mean_queue_ms(m0, m1),
        **provenance(started_at),
    }
    return report


def _ratios(idle: dict, during: dict, alone: dict, mixed: dict) -> dict[str, float | None]:
    def div(a: float, b: float) -> float | None:
        return round(a / b, 2) if b and a == a and b == b else None  # NaN-safe

    return {"search_p50": div(during["latency"]["p50_ms"], idle["latency"]["p50_ms"]),
            "search_p99": div(during["latency"]["p99_ms"], idle["latency"]["p99_ms"]),
            "ingest": div(mixed["docs_per_s"], alone["docs_per_s"])}


def _met(ratio: dict, during: dict) -> dict[str, bool]:
    def le(value: float | None, bound: float) -> bool:
        return value is not None and value <= bound

    return {"search_p50": le(ratio["search_p50"], TARGETS["p50_ratio_max"]),
            "search_p99": le(ratio["search_p99"], TARGETS["p99_ratio_max"]),
            "no_degraded": during["degraded"] == 0 and during["errors"] == 0,
            "ingest": ratio["ingest"] is not None and ratio["ingest"] >= TARGETS["ingest_ratio_min"]}


def to_markdown(r: dict[str, Any]) -> str:
    idle, during = r["search"]["idle"], r["search"]["during_ingest"]
    alone, mixed = r["ingest"]["alone"], r["ingest"]["during_searches"]
    ratio, met = r["ratios"], r["met"]
    cpu = r.get("hardware", {}).get("cpu", "?")

    def ok(flag: bool) -> str:
        return "met" if flag else "NOT met"

    def enc(s: dict) -> str:
        e = s["server_encode"]
        return f"{e['queue_ms_p50']} / {e['compute_ms_p50']}" if e["reported"] else "not reported"

    return "\n".join([
        f"## Mixed load ({r['bulk_clients']} bulk clients x {r['bulk_size']} docs; a hybrid search every "
        f"{r['search_interval_ms']} ms; {r['phase_s']:.0f} s per phase; CPU: {cpu})",
        "",
        "| measure | idle / alone | during the other | ratio | target |",
        "|---|---|---|---|---|",
        f"| search p50 (ms) | {idle['latency']['p50_ms']} | {during['latency']['p50_ms']} | {ratio['search_p50']} | "
        f"<= {TARGETS['p50_ratio_max']:g} ({ok(met['search_p50'])}) |",
        f"| search p99 (ms) | {idle['latency']['p99_ms']} | {during['latency']['p99_ms']} | {ratio['search_p99']} | "
        f"<= {TARGETS['p99_ratio_max']:g} ({ok(met['search_p99'])}) |",
        f"| searches degraded / errors | {idle['degraded']} / {idle['errors']} of {idle['searches']} | "
        f"{during['degraded']} / {during['errors']} of {during['searches']} | | 0 ({ok(met['no_degraded'])}) |",
        f"| query encode on the server, queue / compute p50 (ms) | {enc(idle)} | {enc(during)} | | |",
        f"| ingest docs/s | {alone['docs_per_s']} | {mixed['docs_per_s']} | {ratio['ingest']} | "
        f">= {TARGETS['ingest_ratio_min']:g} ({ok(met['ingest'])}) |",
        f"| documents failed | {alone['failed']} | {mixed['failed']} | | 0 |",
    ]) + "\n"
