"""``sesa-server``: serve, config show, info; plus the model-building commands (export, concepts build, train)
that ``model_building.cli`` registers.

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
from inference_server.config import add_config_arguments, config_from_args

log = logging.getLogger("inference_server.cli")


def cmd_serve(args: argparse.Namespace) -> int:
    from inference_server.metrics import setup_logging
    from inference_server.server import serve

    cfg = config_from_args(args)
    setup_logging(cfg.logging.level, cfg.logging.format)
    serve(cfg, ready_file=args.ready_file)
    return 0


def cmd_config_show(args: argparse.Namespace) -> int:
    from inference_server.config import dump_yaml

    cfg = config_from_args(args)
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


# The commands of the serving path: their parser is built without model building, so `serve` imports only it.
SERVING_COMMANDS = ("serve", "config", "info")


def build_parser(with_model_building: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sesa-server", description="SESA inference server (gRPC)")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the gRPC server")
    add_config_arguments(s)
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

    # Model building (export, concepts build, train) lives beside the server; its commands are registered here
    # so operators have one command, and it imports nothing heavy until one of them runs.
    if with_model_building:
        from model_building.cli import register as register_model_building

        register_model_building(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    from inference_server.config import ConfigError
    from inference_server.model_store import ModelResolutionError
    from inference_server.runtime.backend import BackendError

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(with_model_building=not (argv and argv[0] in SERVING_COMMANDS)).parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ConfigError, ModelResolutionError, BackendError, FileNotFoundError) as e:
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
