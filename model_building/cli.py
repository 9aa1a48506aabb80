"""The model-building commands of ``sesa-server``: export, concepts build, train.

Registered into the server's parser (``inference_server.cli``) so operators have one command; every import that
needs torch or a vocabulary parser happens only when one of these commands runs. A vocabulary that cannot be read
ends in one line on stderr and exit code 2, like the server's own errors.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any, Callable

from inference_server.config import add_config_arguments, config_from_args

log = logging.getLogger("model_building.cli")


def _vocabulary_errors_as_exit_2(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from model_building.concept_packs.vocabulary import VocabularyError

        try:
            return fn(args)
        except VocabularyError as e:
            print(f"sesa-server: error: {e}", file=sys.stderr)
            return 2

    return run


def cmd_export(args: argparse.Namespace) -> int:
    from inference_server.metrics import setup_logging
    from model_building.export import export_all

    setup_logging(args.log_level or "INFO")
    done = export_all(args.encoder, args.reranker, args.cache_dir, force=args.force,
                      progress=lambda s: log.info("export %s", s))
    for m in done:
        print(json.dumps({"role": m.role, "onnx": str(m.onnx_path), "base_model": m.model_id, "version": m.version,
                          "sha256": m.manifest.get("onnx_sha256"), "licence": m.manifest.get("licence")}))
    if args.parity:
        from model_building.parity import parity_report

        for m in done:
            if m.manifest.get("source_sha256"):
                print(json.dumps(parity_report(m)))
    return 0


def cmd_concepts_build(args: argparse.Namespace) -> int:
    from inference_server.metrics import setup_logging
    from inference_server.progress import progress
    from inference_server.runtime.concept_space import BUILTIN_PACKS, builtin_artifact_dir
    from inference_server.runtime.loader import load_encoder
    from model_building.concept_packs.build import build_concept_space, load_vocabulary

    cfg = config_from_args(args)
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


def register(sub: Any) -> None:
    """Add ``export``, ``concepts build`` and ``train`` to the ``sesa-server`` subparsers."""
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
    add_config_arguments(cb)
    cb.add_argument("--vocab", required=True,
                    help="JSONL vocabulary file or a built-in pack (esco-skills, wordnet-nouns)")
    cb.add_argument("--out", help="artifact dir (default for a built-in pack: the cache the server reads)")
    cb.add_argument("--limit", type=int, help="only the first N concepts (tests, CI)")
    cb.add_argument("--name", help="concept space name (default: pack name or file stem)")
    cb.add_argument("--version", help="artifact version (default: source version + content hash)")
    cb.add_argument("--key-prefix", help="prefix for keys derived from ids")
    cb.set_defaults(func=_vocabulary_errors_as_exit_2(cmd_concepts_build))

    from model_building.training.cli import register as register_training

    register_training(sub)  # sesa-server train concepts | reranker | evaluate | domain
