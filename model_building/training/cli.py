"""``sesa-server train ...`` subcommands, added to the server CLI by ``register(subparsers)``.

    sesa-server train concepts --dataset DIR [--vocab esco-skills] [--out DIR] [--tiny] [--eval DIR ...]
    sesa-server train skills   --esco DIR [--out DIR] [--tiny] [--epochs N] [--anchor A] [--scale S]
    sesa-server train reranker --dataset DIR [--out DIR] [--tiny] [--eval DIR ...] [--time-budget S]
    sesa-server train evaluate --dataset DIR [--concepts DIR] [--reranker DIR] [--eval DIR ...] [--weights b,d,c] [--update-manifest]
    sesa-server train report   --concepts DIR --dataset DIR [--json FILE] [--markdown FILE]
    sesa-server train domain   --model DIR --dataset DIR [--k 10] [--percentile 5]

Also runnable without the server CLI: ``python -m model_building.training.cli train ...``.
Importing this module is cheap (no torch); the commands import what they need.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger("model_building.training")


def _setup(args: argparse.Namespace) -> None:
    logging.basicConfig(level=getattr(logging, (args.log_level or "INFO")), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _command_line(argv: list[str] | None) -> str:
    return "sesa-server " + " ".join(argv if argv is not None else sys.argv[1:])


def cmd_concepts(args: argparse.Namespace) -> int:
    from model_building.training.concept_head_training import ConceptTrainConfig
    from model_building.training.concepts_pipeline import train_concepts

    _setup(args)
    cfg = ConceptTrainConfig.tiny() if args.tiny else ConceptTrainConfig()
    for name in ("epochs", "seed", "top_k", "lr", "anchor", "l1", "batch_size"):
        v = getattr(args, name, None)
        if v is not None:
            setattr(cfg, name, v)
    cfg.vocab = args.vocab
    if args.vocab_limit is not None:
        cfg.vocab_limit = args.vocab_limit
    m = train_concepts(args.dataset, args.vocab, args.out, cfg, cache_dir=args.cache_dir, eval_dirs=args.eval or (),
                       name=args.name, show_progress=not args.quiet)
    _record_command(Path(args.out) if args.out else Path("models") / m["name"], args)
    print(json.dumps({"out": str(args.out or Path("models") / m["name"]), "name": m["name"], "version": m["version"],
                      "matrix_sha256": m["matrix_sha256"], "metrics": m["metrics"]["ndcg@10"],
                      "fusion": m["fusion"], "truthfulness": m["truthfulness"]["trained"]}, indent=2))
    return 0


def cmd_skills(args: argparse.Namespace) -> int:
    from model_building.training.skills_training import DEFAULT_NAME, SkillsTrainConfig, train_skills

    _setup(args)
    cfg = SkillsTrainConfig.tiny() if args.tiny else SkillsTrainConfig()
    for name in ("epochs", "seed", "top_k", "lr", "anchor", "scale", "batch_size", "max_segments"):
        v = getattr(args, name, None)
        if v is not None:
            setattr(cfg, name, v)
    if args.segment_kinds:
        kinds = tuple(k.strip() for k in args.segment_kinds.split(",") if k.strip())
        if not kinds or set(kinds) - {"query", "passage"}:
            print(f"sesa-server: error: --segment-kinds {args.segment_kinds!r}: expected query, passage or both",
                  file=sys.stderr)
            return 2
        cfg.segment_kinds = kinds
    for spec in args.source_weight or ():
        source, _, value = spec.partition("=")
        if source not in cfg.source_weights or not value:
            print(f"sesa-server: error: --source-weight {spec!r}: expected SOURCE=WEIGHT with SOURCE one of "
                  f"{', '.join(cfg.source_weights)}", file=sys.stderr)
            return 2
        cfg.source_weights[source] = float(value)
    name = args.name or DEFAULT_NAME
    out = Path(args.out) if args.out else Path("models") / name
    m = train_skills(args.esco, out, cfg, name=name, cache_dir=args.cache_dir, show_progress=not args.quiet)
    _record_command(out, args)
    print(json.dumps({"out": str(out), "name": m["name"], "version": m["version"], "matrix_sha256": m["matrix_sha256"],
                      "metrics": m["metrics"], "truthfulness": m["truthfulness"]["trained"]}, indent=2))
    return 0


def cmd_reranker(args: argparse.Namespace) -> int:
    from model_building.training.reranker import RerankerTrainConfig
    from model_building.training.reranker_pipeline import train_reranker

    _setup(args)
    cfg = RerankerTrainConfig.tiny() if args.tiny else RerankerTrainConfig()
    if args.time_budget is not None:
        cfg.time_budget_s = args.time_budget
    if args.max_steps is not None:
        cfg.max_steps = args.max_steps
    if args.seed is not None:
        cfg.seed = args.seed
    for key in ("architecture", "freeze_layers", "epochs", "title_groups", "esco_groups", "ict_groups", "lr", "cycles"):
        if getattr(args, key, None) is not None:
            setattr(cfg, key, getattr(args, key))
    if args.no_bf16:
        cfg.bf16 = False
    cfg.__post_init__()  # re-validate after the overrides
    name = args.name or ("sesa-reranker-tiny" if args.tiny else "sesa-reranker-minilm-l6-scifact")
    m = train_reranker(args.dataset, args.out, cfg, base_dir=args.base, cache_dir=args.cache_dir,
                       eval_dirs=args.eval or (), name=name, show_progress=not args.quiet, skip_eval=args.no_eval)
    out = Path(args.out) if args.out else Path("models") / name
    _record_command(out, args)
    print(json.dumps({"out": str(out), "onnx_sha256": m["onnx_sha256"], "onnx_bytes": m["onnx_bytes"],
                      "training": m["recipe"]["training"], "metrics": m.get("metrics", {}).get("ndcg@10")}, indent=2))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from model_building.training.report import concept_report

    _setup(args)
    rep = concept_report(args.concepts, args.dataset, cache_dir=args.cache_dir, seed=args.seed,
                         n_examples=args.examples, n_docs=args.docs)
    if args.json:
        Path(args.json).write_text(json.dumps(rep, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if args.markdown:
        Path(args.markdown).write_text(rep["markdown"], encoding="utf-8")
    if not args.json and not args.markdown:
        print(rep["markdown"])
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Re-measure shipped artifacts without training (the model cards' reproduction commands)."""
    _setup(args)
    out: dict[str, Any] = {}
    if args.concepts:
        from inference_server.runtime.concept_head import ConceptHead
        from inference_server.runtime.concept_space import builtin_artifact_dir
        from model_building.training.concepts_pipeline import EvalSet, evaluate_heads
        from model_building.training.data import load_beir
        from model_building.training.embeddings import EmbeddingCache, load_server_encoder

        enc = load_server_encoder()
        cache = EmbeddingCache(enc, args.cache_dir, show_progress=not args.quiet)
        head = ConceptHead.load(args.concepts)
        heads = {"trained": head}
        zs = builtin_artifact_dir("esco-skills", enc.meta.version)
        if head.manifest.get("base_vocabulary", {}).get("name") == "esco-skills" and (zs / "manifest.json").is_file():
            heads["zero_shot"] = ConceptHead.load(zs)
        weights = head.manifest.get("fusion", {}).get("weights")
        if args.weights:
            b, d, c = (float(x) for x in args.weights.split(","))
            weights = {"bm25": b, "dense": d, "concepts": c}
        elif args.choose_weights:
            from model_building.training.concept_head_training import ConceptTrainConfig
            from model_building.training.concepts_pipeline import choose_concept_weight, dev_runs

            cc = ConceptTrainConfig.from_manifest(head.manifest)
            runs, dev_qrels, doc_ids = dev_runs(args.dataset, head, cc.top_k, cc.dev_fraction, cc.dev_seed, enc,
                                                args.cache_dir)
            weights, dev_ndcg = choose_concept_weight(runs, dev_qrels, doc_ids)
            out["weights_chosen_on"] = {"dev_queries": len(dev_qrels), "dev_ndcg@10": dev_ndcg,
                                        "rule": "bm25 = dense, concept weight in 0..0.5 step 0.05"}
        sets = {}
        for d in [args.dataset] + list(args.eval or []):
            ds = load_beir(d)
            split = ds.eval_split
            sets[f"{ds.name}-{split}" if d == args.dataset else ds.name] = EvalSet(ds, cache, split)
        k = int(args.top_k or head.manifest.get("recipe", {}).get("config", {}).get("top_k", 32))
        out["concepts"] = {"weights": weights, "top_k": k, "ndcg@10": evaluate_heads(sets, heads, k, weights)}
    if args.reranker:
        out["reranker"] = _evaluate_reranker(args)
    print(json.dumps(out, indent=2))
    return 0


