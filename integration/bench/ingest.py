"""`sesa bench ingest`: documents/s through OpenSearch (bulk + `sesa_encode`) against the server's own
Encode throughput on the same documents, in the same run, for several processor batch sizes.

The ratio that matters: ingest docs/s at batch_size 64 / the server's own docs/s (the plugin should add
little on top of inference), and batch_size 64 / batch_size 1 (batching must pay off).

With ``chunking`` (the ``sesa_encode`` option of that name, e.g. ``{}`` for every default; the CLI passes the shipped
pipeline's unless told otherwise) both sides encode every window of each text: the server's Encode with
``EncodeOptions.chunking`` and the bulk through a pipeline with the same option, into an index the ``sesa-*`` template
maps for windows. The report then counts windows/s too (the windows the server made of these texts; the ingest
writes the same ones). Without it both sides encode one window per text.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

from ir.beir import Dataset

from .. import schemas
from .common import Stopwatch, provenance

DEFAULT_BATCH_SIZES = (1, 16, 64)


def _docs(dataset: str, limit: int) -> list:
    return list(itertools.islice(Dataset(dataset).iter_corpus(), limit))


def server_encode(address: str, texts: list[str], batch: int = 64,
                  chunking: dict[str, int] | None = None) -> tuple[float, int]:
    """(docs/s, windows) of Encode called directly with the processor's batch and chunking, as the plugin would
    call it; ``windows`` is the number of windows the texts were cut into (one per text without chunking)."""
    from inference_server.contract import inference_pb2 as pb

    from ..inference import InferenceClient

    options = {"chunking": pb.Chunking(**chunking)} if chunking is not None else {}
    windows = 0
    with InferenceClient(address, timeout_s=600) as client:
        client.encode(texts[:2], **options)  # warm-up
        with Stopwatch() as sw:
            for i in range(0, len(texts), batch):
                response = client.encode(texts[i:i + batch], **options)
                windows += sum(max(1, len(e.windows)) for e in response.embeddings)
    return len(texts) / sw.seconds, windows


def bench_pipeline(batch_size: int, chunking: dict[str, int] | None) -> dict[str, Any]:
    """The shipped pipeline with ``batch_size`` and exactly ``chunking`` (None: no chunking), so the bulk encodes
    what the server side of the benchmark encodes, whatever the shipped pipeline's own option is."""
    pipeline = schemas.load_json("ingest-pipeline.json")
    processor = schemas.sesa_encode_options(pipeline)
    processor["batch_size"] = batch_size
    processor.pop("chunking", None)
    if chunking is not None:
        processor["chunking"] = chunking
    return pipeline


def bulk_throughput(client, docs: list, batch_size: int, bulk_chunk: int = 256,
                    chunking: dict[str, int] | None = None) -> dict[str, Any]:
    """Docs/s of _bulk through a pipeline whose sesa_encode uses `batch_size` (and `chunking` when given)."""
    from opensearchpy.helpers import bulk

    pipeline_id = f"sesa-bench-bs{batch_size}"
    client.ingest.put_pipeline(id=pipeline_id, body=bench_pipeline(batch_size, chunking))
    index = f"sesa-bench-ingest-bs{batch_size}"
    if client.indices.exists(index=index):
        client.indices.delete(index=index)
    # the index records the chunking its documents get (the sesa_encode guard holds the bulk to it)
    meta = {schemas.conventions()["index_meta_key"]: {"chunking": schemas.chunking_meta(chunking)}}
    client.indices.create(index=index, body={"mappings": {"_meta": meta}})
    actions = [{"_index": index, "_id": d.id, "_source": d.source()} for d in docs]
    try:
        with Stopwatch() as sw:
            ok, errors = bulk(client, actions, chunk_size=bulk_chunk, pipeline=pipeline_id,
                              raise_on_error=False, request_timeout=600)
        failed = len(errors) if isinstance(errors, list) else int(errors)
        return {"batch_size": batch_size, "docs": len(docs), "indexed": ok, "failed": failed,
                "seconds": round(sw.seconds, 2), "docs_per_s": round(len(docs) / sw.seconds, 2)}
    finally:
        client.indices.delete(index=index, ignore_unavailable=True)
        client.ingest.delete_pipeline(id=pipeline_id)


def run_ingest_benchmark(client, server_address: str, dataset: str, limit: int = 256,
                         batch_sizes: tuple[int, ...] = DEFAULT_BATCH_SIZES,
                         chunking: dict[str, int] | None = None) -> dict[str, Any]:
    docs = _docs(dataset, limit)
    texts = [d.joined("\n") for d in docs]
    started = time.time()
    server_dps, windows = server_encode(server_address, texts, chunking=chunking)
    runs = [bulk_throughput(client, docs, bs, chunking=chunking) for bs in batch_sizes]
    for run in runs:  # the same texts, so the same windows as the server made
        run["windows_per_s"] = round(run["docs_per_s"] * windows / len(docs), 2)
    by_bs = {r["batch_size"]: r for r in runs}
    best = max(batch_sizes)
    ratios = {f"ingest_bs{best}_over_server": round(by_bs[best]["docs_per_s"] / server_dps, 3)}
    if 1 in by_bs:
        ratios[f"ingest_bs{best}_over_bs1"] = round(by_bs[best]["docs_per_s"] / by_bs[1]["docs_per_s"], 2)
    # Time split at the largest batch size: inference ~ what the server alone needs for these docs.
    inference_s = len(docs) / server_dps
    total_s = by_bs[best]["seconds"]
    return {
        "benchmark": "ingest",
        "dataset": dataset,
        "documents": len(docs),
        "chunking": chunking,
        "windows": windows,
        "server_encode_docs_per_s": round(server_dps, 2),
        "server_encode_windows_per_s": round(server_dps * windows / len(docs), 2),
        "runs": runs,
        "ratios": ratios,
        "time_split_at_best_batch": {
            "total_s": total_s,
            "inference_s_estimate": round(inference_s, 2),
            "opensearch_and_transport_share": round(max(0.0, 1 - inference_s / total_s), 3),
        },
        **provenance(started),
    }


def to_markdown(report: dict[str, Any]) -> str:
    chunked = report.get("chunking") is not None
    server = f"Server Encode alone (batches of 64): **{report['server_encode_docs_per_s']} docs/s**"
    if chunked:
        server = (f"Chunking {report['chunking']}: {report['windows']} windows of {report['documents']} documents; "
                  f"server Encode alone (batches of 64): **{report['server_encode_docs_per_s']} docs/s = "
                  f"{report['server_encode_windows_per_s']} windows/s**")
    columns = ["batch_size", "docs_per_s", *(["windows_per_s"] if chunked else []), "failed", "seconds"]
    headings = {"batch_size": "sesa_encode batch_size", "docs_per_s": "docs/s through OpenSearch",
                "windows_per_s": "windows/s", "failed": "failed", "seconds": "seconds"}
    lines = [
        f"## Ingest benchmark ({report['documents']} documents of {report['dataset']})",
        "",
        server,
        "",
        "| " + " | ".join(headings[c] for c in columns) + " |",
        "|" + "---|" * len(columns),
    ]
    lines += ["| " + " | ".join(str(run[c]) for c in columns) + " |" for run in report["runs"]]
    lines += ["", "| ratio | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in report["ratios"].items()]
    split = report["time_split_at_best_batch"]
    lines += ["", f"Time outside inference at the largest batch: {split['opensearch_and_transport_share']:.1%}"]
    return "\n".join(lines) + "\n"
