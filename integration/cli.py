"""`sesa`: bring the stack up and down, inspect it, ingest, search, evaluate and benchmark."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .cluster.errors import USER_ERRORS
from .cluster.node import DEFAULT_HEAP


def _reranker_args(choice: str | None) -> tuple[str, ...]:
    """`sesa-server serve` arguments for `sesa up --reranker` (auto: the shipped model if present)."""
    from inference_server import paths

    if not choice or choice == "none":
        return ()
    if choice == "auto":
        shipped = paths.shipped_reranker_dir()
        return ("--reranker", str(shipped)) if shipped else ()
    return ("--reranker", str(Path(choice).expanduser()))


def concept_space_args(choice: str | None) -> tuple[str, ...]:
    """`sesa-server serve` arguments for `sesa up --concept-space` (auto: the shipped trained ESCO space if present,
    else the server's own default, the built-in zero-shot `esco-skills`)."""
    from inference_server import paths
    from inference_server.runtime.concept_space import BUILTIN_PACKS

    if not choice or choice == "auto":
        shipped = paths.shipped_concept_space_dir()
        return ("--concept-space", str(shipped)) if shipped else ()
    return ("--concept-space", choice if choice in (*BUILTIN_PACKS, "none") else str(Path(choice).expanduser()))


def _cmd_up(args: argparse.Namespace) -> int:
    from .cluster import stack

    options = stack.UpOptions(
        port=args.port,
        heap=args.heap,
        cluster_url=args.cluster,
        server_host=args.server_host,
        server_port=args.server_port,
        server_config=args.server_config,
        start_server=not args.no_server,
        plugin_zip=args.plugin_zip,
        server_address=args.server,
        server_args=_reranker_args(args.reranker) + concept_space_args(args.concept_space),
    )
    summary = stack.up(options)
    print(json.dumps(summary, indent=2))
    if args.demo:
        from . import demo

        demo.run(summary, args)
    return 0


def _cmd_down(args: argparse.Namespace) -> int:
    from .cluster import stack

    result = stack.down()
    print(json.dumps(result) if args.json else
          f"node: {'stopped' if result['node_stopped'] else 'not running'}; "
          f"inference server: {'stopped' if result['server_stopped'] else 'not running'}")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from .cluster import stack

    result = stack.status(cluster_url=args.cluster, server_address=args.server)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        node = result["node"]
        print(f"node: {node.get('status')} {node.get('url', '')}")
        for plugin in node.get("plugins", []):
            print(f"  plugin {plugin}")
        srv = result["inference_server"]
        print(f"inference server: {srv['health']} {srv['address']} {srv.get('reason', '')}")
        runtime = srv.get("runtime", {})
        if runtime.get("device"):
            print(f"  device {runtime['device']}; CPU instruction sets: {', '.join(runtime['cpu_features']) or '-'}")
        for m in runtime.get("models", []):
            print(f"  {m['role']} {m['id']}: {m['engine']} {m['precision']} ({m['why']})")
        if runtime.get("reason"):
            print(f"  {runtime['reason']}")
        if "indices" in result:
            from .cluster.indices import format_indices

            print("SESA indices:")
            print(format_indices(result["indices"]))
    node_ok = result["node"].get("status") in ("green", "yellow")
    return 0 if node_ok and result["inference_server"]["health"] == "SERVING" else 3


def _cmd_index_create(args: argparse.Namespace) -> int:
    from . import schemas
    from .cluster import indices
    from .cluster.indices import create_index
    from .cluster.stack import model_facts, opensearch_client
    from .ingest import resolve_cluster_url

    client = opensearch_client(resolve_cluster_url(args.cluster))
    facts = None if args.field else model_facts(args.server or _default_server())
    chunking = indices.SHIPPED if args.chunking is None else schemas.chunking_arg(args.chunking)
    result = create_index(client, args.name, facts, fields=args.field, concept_space=args.concept_space,
                          chunking=chunking)
    if args.json:
        print(json.dumps(result, indent=2))
    elif result["layout"] == "field":
        print(f"created {result['index']}: sesa_text fields {', '.join(result['fields'])}; documents are encoded "
              f"at ingest with plain _bulk; search them with ext.sesa.field")
    else:
        cut = "texts encoded whole" if result["chunking"] is None else f"chunking {json.dumps(result['chunking'])}"
        print(f"created {result['index']}: fields title, text and the sesa_* fields, default pipeline "
              f"{result['default_pipeline']} (the same mapping as a sesa-* index); sesa_encode holds every document "
              f"to {cut}")
        if result["chunking"] != schemas.encode_processor().get("chunking"):
            print(f"note: {result['default_pipeline']} cuts texts otherwise; ingest with a pipeline whose sesa_encode "
                  f"has this chunking (?pipeline=NAME, or set index.default_pipeline)")
    return 0


def _cmd_index_list(args: argparse.Namespace) -> int:
    from .cluster.indices import format_indices, sesa_indices
    from .cluster.stack import opensearch_client
    from .ingest import resolve_cluster_url

    rows = sesa_indices(opensearch_client(resolve_cluster_url(args.cluster)))
    print(json.dumps(rows, indent=2) if args.json else format_indices(rows))
    return 0


def _default_server() -> str:
    from .cluster import server_process
    from .cluster.paths import state_paths
    from . import schemas

    srv = server_process.running_server(state_paths())
    return srv.address if srv else schemas.conventions()["default_inference_endpoint"]


def _cmd_search(args: argparse.Namespace) -> int:
    from .cluster.stack import opensearch_client
    from .ingest import resolve_cluster_url
    from .search import format_results, run_search

    client = opensearch_client(resolve_cluster_url(args.cluster))
    filter_query = json.loads(args.filter) if args.filter else None
    rerank: bool | dict = {"out_of_domain": "rerank", "without_evidence": "rerank"} if args.rerank_anyway else args.rerank
    response = run_search(client, args.index, args.text, mode=args.mode, size=args.size, rerank=rerank,
                          explain=args.explain, filter_query=filter_query)
    print(json.dumps(response, indent=2) if args.json else format_results(response))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sesa", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start the embedded node + inference server (or use --cluster) and apply templates")
    up.add_argument("--port", type=int, default=9200, help="HTTP port of the embedded node (default 9200)")
    up.add_argument("--heap", default=DEFAULT_HEAP, help=f"JVM heap of the embedded node (default {DEFAULT_HEAP})")
    up.add_argument("--cluster", metavar="URL", help="use an existing cluster instead of the embedded node")
    up.add_argument("--server-host", default="127.0.0.1")
    up.add_argument("--server-port", type=int, default=50051)
    up.add_argument("--server-config", type=Path, help="YAML config for sesa-server")
    up.add_argument("--no-server", action="store_true", help="do not start the inference server")
    up.add_argument("--reranker", metavar="DIR|ONNX|none", default="auto",
                    help="cross-encoder for the server (HF dir, export dir or ONNX + tokenizer); default: the "
                         "shipped models/sesa-reranker-minilm-l6-scifact when this checkout has it; none: no rerank")
    up.add_argument("--concept-space", metavar="DIR|PACK|none", default="auto",
                    help="concept space for the server; default: the shipped models/esco-skills-sesa-esco (ESCO skills "
                         "trained on ESCO's own supervision) when this checkout has it, else the built-in zero-shot "
                         "esco-skills; esco-skills or wordnet-nouns: a built-in pack; none: no concepts")
    up.add_argument("--server", metavar="HOST:PORT",
                    help="an inference server that is already running (with --no-server)")
    up.add_argument("--plugin-zip", type=Path, help="plugin zip to install (default: plugin/target/releases)")
    up.add_argument("--demo", action="store_true", help="index the ESCO occupations and run a demo query")
    up.set_defaults(func=_cmd_up)

    down = sub.add_parser("down", help="stop what `sesa up` started")
    down.add_argument("--json", action="store_true")
    down.set_defaults(func=_cmd_down)

    status = sub.add_parser("status", help="node health, plugins and inference server health")
    status.add_argument("--json", action="store_true")
    status.add_argument("--cluster", metavar="URL")
    status.add_argument("--server", metavar="HOST:PORT")
    status.set_defaults(func=_cmd_status)

    index = sub.add_parser("index", help="create a correctly mapped SESA index under any name; list SESA indices")
    index_sub = index.add_subparsers(dest="index_command", required=True)
    create = index_sub.add_parser("create", help="create NAME mapped for SESA (the sesa-* template's mapping, or "
                                                 "one sesa_text field per --field)")
    create.add_argument("name")
    create.add_argument("--field", action="append", metavar="NAME",
                        help="a sesa_text field (repeat for several): encoded at ingest without a pipeline; without "
                             "--field the index gets title, text and the sesa_* fields with the sesa-ingest pipeline")
    create.add_argument("--concept-space", help="the server's concept space for the --field fields (default: the "
                                                "server's default space)")
    create.add_argument("--chunking", metavar="off|JSON",
                        help="how texts are cut into windows: without --field, what the index records and sesa_encode "
                             "holds every document to (default: the shipped pipeline's option; 'off': texts encoded "
                             "whole; or the option, e.g. '{\"window_tokens\": 128}'); with --field, the sesa_text "
                             "fields' chunking parameter (default: the same option, written in by the plugin; 'off': "
                             "the first window only)")
    create.add_argument("--server", metavar="HOST:PORT", help="inference server whose dimension and models the "
                                                              "mapping records (default: the one `sesa up` started)")
    create.add_argument("--cluster", metavar="URL")
    create.add_argument("--json", action="store_true")
    create.set_defaults(func=_cmd_index_create)
    listing = index_sub.add_parser("list", help="indices that carry SESA fields, their models and mapping problems")
    listing.add_argument("--cluster", metavar="URL")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=_cmd_index_list)

    search = sub.add_parser("search", help="query text through the sesa-search pipeline, with explanations")
    search.add_argument("text", help="the query text")
    search.add_argument("--index", required=True)
    search.add_argument("--mode", default="hybrid", choices=("bm25", "dense", "concepts", "hybrid"))
    search.add_argument("--size", type=int, default=10)
    search.add_argument("--rerank", action="store_true", help="rerank the top hits with the cross-encoder (a query "
                        "outside the reranker's domain keeps the fused order, as the pipeline says)")
    search.add_argument("--rerank-anyway", action="store_true", dest="rerank_anyway",
                        help="rerank even without evidence for this index or outside the reranker's domain "
                             "(ext.sesa.rerank without_evidence and out_of_domain: rerank)")
    search.add_argument("--explain", action="store_true", help="show component scores and shared concepts")
    search.add_argument("--filter", metavar="JSON", help="an OpenSearch query applied as a filter to every branch")
    search.add_argument("--json", action="store_true", help="print the raw response")
    search.add_argument("--cluster", metavar="URL")
    search.set_defaults(func=_cmd_search)

    from .evaluation.cli import register as register_evaluation

    register_evaluation(sub)  # sesa ingest, sesa eval

    from .evaluation.concepts import register as register_concepts

    register_concepts(sub)  # sesa eval-concepts

    from .evaluation.tuning import register as register_tuning

    register_tuning(sub)  # sesa tune

    from .bench.cli import register as register_bench

    register_bench(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except USER_ERRORS as exc:
        print(f"sesa: error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - turn client errors into one line, keep real bugs loud
        from opensearchpy.exceptions import ConnectionError as OSConnectionError
        from opensearchpy.exceptions import TransportError

        if isinstance(exc, OSConnectionError):
            print(f"sesa: error: cannot reach OpenSearch: {exc.info or exc}", file=sys.stderr)
            return 1
        if isinstance(exc, TransportError):
            detail = exc.info.get("error", exc.info) if isinstance(exc.info, dict) else exc.info
            if isinstance(detail, dict):
                detail = detail.get("reason") or detail.get("type") or detail
            print(f"sesa: error: OpenSearch answered {exc.status_code}: {detail}", file=sys.stderr)
            return 1
        raise
    except KeyboardInterrupt:
        print("sesa: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
