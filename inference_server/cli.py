"""``sesa-server``: serve, export, concepts build, config show, info.

Every failure an operator can fix (bad config, missing model, port in use) ends in one line
on stderr and exit code 2; tracebacks are for bugs only.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from inference_server import __version__

log = logging.getLogger("inference_server.cli")


def _config_from_args(args: argparse.Namespace) -> Any:
    from inference_server.config import load_config

    overrides = {
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
        "metrics.port": getattr(args, "metrics_port", None),
        "metrics.enabled": False if getattr(args, "no_metrics", False) else None,
        "models.encoder": getattr(args, "encoder", None),
        "models.reranker": getattr(args, "reranker", None),
        "models.concept_space": getattr(args, "concept_space", None),
        "models.cache_dir": getattr(args, "cache_dir", None),
        "runtime.device": getattr(args, "device", None),
        "runtime.precision": getattr(args, "precision", None),
        "runtime.intra_op_threads": getattr(args, "threads", None),
        "batching.max_batch_size": getattr(args, "max_batch_size", None),
        "batching.max_wait_ms": getattr(args, "max_wait_ms", None),
        "logging.level": getattr(args, "log_level", None),
        "logging.format": getattr(args, "log_format", None),
    }
    return load_config(getattr(args, "config", None), overrides)


def cmd_serve(args: argparse.Namespace) -> int:
    from inference_server.metrics import setup_logging
    from inference_server.server import serve

    cfg = _config_from_args(args)
    setup_logging(cfg.logging.level, cfg.logging.format)
    serve(cfg, ready_file=args.ready_file)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from inference_server.export import export_all
    from inference_server.metrics import setup_logging

    setup_logging(args.log_level or "INFO")
    done = export_all(args.encoder, args.reranker, args.cache_dir, force=args.force,
                      progress=lambda s: log.info("export %s", s))
    for m in done:
        print(json.dumps({"role": m.role, "onnx": str(m.onnx_path), "base_model": m.model_id, "version": m.version,
                          "sha256": m.manifest.get("onnx_sha256"), "licence": m.manifest.get("licence")}))
    if args.parity:
        from inference_server.parity import parity_report

        for m in done:
            if m.manifest.get("source_sha256"):
                print(json.dumps(parity_report(m)))
    return 0


def cmd_concepts_build(args: argparse.Namespace) -> int:
    from inference_server.concepts import (
        BUILTIN_PACKS, builtin_artifact_dir, build_concept_space, load_vocabulary,
    )
    from inference_server.metrics import setup_logging
    from inference_server.progress import progress
    from inference_server.runtime.loader import load_encoder

    cfg = _config_from_args(args)
    setup_logging(args.log_level or "INFO")
    entries, meta, name = load_vocabulary(args.vocab, limit=args.limit, key_prefix=args.key_prefix or "")
    enc = load_encoder(cfg, with_concepts=False)
    out = Path(args.out) if args.out else None
    if out is None:
        if args.vocab not in BUILTIN_PACKS:
            raise SystemExit("sesa-server: error: --out is required for a vocabulary file")
        out = builtin_artifact_dir(args.vocab, enc.meta.version, args.limit)
    log.info("embedding %d concepts of %s with %s", len(entries), args.vocab, enc.meta.model_id)
    path = build_concept_space(entries, out, enc, name=args.name or name, version=args.version, meta=meta,
                               progress=progress(len(entries), f"concepts {name}"))
    manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    print(json.dumps({"out": str(path), "name": manifest["name"], "version": manifest["version"],
                      "size": manifest["size"], "dimension": manifest["dimension"],
                      "matrix_sha256": manifest["matrix_sha256"], "seconds": manifest["build_seconds"]}))
    return 0


def cmd_config_show(args: argparse.Namespace) -> int:
    from inference_server.config import dump_yaml

    cfg = _config_from_args(args)
    if args.format == "json":
        print(json.dumps(cfg.redacted(), indent=2))
    else:
        print(dump_yaml(cfg), end="")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    import grpc
    from google.protobuf.json_format import MessageToDict
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from inference_server.contract import inference_pb2 as pb2
    from inference_server.contract import inference_pb2_grpc as pb2_grpc

    if args.tls_ca or args.tls:
        ca = Path(args.tls_ca).read_bytes() if args.tls_ca else None
        cert = Path(args.tls_cert).read_bytes() if args.tls_cert else None
        key = Path(args.tls_key).read_bytes() if args.tls_key else None
        channel = grpc.secure_channel(args.address, grpc.ssl_channel_credentials(ca, key, cert))
    else:
        channel = grpc.insecure_channel(args.address)
    md = []
    token = os.environ.get(args.token_env, "") if args.token_env else ""
    if token:
        md.append(("authorization", f"Bearer {token}"))
    out: dict[str, Any] = {"address": args.address}
    try:
        h = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=args.timeout)
        out["health"] = health_pb2.HealthCheckResponse.ServingStatus.Name(h.status)
        info = pb2_grpc.InferenceStub(channel).Info(pb2.InfoRequest(), timeout=args.timeout, metadata=md)
        out["info"] = MessageToDict(info, preserving_proto_field_name=True)
    except grpc.RpcError as e:
        print(f"sesa-server: error: {args.address}: {e.code().name}: {e.details()}", file=sys.stderr)
        return 1
    finally:
        channel.close()
    print(json.dumps(out, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sesa-server", description="SESA inference server (gRPC)")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    def add_config(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--config", help="YAML config file (default: $SESA_SERVER_CONFIG)")
        sp.add_argument("--encoder", help="encoder: HF model dir or .onnx file (default: built-in all-MiniLM-L6-v2)")
        sp.add_argument("--device", choices=["auto", "cpu", "cuda"])
        sp.add_argument("--precision", choices=["auto", "fp32", "fp16", "int8"])
        sp.add_argument("--threads", type=int, help="ONNX Runtime intra-op threads (0 = cores)")
        sp.add_argument("--cache-dir", help="ONNX export cache (default $SESA_HOME/models)")
        sp.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])

    s = sub.add_parser("serve", help="run the gRPC server")
    add_config(s)
    s.add_argument("--host")
    s.add_argument("--port", type=int)
    s.add_argument("--metrics-port", type=int)
    s.add_argument("--no-metrics", action="store_true")
    s.add_argument("--reranker", help="cross-encoder: HF sequence-classification dir or .onnx file")
    s.add_argument("--concept-space", help="artifact dir, built-in pack (esco-skills, wordnet-nouns) or 'none'")
    s.add_argument("--max-batch-size", type=int)
    s.add_argument("--max-wait-ms", type=float)
    s.add_argument("--log-format", choices=["text", "json"])
    s.add_argument("--ready-file", help="write '<grpc port>\\n<metrics port>' here once serving (for scripts)")
    s.set_defaults(func=cmd_serve)

    e = sub.add_parser("export", help="export encoder (and reranker) to ONNX into the cache")
    e.add_argument("--encoder", help="HF model dir (default: built-in all-MiniLM-L6-v2)")
    e.add_argument("--reranker", help="HF sequence-classification model dir")
    e.add_argument("--cache-dir")
    e.add_argument("--force", action="store_true", help="re-export even when cached")
    e.add_argument("--parity", action="store_true", help="compare ONNX Runtime with PyTorch after export")
    e.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    e.set_defaults(func=cmd_export)

    c = sub.add_parser("concepts", help="concept spaces")
    csub = c.add_subparsers(dest="concepts_command", required=True)
    cb = csub.add_parser("build", help="embed a vocabulary into a concept-space artifact")
    add_config(cb)
    cb.add_argument("--vocab", required=True,
                    help="JSONL vocabulary file or a built-in pack (esco-skills, wordnet-nouns)")
    cb.add_argument("--out", help="artifact dir (default for a built-in pack: the cache the server reads)")
    cb.add_argument("--limit", type=int, help="only the first N concepts (tests, CI)")
    cb.add_argument("--name", help="concept space name (default: pack name or file stem)")
    cb.add_argument("--version", help="artifact version (default: source version + content hash)")
    cb.add_argument("--key-prefix", help="prefix for keys derived from ids")
    cb.set_defaults(func=cmd_concepts_build)

    cf = sub.add_parser("config", help="configuration")
    cfsub = cf.add_subparsers(dest="config_command", required=True)
    cs = cfsub.add_parser("show", help="print the effective config (token redacted)")
    cs.add_argument("--config")
    cs.add_argument("--format", choices=["yaml", "json"], default="yaml")
    cs.set_defaults(func=cmd_config_show)

    i = sub.add_parser("info", help="call Info and health on a running server")
    i.add_argument("--address", default="127.0.0.1:50051")
    i.add_argument("--tls", action="store_true", help="use TLS with the system roots")
    i.add_argument("--tls-ca", help="CA certificate to trust")
    i.add_argument("--tls-cert", help="client certificate (mTLS)")
    i.add_argument("--tls-key", help="client key (mTLS)")
    i.add_argument("--token-env", default="SESA_SERVER_TOKEN", help="env var holding the bearer token")
    i.add_argument("--timeout", type=float, default=10.0)
    i.set_defaults(func=cmd_info)

    from inference_server.training.cli import register as register_training

    register_training(sub)  # sesa-server train concepts | reranker
    return p


def main(argv: list[str] | None = None) -> int:
    from inference_server.concepts import VocabularyError
    from inference_server.config import ConfigError
    from inference_server.export import ModelResolutionError
    from inference_server.runtime.backend import BackendError

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ConfigError, ModelResolutionError, VocabularyError, BackendError, FileNotFoundError) as e:
        print(f"sesa-server: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as e:
        from inference_server.server import ServerStartError

        if isinstance(e, ServerStartError):
            print(f"sesa-server: error: {e}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
