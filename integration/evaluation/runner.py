"""Run every judged query of a split in one search mode against the cluster.

A mode that cannot run (no `sesa-search` pipeline, an index without the sesa fields, a query the cluster
rejects) is reported as unavailable with the reason; it never stops the other modes.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import schemas
from . import modes as modes_mod

RETRIES = 1
REQUEST_TIMEOUT_S = 120


@dataclass
class ModeRun:
    mode: str
    rankings: dict[str, list[str]] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)  # client-side, per query
    took_ms: list[float] = field(default_factory=list)  # server-side `took`
    seconds: float = 0.0
    unavailable: str | None = None
    notes: list[str] = field(default_factory=list)
    rerank_degraded: int = 0
    degraded_reasons: dict[str, int] = field(default_factory=dict)
    rerank_out_of_domain: int = 0  # queries the reranker left alone: outside its domain bank
    rerank_without_evidence: int = 0  # queries not reranked: the index has no evidence that rerank helps

    @property
    def ok(self) -> bool:
        return self.unavailable is None

    def latency_summary(self) -> dict[str, float]:
        if not self.latencies_ms:
            return {}
        values = sorted(self.latencies_ms)

        def pct(p: float) -> float:
            return round(values[min(len(values) - 1, round(p * (len(values) - 1)))], 2)

        return {
            "mean": round(sum(values) / len(values), 2),
            "p50": pct(0.50),
            "p95": pct(0.95),
            "max": round(values[-1], 2),
        }


def _error_text(exc: Exception) -> str:
    info = getattr(exc, "info", None)
    if isinstance(info, dict) and isinstance(info.get("error"), dict):
        err = info["error"]
        root = (err.get("root_cause") or [{}])[0]
        reason = root.get("reason") or err.get("reason") or str(err)
        kind = root.get("type") or err.get("type") or type(exc).__name__
        status = getattr(exc, "status_code", "")
        return f"HTTP {status} {kind}: {reason}"[:400]
    return f"{type(exc).__name__}: {exc}"[:400]


def search_pipeline_exists(client, name: str) -> tuple[bool, str]:
    """(exists, reason when not)."""
    try:
        client.transport.perform_request("GET", f"/_search/pipeline/{name}")
        return True, ""
    except Exception as exc:  # noqa: BLE001
        if getattr(exc, "status_code", None) == 404:
            return False, f"search pipeline {name!r} does not exist on the cluster"
        return False, f"search pipeline {name!r} could not be read: {_error_text(exc)}"


def unavailable_reason(client, index: str, mode: str, mapped: set[str],
                       pipeline_check: tuple[bool, str] | None = None) -> str | None:
    """Why a mode cannot run on this index and cluster, or None."""
    s = modes_mod.spec(mode)
    if not s.uses_pipeline:
        return None
    exists, reason = pipeline_check or search_pipeline_exists(client, modes_mod.search_pipeline_name())
    if not exists:
        return reason
    names = schemas.field_names()
    missing = [names[role] for role in s.needs_fields if names[role] not in mapped]
    if missing:
        return (f"index {index} has no {', '.join(missing)} field (ingest it through the sesa-ingest pipeline, "
                "e.g. into an index named sesa-*)")
    return None


def _rerank_degraded(response: Mapping[str, Any]) -> str | None:
    ext = response.get("ext") or {}
    sesa = ext.get("sesa") if isinstance(ext, dict) else None
    if not isinstance(sesa, dict):
        return None
    rerank = sesa.get("rerank")
    degraded = sesa.get("degraded")
    if isinstance(rerank, dict) and rerank.get("degraded"):
        return str(rerank.get("reason") or rerank.get("degraded"))
    if degraded:
        return str(sesa.get("degraded_reason") or sesa.get("reason") or degraded)
    return None


def _rerank_skipped(response: Mapping[str, Any]) -> str | None:
    sesa = (response.get("ext") or {}).get("sesa")
    rerank = sesa.get("rerank") if isinstance(sesa, dict) else None
    return rerank.get("skipped") if isinstance(rerank, dict) else None


def run_mode(client, index: str, mode: str, queries: Mapping[str, str], size: int = modes_mod.DEFAULT_SIZE,
             progress: bool = True, unavailable: str | None = None,
             request_timeout: float = REQUEST_TIMEOUT_S, fusion_weights: dict[str, float] | None = None) -> ModeRun:
    """Search every query; the first query that still fails after a retry makes the mode unavailable."""
    result = ModeRun(mode=mode)
    if unavailable:
        result.unavailable = unavailable
        return result
    from tqdm import tqdm

    started = time.monotonic()
    bar = tqdm(total=len(queries), unit="q", desc=f"eval {mode}", disable=not progress, file=sys.stderr,
               dynamic_ncols=True)
    try:
        for qid, text in queries.items():
            req = modes_mod.request(mode, text, size=size, fusion_weights=fusion_weights)
            response = None
            for attempt in range(RETRIES + 1):
                t0 = time.perf_counter()
                try:
                    response = client.search(index=index, body=req.body, params=dict(req.params),
                                             request_timeout=request_timeout)
                    break
                except Exception as exc:  # noqa: BLE001 - reported, never raised
                    error = _error_text(exc)
                    status = getattr(exc, "status_code", None)
                    if attempt == RETRIES or (isinstance(status, int) and 400 <= status < 500 and status != 429):
                        done = len(result.rankings)
                        result.unavailable = (f"query {qid} failed after {done} of {len(queries)} succeeded: "
                                              f"{error}")
                        return result
                    time.sleep(1.0)
            result.latencies_ms.append((time.perf_counter() - t0) * 1000.0)
            if isinstance(response.get("took"), (int, float)):
                result.took_ms.append(float(response["took"]))
            result.rankings[qid] = [hit["_id"] for hit in response["hits"]["hits"]]
            skipped = _rerank_skipped(response)
            result.rerank_out_of_domain += skipped == "out_of_domain"
            result.rerank_without_evidence += skipped in ("no_evidence", "evidence_against")
            reason = _rerank_degraded(response)
            if reason is not None:
                result.rerank_degraded += 1
                result.degraded_reasons[reason] = result.degraded_reasons.get(reason, 0) + 1
            bar.update(1)
    finally:
        bar.close()
        result.seconds = time.monotonic() - started
    if result.rerank_out_of_domain:
        result.notes.append(f"rerank skipped on {result.rerank_out_of_domain} of {len(queries)} queries: outside the "
                            "reranker's domain (fused order kept)")
    if result.rerank_without_evidence:
        result.notes.append(f"rerank skipped on {result.rerank_without_evidence} of {len(queries)} queries: no evidence "
                            "for this index that it helps (`sesa tune` records it; fused order kept)")
    if result.rerank_degraded:
        top = max(result.degraded_reasons.items(), key=lambda kv: kv[1])[0]
        result.notes.append(f"rerank degraded on {result.rerank_degraded} of {len(queries)} queries (e.g. {top})")
    return result
