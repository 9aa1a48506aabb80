"""`sesa tune-fusion`: the concept weight of the hybrid fusion, chosen through the real cluster on held-out
TRAIN queries, never on test.

The rule is the one `sesa-server train evaluate --choose-weights` applies offline (one free parameter: BM25 and
dense keep equal weights, the concept branch gets ``w``, ties go to the smaller ``w``), on the same held-out split
that `sesa-server train concepts` keeps for epoch selection (``split_dev`` with the same fraction and seed). Here the
cluster does the searching and fusing (OpenSearch BM25, the plugin's min-max fusion), so the chosen weights are
the ones the deployed stack should use.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Mapping

from ir.splits import DEV_FRACTION, DEV_SEED, split_dev

from ..cluster.errors import SesaError



def concept_weights(w: float) -> dict[str, float]:
    """BM25 = dense, concepts = w."""
    rest = round((1.0 - w) / 2, 6)
    return {"bm25": rest, "dense": rest, "concepts": round(w, 6)}


def pick(scores: Mapping[float, float]) -> float:
    """The best-scoring ``w``; a tie (within 1e-9) goes to the smaller ``w``."""
    if not scores:
        raise ValueError("no scores to pick from")
    best_w, best = None, float("-inf")
    for w in sorted(scores):
        if scores[w] > best + 1e-9:
            best_w, best = w, scores[w]
    return best_w


def grid(step: float, max_weight: float) -> list[float]:
    if not 0 < step <= max_weight <= 1:
        raise ValueError(f"need 0 < step ({step}) <= max weight ({max_weight}) <= 1")
    return [round(i * step, 6) for i in range(int(round(max_weight / step)) + 1)]


def dev_queries(dataset, split: str, fraction: float, seed: int) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """The held-out queries of ``split`` (texts, judgements), as `sesa-server train concepts` split them."""
    if split not in dataset.splits():
        raise SesaError(f"{dataset.path} has no qrels/{split}.tsv: tuning needs judged training queries "
                        f"(splits here: {', '.join(dataset.splits()) or 'none'})")
    qrels = dataset.qrels(split)
    texts = dataset.queries
    judged = sorted(q for q in qrels if q in texts)
    _, dev = split_dev(judged, fraction, seed)
    if not dev:
        raise SesaError(f"qrels/{split}.tsv leaves no held-out queries at fraction {fraction}")
    return {q: texts[q] for q in dev}, {q: qrels[q] for q in dev}


def tune(client, dataset_dir: str | Path, index: str, *, split: str = "train", fraction: float = DEV_FRACTION,
         seed: int = DEV_SEED, step: float = 0.05, max_weight: float = 0.5, progress: bool = True) -> dict[str, Any]:
    from ir import metrics
    from ir.beir import Dataset

    from . import runner

    ds = Dataset(dataset_dir)
    queries, qrels = dev_queries(ds, split, fraction, seed)
    scores: dict[float, float] = {}
    for w in grid(step, max_weight):
        run = runner.run_mode(client, index, "hybrid", queries, size=100, progress=progress,
                              fusion_weights=concept_weights(w))
        if not run.ok:
            raise SesaError(f"hybrid search failed at concept weight {w}: {run.unavailable}")
        scores[w] = round(metrics.evaluate(qrels, run.rankings).mean["ndcg@10"], 4)
    best = pick(scores)
    return {"dataset": str(ds.path), "index": index, "split": split, "held_out": {"fraction": fraction, "seed": seed,
            "queries": len(queries)}, "ndcg@10_by_concept_weight": {str(w): s for w, s in scores.items()},
            "chosen": {"concept_weight": best, "weights": concept_weights(best), "ndcg@10": scores[best]}}


def _cmd_tune(args: argparse.Namespace) -> int:
    from ..cluster.stack import opensearch_client
    from ..ingest import resolve_cluster_url
    from .cli import default_index

    client = opensearch_client(resolve_cluster_url(args.cluster))
    index = args.index or default_index(args.dataset)
    if not client.indices.exists(index=index):
        raise SesaError(f"index {index} does not exist: ingest the dataset first (`sesa eval` or `sesa ingest`)")
    try:
        report = tune(client, args.dataset, index, split=args.split, fraction=args.dev_fraction, seed=args.dev_seed,
                      step=args.step, max_weight=args.max_weight, progress=not args.no_progress)
    except ValueError as exc:
        raise SesaError(str(exc)) from None
    print(f"held-out {args.split} queries: {report['held_out']['queries']} (fraction {args.dev_fraction}, "
          f"seed {args.dev_seed}); hybrid nDCG@10 by concept weight (BM25 = dense):")
    for w, s in report["ndcg@10_by_concept_weight"].items():
        mark = "  <- chosen" if float(w) == report["chosen"]["concept_weight"] else ""
        print(f"  {float(w):.2f}  {s:.4f}{mark}")
    print("ext.sesa / sesa_fuse weights: " + json.dumps(report["chosen"]["weights"]))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"report: {args.out}")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("tune-fusion", help="choose the concept fusion weight on held-out training queries, "
                                                  "through the cluster")
    p.add_argument("dataset", metavar="DATASET_DIR", help="BEIR folder with qrels/<split>.tsv")
    p.add_argument("--index", help="index to search (default sesa-<folder name>)")
    p.add_argument("--split", default="train", help="judged split to hold queries out of (default train)")
    p.add_argument("--dev-fraction", type=float, default=DEV_FRACTION,
                   help=f"share of the split held out (default {DEV_FRACTION}: the queries training did not see)")
    p.add_argument("--dev-seed", type=int, default=DEV_SEED, help=f"seed of the held-out split (default {DEV_SEED})")
    p.add_argument("--step", type=float, default=0.05, help="concept weight grid step (default 0.05)")
    p.add_argument("--max-weight", type=float, default=0.5, help="largest concept weight tried (default 0.5)")
    p.add_argument("--cluster", metavar="URL", help="OpenSearch URL (default: the node `sesa up` started)")
    p.add_argument("--out", type=Path, help="write the report (JSON) here")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_tune)