def _evaluate_reranker(args: argparse.Namespace) -> dict[str, Any]:
    """Re-measure a reranker dir; with --update-manifest also re-choose its blend weight on the dev queries
    of its own training run and write both into its manifest (after a runtime change moved its scores)."""
    from model_building.training.data import load_beir
    from model_building.training.embeddings import EmbeddingCache, load_server_encoder
    from model_building.training.reranker import load_runtime
    from model_building.training.reranker_pipeline import evaluate_reranker, remeasure_reranker

    enc = load_server_encoder()
    cache = EmbeddingCache(enc, args.cache_dir, show_progress=not args.quiet)
    path = Path(args.reranker) / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if args.update_manifest:
        metrics = remeasure_reranker(args.reranker, args.dataset, args.eval or (), args.depth, encoder=enc,
                                     cache_dir=args.cache_dir, show_progress=not args.quiet)
        return {"alpha": metrics.get("dev", {}).get("alpha_chosen"), "ndcg@10": metrics, "manifest": str(path)}
    rt = load_runtime(args.reranker, int(manifest.get("max_tokens", 256)))
    alpha = manifest.get("metrics", {}).get("ndcg@10", {}).get("dev", {}).get("alpha_chosen")
    res = {}
    for d in [args.dataset] + list(args.eval or []):
        ds = load_beir(d)
        res[ds.name] = evaluate_reranker(rt, ds, cache, ds.eval_split, args.depth, alpha, not args.quiet)
    return {"alpha": alpha, "ndcg@10": res}


