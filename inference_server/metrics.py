"""Prometheus metrics and structured one-line logs.

Why a registry per server (not the global default): tests and benchmarks start several
servers in one process, and each needs its own counters. Logs are one line per event, JSON
when asked, and never carry texts or secrets (request sizes and codes only).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Metrics:
    """All server metrics; also the batcher's observer (on_batch / on_queue_depth)."""

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter("sesa_requests", "RPCs by method and final status code", ["method", "code"], registry=r)
        self.item_errors = Counter("sesa_item_errors", "Per-item errors inside successful calls", ["method", "code"],
                                   registry=r)
        self.latency = Histogram("sesa_request_seconds", "RPC latency", ["method"], buckets=_LATENCY_BUCKETS, registry=r)
        self.items = Counter("sesa_items", "Texts or passages received", ["method"], registry=r)
        self.batch_size = Histogram("sesa_batch_size", "Sequences per forward pass", ["model"], buckets=_BATCH_BUCKETS,
                                    registry=r)
        self.batch_seconds = Histogram("sesa_batch_seconds", "Forward pass time", ["model"], buckets=_LATENCY_BUCKETS,
                                       registry=r)
        self.tokens = Counter("sesa_tokens", "Real (unpadded) tokens through the model; rate() = tokens/s", ["model"],
                              registry=r)
        self.padded_tokens = Counter("sesa_padded_tokens", "Tokens including padding", ["model"], registry=r)
        self.queue_seconds = Histogram(
            "sesa_queue_seconds", "Time a call's sequences waited for the model, by scheduling class (interactive: "
            "query encodes and rerank; bulk: ingest)", ["model", "priority"], buckets=_LATENCY_BUCKETS, registry=r)
        self.queue_depth = Gauge("sesa_queue_depth", "Sequences waiting for the model, by scheduling class (each class "
                                 "is bounded by batching.max_queue_size)", ["model", "priority"], registry=r)
        self.truncated = Counter("sesa_truncated", "Texts cut to the model window", ["method"], registry=r)
        self.rerank_out_of_domain = Counter(
            "sesa_rerank_out_of_domain", "Rerank queries outside the reranker's domain bank, by what was done "
            "(skipped: no scores, as the caller asked; scored: scored anyway)", ["action"], registry=r)

    # BatchObserver
    def on_batch(self, model: str, size: int, tokens: int, padded_tokens: int, seconds: float) -> None:
        self.batch_size.labels(model).observe(size)
        self.batch_seconds.labels(model).observe(seconds)
        self.tokens.labels(model).inc(tokens)
        self.padded_tokens.labels(model).inc(padded_tokens)

    def on_queue_depth(self, model: str, priority: str, depth: int) -> None:
        self.queue_depth.labels(model, priority).set(depth)

    def on_request_done(self, model: str, priority: str, queue_seconds: float, compute_seconds: float) -> None:
        self.queue_seconds.labels(model, priority).observe(queue_seconds)


def start_metrics_http(metrics: Metrics, host: str, port: int) -> tuple[Any, int]:
    """Serve /metrics in a background thread; returns (server, bound port)."""
    from prometheus_client import start_http_server

    server, _thread = start_http_server(port, addr=host, registry=metrics.registry)
    return server, server.server_address[1]


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, plus any ``extra={"fields": {...}}``."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info).splitlines()[-1]
        return json.dumps(out, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        s = super().format(record)
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict) and fields:
            s += " " + " ".join(f"{k}={v}" for k, v in fields.items())
        return s.replace("\n", " | ")


def setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    h = logging.StreamHandler(sys.stderr)
    h.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root.addHandler(h)
    root.setLevel(level)
    for noisy in ("grpc", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
