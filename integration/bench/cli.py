"""`sesa bench server|ingest|search|load|mixed|all`: the project's benchmarks under one command, one report format.

Every figure is judged by a ratio measured in the same run (these machines are shared and noisy);
absolute timings are recorded beside them and count only from a GPU run.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from .. import schemas
from ..cluster.errors import USER_ERRORS, SesaError
from .common import write_report
from .search import WARMUP


def _default_dataset() -> str:
    from ..cluster.paths import shared_data_dir

    return str(shared_data_dir() / "scifact")


def _server(args: argparse.Namespace) -> dict:
    if args.compare:
        from inference_server.config import load_config
        from integration.bench.compare import run_compare

        report = run_compare(args.dataset or _default_dataset(), rounds=args.rounds,
                             config=load_config(args.server_config))
        write_report(report, report["markdown"], args.out / "server-compare" if args.out else None)
        print(report["markdown"])
        return report
    from integration.bench.server import run_server_benchmark

    report = run_server_benchmark(config_path=args.server_config, duration_s=args.duration, rounds=args.rounds)
    write_report(report, report["markdown"], args.out / "server" if args.out else None)
    print(report["markdown"])
    return report


def _ingest(args: argparse.Namespace) -> dict:
    from ..cluster.stack import opensearch_client
    from ..ingest import resolve_cluster_url
    from .ingest import run_ingest_benchmark, to_markdown

    client = opensearch_client(resolve_cluster_url(args.cluster))
    report = run_ingest_benchmark(client, args.server, args.dataset or _default_dataset(), limit=args.limit,
                                  chunking=schemas.chunking_arg(args.chunking))
    markdown = to_markdown(report)
    write_report(report, markdown, args.out / "ingest" if args.out else None)
    print(markdown)
    return report


def _search(args: argparse.Namespace) -> dict:
    from ..cluster.stack import opensearch_client
    from ..ingest import resolve_cluster_url
    from .search import run_search_benchmark, to_markdown

    client = opensearch_client(resolve_cluster_url(args.cluster))
    report = run_search_benchmark(client, args.server, args.dataset or _default_dataset(),
                                  queries=args.queries, rounds=args.rounds, index=args.index, warmup=args.warmup,
                                  rerank=not args.no_rerank)
    markdown = to_markdown(report)
    write_report(report, markdown, args.out / "search" if args.out else None)
    print(markdown)
    return report


def _load(args: argparse.Namespace) -> dict:
    from ..cluster import node, server_process
    from ..cluster.paths import state_paths
    from ..cluster.stack import opensearch_client
    from ..inference import InferenceClient
    from ..ingest import resolve_cluster_url
    from .load import run_load, to_markdown

    paths = state_paths()
    node_state, server_state = node.running_node(paths), server_process.running_server(paths)
    client = opensearch_client(resolve_cluster_url(args.cluster))
    try:
        with InferenceClient(args.server) as inference:
            max_queue = inference.info().limits.max_queue_size or None
    except Exception:  # noqa: BLE001 - the bound is only reported
        max_queue = None
    report = run_load(client, args.dataset or _default_dataset(), duration_s=args.duration_load,
                      bulk_clients=args.bulk_clients or 8, searchers=args.searchers,
                      node_pid=node_state.pid if node_state else None,
                      server_pid=server_state.pid if server_state else None, metrics_url=args.metrics,
                      max_queue=max_queue)
    markdown = to_markdown(report)
    write_report(report, markdown, args.out / "load" if args.out else None)
    print(markdown)
    if not args.keep_index:
        client.indices.delete(index=report["index"], ignore_unavailable=True)
    return report


def _mixed(args: argparse.Namespace) -> dict:
    from ..cluster.stack import opensearch_client
    from ..ingest import resolve_cluster_url
    from .mixed import run_mixed, to_markdown

    client = opensearch_client(resolve_cluster_url(args.cluster))
    report = run_mixed(client, args.dataset or _default_dataset(), phase_s=args.phase,
                       bulk_clients=args.bulk_clients or 4,
                       search_interval_s=args.search_interval_ms / 1000.0, metrics_url=args.metrics,
                       keep_indices=args.keep_index)
    markdown = to_markdown(report)
    write_report(report, markdown, args.out / "mixed" if args.out else None)
    print(markdown)
    return report


BENCHMARKS = {"server": _server, "ingest": _ingest, "search": _search, "load": _load, "mixed": _mixed}


def _cmd_bench(args: argparse.Namespace) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    names = list(BENCHMARKS) if args.which == "all" else [args.which]
    results = {}
    for name in names:
        print(f"== sesa bench {name}", flush=True)
        try:
            results[name] = BENCHMARKS[name](args)
        except USER_ERRORS:
            raise
        except Exception as exc:
            if args.which != "all":
                raise
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}
            print(f"sesa bench {name} failed: {exc}")
    if args.out and args.which == "all":
        (args.out / "bench.json").write_text(json.dumps(results, indent=2, default=str))
    return 0 if all("error" not in r for r in results.values()) else 1


def register(subparsers) -> None:
    p = subparsers.add_parser("bench", help="benchmarks: server, ingest, search, load, mixed (ratios measured in one run)")
    p.add_argument("which", choices=[*BENCHMARKS, "all"])
    p.add_argument("--dataset", help="BEIR dataset folder for ingest/search (default: ../shared/data/scifact)")
    p.add_argument("--limit", type=int, default=256, help="documents for the ingest benchmark")
    p.add_argument("--chunking", metavar="JSON|off",
                   help="ingest: the sesa_encode chunking option both sides use (default: the shipped pipeline's; "
                        "'off': one window per text); windows/s through OpenSearch against the server's Encode on "
                        "the same windows")
    p.add_argument("--queries", type=int, default=50, help="queries for the search benchmark")
    p.add_argument("--index", help="search: the index to search (default sesa-<dataset folder>, ingested if "
                                   "incomplete), e.g. one ingested with chunking")
    p.add_argument("--no-rerank", action="store_true",
                   help="search: BM25 and hybrid only (the ratio), without the cross-encoder configurations")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--warmup", type=int, default=WARMUP,
                   help="unmeasured queries per configuration before the search benchmark (JIT warm-up)")
    p.add_argument("--duration", type=float, default=3.0, help="seconds per point (server benchmark)")
    p.add_argument("--server-config", help="sesa-server YAML config for the server benchmark")
    p.add_argument("--compare", action="store_true",
                   help="server: our encoder runtime at each precision vs sentence-transformers, bucketing vs "
                        "padding on a mixed stream, and the fp32 compute limit (on --dataset passages)")
    p.add_argument("--server", default="127.0.0.1:50051", help="inference server for ingest/search benchmarks")
    p.add_argument("--duration-load", type=float, default=120.0, help="seconds of the load benchmark")
    p.add_argument("--bulk-clients", type=int, default=None,
                   help="load and mixed: concurrent bulk clients (default 8 for load, 4 for mixed)")
    p.add_argument("--phase", type=float, default=30.0, help="mixed: seconds of each measured phase")
    p.add_argument("--search-interval-ms", type=float, default=200.0,
                   help="mixed: one hybrid search every this many ms (open loop)")
    p.add_argument("--searchers", type=int, default=16, help="load: concurrent hybrid searchers")
    p.add_argument("--metrics", default=f"http://127.0.0.1:{os.environ.get('SESA_SERVER_METRICS__PORT', '9464')}/metrics",
                   help="load and mixed: the inference server's Prometheus endpoint (queue depth and time, "
                        "RESOURCE_EXHAUSTED)")
    p.add_argument("--keep-index", action="store_true", help="load and mixed: keep the indices they filled")
    p.add_argument("--cluster", metavar="URL")
    p.add_argument("--out", type=Path, help="write report.json / report.md under this folder")
    p.set_defaults(func=_cmd_bench)