def cmd_domain(args: argparse.Namespace) -> int:
    """Give a trained reranker or concept-head dir its domain bank (the training commands write one themselves)."""
    from model_building.training.domain_bank import add_domain_bank

    _setup(args)
    try:
        spec = add_domain_bank(args.model, args.dataset, k=args.k, percentile=args.percentile,
                               cache_dir=args.cache_dir, show_progress=not args.quiet)
    except ValueError as e:  # not a trained model dir, no dev queries, bad percentile
        print(f"sesa-server: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps({"model": str(args.model), "domain": spec}, indent=2))
    return 0


def _record_command(out: Path, args: argparse.Namespace) -> None:
    """Write the reproducing command into the artifact's manifest (recipe.command)."""
    mp = out / "manifest.json"
    if not mp.is_file():
        return
    m = json.loads(mp.read_text(encoding="utf-8"))
    argv = getattr(args, "_argv", None)
    m.setdefault("recipe", {})["command"] = _command_line(argv)
    mp.write_text(json.dumps(m, indent=2) + "\n", encoding="utf-8")


def _positive_int(text: str) -> int:
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def _guarded(fn: Any) -> Any:
    """Operator-fixable errors (bad dataset folder, vocabulary) -> one line on stderr, exit 2."""

    def run(args: argparse.Namespace) -> int:
        from model_building.concept_packs.vocabulary import VocabularyError
        from ir.beir import DatasetError

        try:
            return fn(args)
        except (DatasetError, VocabularyError, FileNotFoundError) as e:
            print(f"sesa-server: error: {e}", file=sys.stderr)
            return 2

    return run


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``train`` (concepts | skills | reranker | evaluate | domain | report) to an argparse subparsers object."""
    t = subparsers.add_parser("train", help="train the SESA concept head or the cross-encoder reranker")
    tsub = t.add_subparsers(dest="train_command", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--dataset", required=True, help="BEIR folder with qrels/train.tsv (e.g. shared/data/scifact)")
        sp.add_argument("--out", help="artifact dir (default models/<name>)")
        sp.add_argument("--name", help="artifact name")
        sp.add_argument("--tiny", action="store_true", help="a tiny run (< ~60 s) that checks the code path")
        sp.add_argument("--eval", action="append", metavar="DIR", help="extra BEIR folder to evaluate on (repeat)")
        sp.add_argument("--cache-dir", help="embedding cache (default $SESA_TRAINING_CACHE or $SESA_HOME/training-cache)")
        sp.add_argument("--seed", type=int)
        sp.add_argument("--quiet", action="store_true", help="no progress bars")
        sp.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])

    c = tsub.add_parser("concepts", help="train the concept head matrix (encoder frozen)")
    common(c)
    c.add_argument("--vocab", default="esco-skills", help="built-in pack (esco-skills) or vocabulary JSONL")
    c.add_argument("--vocab-limit", type=int, help="only the first N concepts")
    c.add_argument("--epochs", type=int)
    c.add_argument("--top-k", type=int, dest="top_k", help="inference top-k (server concepts.default_top_k)")
    c.add_argument("--lr", type=float)
    c.add_argument("--anchor", type=float, help="weight of the row-to-description term")
    c.add_argument("--l1", type=float, help="weight of the L1 activation term")
    c.add_argument("--batch-size", type=int, dest="batch_size")
    c.set_defaults(func=_guarded(cmd_concepts))

    k = tsub.add_parser("skills", help="train the ESCO skill space on ESCO's own supervision (labels, aliases, "
                                       "descriptions, SkillSkape sentences, occupation skill links, job-ad dev "
                                       "sentences; dev sets choose the epochs)")
    k.add_argument("--esco", required=True, help="ESCO data folder: skills.jsonl, skillskape/, postings/ (qrels dev_* "
                                                 "are trained on, cross-fitted, and choose the epochs; test_* are "
                                                 "only reported)")
    k.add_argument("--out", help="artifact dir (default models/<name>)")
    k.add_argument("--name", help="artifact name (default esco-skills-sesa-esco)")
    k.add_argument("--tiny", action="store_true", help="a tiny run (300 skills, 2 epochs) that checks the code path")
    k.add_argument("--epochs", type=_positive_int)
    k.add_argument("--lr", type=float)
    k.add_argument("--scale", type=float, help="softmax scale of the training logits (default 10)")
    k.add_argument("--anchor", type=float, help="weight of the row-to-zero-shot-row term (default 0.25)")
    k.add_argument("--batch-size", type=_positive_int, dest="batch_size")
    k.add_argument("--top-k", type=_positive_int, dest="top_k", help="concepts kept per text when measuring (default 32)")
    k.add_argument("--max-segments", type=int, dest="max_segments",
                   help="segment pooling of the served space: concepts over the text and up to N of its segments "
                        "(list items, sentences, lines); 0 = the whole text only (default 32)")
    k.add_argument("--segment-kinds", help="which texts pool over their segments: query (default), passage or "
                                           "query,passage")
    k.add_argument("--source-weight", action="append", metavar="SOURCE=W",
                   help="loss weight of one source (label, alias, description, skillskape, occupation: 1; postings, "
                        "the TECH / HOUSE dev sentences, cross-fitted: 10; 0 leaves it out; repeat)")
    k.add_argument("--cache-dir", help="embedding cache (default $SESA_TRAINING_CACHE or $SESA_HOME/training-cache)")
    k.add_argument("--seed", type=int)
    k.add_argument("--quiet", action="store_true", help="no progress bars")
    k.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    k.set_defaults(func=_guarded(cmd_skills))

    r = tsub.add_parser("reranker", help="train the cross-encoder and export it to int8 ONNX")
    common(r)
    r.add_argument("--base", help="HF model dir to start from (default: the built-in all-MiniLM-L6-v2)")
    r.add_argument("--time-budget", type=float, help="training wall-time budget per cycle in seconds (default 1500)")
    r.add_argument("--cycles", type=int, help="training cycles (default 1); each continues the previous one's weights "
                                              "with seed + k, fresh negatives and a new warm-up and decay")
    r.add_argument("--max-steps", type=int)
    r.add_argument("--no-eval", action="store_true", help="train and export only")
    r.add_argument("--architecture", choices=["segment-cosine", "classifier"],
                   help="segment-cosine (default: starts as a dense ranker) or a plain classification head")
    r.add_argument("--freeze-layers", type=int, dest="freeze_layers",
                   help="embeddings + this many lowest layers stay frozen (default 2)")
    r.add_argument("--epochs", type=int, help="epoch cap (the time budget usually ends the run first)")
    r.add_argument("--lr", type=float, help="learning rate of the transformer layers (default 3e-5)")
    r.add_argument("--title-groups", type=int, dest="title_groups",
                   help="self-supervised title -> body groups per epoch (default 300; 0: none)")
    r.add_argument("--ict-groups", type=int, dest="ict_groups",
                   help="self-supervised inverse-cloze sentence -> rest-of-document groups per epoch (default 0: measured no gain)")
    r.add_argument("--esco-groups", type=int, dest="esco_groups",
                   help="self-supervised ESCO occupation groups per epoch (default 300; 0: none)")
    r.add_argument("--no-bf16", action="store_true", dest="no_bf16", help="train in fp32 (bf16 autocast is the default)")
    r.set_defaults(func=_guarded(cmd_reranker))

    e = tsub.add_parser("evaluate", help="re-measure a shipped concept space and/or reranker (no training)")
    e.add_argument("--dataset", required=True, help="BEIR folder; its test split is evaluated")
    e.add_argument("--concepts", help="concept-space artifact dir")
    e.add_argument("--reranker", help="reranker dir (int8 ONNX + tokenizer + manifest)")
    e.add_argument("--eval", action="append", metavar="DIR", help="more BEIR folders (repeat)")
    e.add_argument("--weights", help="min-max fusion weights bm25,dense,concepts (default: the manifest's)")
    e.add_argument("--choose-weights", action="store_true", dest="choose_weights",
                   help="choose the concept weight on the held-out train queries (bm25 = dense), then evaluate")
    e.add_argument("--top-k", type=int, dest="top_k")
    e.add_argument("--depth", type=int, default=50, help="rerank depth (default 50)")
    e.add_argument("--update-manifest", action="store_true", dest="update_manifest",
                   help="with --reranker: re-choose the blend weight on the training run's dev queries (of "
                        "--dataset, at --depth) and write it and the new metrics into the reranker's manifest")
    e.add_argument("--cache-dir")
    e.add_argument("--quiet", action="store_true")
    e.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    e.set_defaults(func=_guarded(cmd_evaluate))

    d = tsub.add_parser("domain", help="give a trained reranker or concept head its domain bank: the embeddings of "
                                       "its training queries and the similarity threshold that tells in-domain "
                                       "queries apart")
    d.add_argument("--model", required=True,
                   help="trained reranker or concept-space dir (manifest.json with the training recipe)")
    d.add_argument("--dataset", required=True, help="the BEIR folder it was trained on (its train split)")
    d.add_argument("--k", type=_positive_int, default=10, help="nearest training queries averaged (default 10)")
    d.add_argument("--percentile", type=float, default=5.0,
                   help="threshold = this percentile of the held-out dev queries' similarity (default 5)")
    d.add_argument("--cache-dir")
    d.add_argument("--quiet", action="store_true")
    d.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    d.set_defaults(func=_guarded(cmd_domain))

    p = tsub.add_parser("report", help="explanation examples and top concept labels for a model card")
    p.add_argument("--concepts", required=True, help="concept-space artifact dir")
    p.add_argument("--dataset", required=True, help="BEIR folder (test queries are only shown, never tuned on)")
    p.add_argument("--cache-dir")
    p.add_argument("--seed", type=int, default=2024)
    p.add_argument("--examples", type=int, default=5)
    p.add_argument("--docs", type=int, default=20)
    p.add_argument("--json")
    p.add_argument("--markdown")
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.set_defaults(func=_guarded(cmd_report))
    return t


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sesa-server")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    args._argv = argv
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
