"""`sesa search`: query text through the `sesa-search` pipeline and a readable ranking with explanations.

The request format (the `ext.sesa` search extension) is documented in schemas/README.md; the same
function builds the requests of `sesa eval` and the benchmarks, so every tool takes one code path.
"""

from __future__ import annotations

from typing import Any

from . import schemas

MODES = ("bm25", "dense", "concepts", "hybrid")


def search_body(query_text: str, *, mode: str = "hybrid", size: int = 10, rerank: bool | dict = False,
                fusion: dict | None = None, filter_query: dict | None = None, explain: bool = True,
                source_fields: list[str] | None = None, strict: bool | None = None) -> dict[str, Any]:
    """The `_search` body for one query through the sesa-search pipeline (``strict``: fail instead of
    degrading to BM25 when the query cannot be encoded; None: the pipeline's setting)."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}: choose one of {', '.join(MODES)}")
    ext: dict[str, Any] = {"query_text": query_text, "mode": mode, "rerank": rerank, "explain": explain}
    if fusion:
        ext["fusion"] = fusion
    if strict is not None:
        ext["strict"] = strict
    body: dict[str, Any] = {"size": size, "ext": {"sesa": ext}}
    if filter_query:
        body["query"] = filter_query
    if source_fields is not None:
        body["_source"] = source_fields
    return body


def run_search(client, index: str, query_text: str, pipeline: str | None = None,
               request_timeout: float | None = None, **kwargs) -> dict:
    """One query through the search pipeline (``kwargs``: :func:`search_body`'s)."""
    pipeline = pipeline or schemas.conventions()["default_search_pipeline"]
    extra = {"request_timeout": request_timeout} if request_timeout is not None else {}
    return client.search(index=index, body=search_body(query_text, **kwargs), params={"search_pipeline": pipeline},
                         **extra)


def cluster_has_reranker(client) -> bool:
    """Whether a serving inference endpoint of the plugin (GET /_plugins/sesa/info) has a reranker."""
    try:
        info = client.transport.perform_request("GET", "/_plugins/sesa/info")
    except Exception:  # noqa: BLE001 - no plugin, no answer: no reranker to count on
        return False
    return any(m.get("role") == "reranker"
               for e in info.get("endpoints", []) if e.get("health") == "SERVING"
               for m in (e.get("server") or {}).get("models", []))


def explanation(hit: dict) -> dict:
    """The `_sesa` explanation of a hit (empty dict when the pipeline added none)."""
    value = hit.get("fields", {}).get("_sesa")
    if isinstance(value, list):
        value = value[0] if value else {}
    return value or {}


def rerank_skip_note(rerank: dict) -> str | None:
    """One line saying why the cross-encoder left a query alone (``ext.sesa.rerank.skipped``), or None."""
    skipped = rerank.get("skipped")
    if skipped == "no_evidence":
        return ("(rerank skipped: no evidence that it helps on this index; `sesa tune DATASET --index NAME` "
                "measures it on your judgements, --rerank-anyway reranks; fused order shown)")
    if skipped == "evidence_against":
        return "(rerank skipped: `sesa tune` measured no gain from it on this index; fused order shown)"
    if skipped != "out_of_domain":
        return None
    d = rerank.get("domain") or {}
    return (f"(rerank skipped: the query is outside the reranker's domain, similarity {_fmt(d.get('similarity'))} "
            f"< {_fmt(d.get('threshold'))} to {d.get('reference') or 'its training queries'}; fused order shown)")


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def format_results(response: dict, title_field: str = "title", max_concepts: int = 5) -> str:
    """A plain-text ranking: rank, fused/rerank score, title, component scores, shared concepts."""
    lines = []
    meta = response.get("ext", {}).get("sesa", {})
    if meta.get("degraded"):
        lines.append(f"! degraded: {meta.get('degraded_reason', 'rerank unavailable')}")
    skipped = rerank_skip_note(meta.get("rerank") or {})
    if skipped:
        lines.append(skipped)
    for rank, hit in enumerate(response["hits"]["hits"], start=1):
        exp = explanation(hit)
        title = str(hit.get("_source", {}).get(title_field, hit["_id"]))[:90]
        lines.append(f"{rank:>2}. {title}  [id {hit['_id']}, score {_fmt(hit.get('_score'))}]")
        parts = [f"{name} {_fmt(exp.get(name))}" for name in ("bm25", "dense", "concepts", "fused", "rerank")
                 if name in exp]
        if parts:
            lines.append("      " + " | ".join(parts))
        shared = exp.get("shared_concepts") or []
        if shared:
            concepts = ", ".join(f"{c['label']} ({c['contribution']:.3f})" for c in shared[:max_concepts])
            lines.append(f"      shared concepts: {concepts}")
    if not lines:
        lines.append("(no hits)")
    return "\n".join(lines)
