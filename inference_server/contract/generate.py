"""Regenerate the Python gRPC stubs from the one .proto contract.

The .proto under ``schemas/proto`` is the single source of truth (the Java plugin generates
its stubs from it too). We commit the generated files so that serving needs no protoc, and
a unit test regenerates them into a temp dir and compares, so they cannot drift.

protoc emits absolute imports that follow the proto package (``from sesa.inference.v1 import
...``); we rewrite them to point at this package so no top-level ``sesa`` module is needed.

Usage: ``python -m inference_server.contract.generate [--check]``
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

CONTRACT_DIR = Path(__file__).resolve().parent
REPO_ROOT = CONTRACT_DIR.parents[1]
PROTO_ROOT = REPO_ROOT / "schemas" / "proto"
PROTO_REL = "sesa/inference/v1/inference.proto"
GENERATED = ("inference_pb2.py", "inference_pb2.pyi", "inference_pb2_grpc.py")

_REWRITES = (
    (
        "from sesa.inference.v1 import inference_pb2 as",
        "from inference_server.contract import inference_pb2 as",
    ),
    ("'sesa.inference.v1.inference_pb2'", "'inference_server.contract.inference_pb2'"),
)


def generate(proto_root: Path = PROTO_ROOT) -> dict[str, str]:
    """Run grpc_tools.protoc and return {file name: rewritten source}."""
    from grpc_tools import protoc

    try:  # well-known types (none used today, but keep imports resolvable)
        import importlib.resources as ir

        include = str(ir.files("grpc_tools") / "_proto")
    except Exception:  # pragma: no cover
        include = None
    with tempfile.TemporaryDirectory() as tmp:
        args = ["protoc", f"-I{proto_root}"]
        if include:
            args.append(f"-I{include}")
        args += [f"--python_out={tmp}", f"--pyi_out={tmp}", f"--grpc_python_out={tmp}", PROTO_REL]
        rc = protoc.main(args)
        if rc != 0:
            raise RuntimeError(f"protoc failed with exit code {rc} for {proto_root / PROTO_REL}")
        out_dir = Path(tmp) / Path(PROTO_REL).parent
        result = {}
        for name in GENERATED:
            text = (out_dir / name).read_text(encoding="utf-8")
            for old, new in _REWRITES:
                text = text.replace(old, new)
            result[name] = text
    return result


_STAMP = re.compile(r"^GRPC_GENERATED_VERSION = '[^']*'$", re.M)


def comparable(text: str) -> str:
    """Stub text without the grpcio-tools version stamp: a patch release of the generator stamps its own
    version but generates the same code from the same .proto, so the stamp alone does not make stubs stale."""
    return _STAMP.sub("GRPC_GENERATED_VERSION = ''", text)


def is_stale(name: str, fresh_text: str) -> bool:
    path = CONTRACT_DIR / name
    return not path.exists() or comparable(path.read_text(encoding="utf-8")) != comparable(fresh_text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed stubs are stale")
    args = parser.parse_args(argv)
    fresh = generate()
    stale = [n for n, t in fresh.items() if is_stale(n, t)]
    if args.check:
        if stale:
            print(f"stale generated stubs: {', '.join(stale)}; run python -m inference_server.contract.generate",
                  file=sys.stderr)
            return 1
        print("generated stubs are up to date")
        return 0
    for name, text in fresh.items():
        (CONTRACT_DIR / name).write_text(text, encoding="utf-8")
    print(f"wrote {', '.join(GENERATED)} to {CONTRACT_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
