"""`sesa tune DATASET_DIR --index NAME`: which signals score on this index, measured on its own judgements.

The rule of every default: an extra signal earns its weight with evidence on the collection it is used on; without
evidence it explains, it does not score. A user with judgements runs `sesa tune`; it

1. holds out the dev queries of the judged training split (``ir.splits``: the split every trained model uses,
   15%, seed 13; never the test split);
2. searches each branch once through the cluster (the pipeline's own BM25, k-NN and concept branches, their top
   ``window`` with raw scores) and fuses the windows offline with the plugin's rules (``ir.fusion``, the test
   oracle of the Java ``sesa_fuse``) for every candidate: min-max, z-score or RRF, BM25's share of the non-concept
   weight, the concept weight;
3. keeps the evidence-free default (the shipped ``sesa_fuse``: BM25 and dense 0.5 / 0.5, concepts 0) unless the
   best candidate beats it on dev at p < 0.05 in a max-statistic paired randomization test (Westfall-Young: the p
   of the best of all candidates, so picking the best of 90 on 121 queries is not mistaken for evidence);
4. asks the cluster once per dev query for the cross-encoder's scores of the chosen fusion's head (the served path:
   the reranker's own domain check still applies) and blends them offline (``ir.fusion.blend_rerank``, the
   reference of ``sesa_rerank``) for every weight; rerank is switched on, with the best weight, only if the best
   weight beats the chosen fusion at p < 0.05 by the same corrected test;
5. writes the choice and the measurements into the index mapping's ``_meta.sesa.evidence.<prefix>``, where the
   pipeline reads it (``--dry-run``: report only). An index without a record runs the evidence-free default.

Why the corrected test: the first version tested the dev winner with a plain paired test. On SciFact it adopted
min-max 0.63 / 0.27 / 0.1 (dev +0.024, p 0.003, the best of 90) which then scored 0.006 *below* the default on the
test queries: the winner of many candidates on 121 queries is partly luck, and the max-statistic test prices that
in.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ir import fusion
from ir.splits import DEV_FRACTION, DEV_SEED, split_dev

from .. import schemas
from ..cluster.errors import SesaError

EVIDENCE_VERSION = 1
SIGNIFICANCE = 0.05
WINDOW = 100  # the pipeline's window_size / knn_k: what each branch contributes to the fusion
BM25_SHARES = (0.3, 0.4, 0.5, 0.6, 0.7)  # BM25's share of the weight the concept branch leaves
CONCEPT_WEIGHTS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3)
TECHNIQUES = fusion.TECHNIQUES
RERANK_WEIGHTS = tuple(round(0.1 * i, 1) for i in range(1, 11))
RERANK_TOP_N = 50  # the pipeline's sesa_rerank.top_n


@dataclass(frozen=True)
class FusionChoice:
    technique: str
    weights: dict[str, float] = field(hash=False)
    rank_constant: int = fusion.DEFAULT_RANK_CONSTANT

    @property
    def label(self) -> str:
        w = self.weights
        return f"{self.technique} bm25={w['bm25']:g} dense={w['dense']:g} concepts={w['concepts']:g}"

    def ext(self) -> dict[str, Any]:
        """As ``ext.sesa.fusion``."""
        return {"technique": self.technique, "weights": dict(self.weights), "rank_constant": self.rank_constant}


def default_choice() -> FusionChoice:
    """What the shipped pipeline fuses with when an index has no record (schemas/opensearch/search-pipeline.json)."""
    fuse = next(p["sesa_fuse"] for p in schemas.load_json("search-pipeline.json")["response_processors"]
                if "sesa_fuse" in p)
    weights = {b: float(fuse["weights"].get(b, 0.0)) for b in fusion.BRANCHES}
    return FusionChoice(fuse.get("technique", "min_max"), weights,
                        int(fuse.get("rank_constant", fusion.DEFAULT_RANK_CONSTANT)))


def candidates() -> list[FusionChoice]:
    """The evidence-free default first (it wins ties), then every technique x BM25 share x concept weight."""
    default = default_choice()
    out = [default]
    for technique in TECHNIQUES:
        for c in CONCEPT_WEIGHTS:
            for share in BM25_SHARES:
                rest = 1.0 - c
                w = {"bm25": round(rest * share, 4), "dense": round(rest * (1 - share), 4), "concepts": c}
                choice = FusionChoice(technique, w)
                if choice.label != default.label:
                    out.append(choice)
    return out


def dev_queries(dataset, split: str, fraction: float, seed: int) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """The held-out queries of ``split`` that have a relevant document (texts, judgements)."""
    if split == "test":
        raise SesaError("sesa tune never tunes on a test split: pass the judged training split (--split train)")
    if split not in dataset.splits():
        raise SesaError(f"{dataset.path} has no qrels/{split}.tsv: tuning needs judged training queries "
                        f"(splits here: {', '.join(dataset.splits()) or 'none'}); without them the pipeline "
                        "runs the evidence-free default")
    texts, qrels = dataset.judged_queries(split)
    _, dev = split_dev(sorted(qrels), fraction, seed)
    if not dev:
        raise SesaError(f"qrels/{split}.tsv leaves no held-out queries at fraction {fraction}")
    return {q: texts[q] for q in dev}, {q: qrels[q] for q in dev}


# --- searching the cluster -------------------------------------------------------------------------------------


REQUEST_TIMEOUT_S = 120  # a reranked search on a busy CPU server takes seconds


def _progress(total: int, desc: str, show: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="q", desc=desc, disable=not show, file=sys.stderr, dynamic_ncols=True)


def branch_windows(client, index: str, queries: Mapping[str, str], window: int = WINDOW,
                   progress: bool = True, branches: Sequence[str] = fusion.BRANCHES
                   ) -> dict[str, dict[str, list[tuple[str, float]]]]:
    """``{branch: {qid: [(doc id, raw score), ...] best first}}``: each of ``branches`` of the pipeline alone."""
    from ..search import run_search

    out: dict[str, dict[str, list[tuple[str, float]]]] = {}
    for branch in branches:
        bar = _progress(len(queries), f"tune {branch}", progress)
        found: dict[str, list[tuple[str, float]]] = {}
        for qid, text in queries.items():
            hits = run_search(client, index, text, mode=branch, size=window, explain=False, source_fields=[],
                              request_timeout=REQUEST_TIMEOUT_S)["hits"]["hits"]
            found[qid] = [(h["_id"], float(h["_score"])) for h in hits]
            bar.update(1)
        bar.close()
        out[branch] = found
    return out


def rerank_heads(client, index: str, queries: Mapping[str, str], choice: FusionChoice, top_n: int = RERANK_TOP_N,
                 progress: bool = True) -> dict[str, list[tuple[str, float | None, float]]]:
    """Per query the head of ``choice``'s fused ranking as ``[(doc id, rerank score or None, fused score)]`` in
    fused order: what ``sesa_rerank`` blends. Asked without the evidence gate (this is where evidence is made) but
    with the reranker's own domain check, so a query the served pipeline would not rerank gets no scores."""
    from ..search import explanation, run_search

    heads: dict[str, list[tuple[str, float | None, float]]] = {}
    bar = _progress(len(queries), "tune rerank", progress)
    for qid, text in queries.items():
        res = run_search(client, index, text, mode="hybrid", size=top_n, fusion=choice.ext(), explain=True,
                         source_fields=[], rerank={"top_n": top_n, "weight": 1.0, "without_evidence": "rerank"},
                         request_timeout=REQUEST_TIMEOUT_S)
        rows = []
        for h in res["hits"]["hits"]:
            e = explanation(h)
            rows.append((h["_id"], e.get("rerank"), float(e.get("fused") or 0.0)))
        heads[qid] = sorted(rows, key=lambda r: -r[2])  # fused order (the response is in rerank order)
        bar.update(1)
    bar.close()
    return heads


# --- choosing offline ----------------------------------------------------------------------------------------


def fused_rankings(windows: Mapping[str, Mapping[str, Sequence[tuple[str, float]]]], choice: FusionChoice,
                   qids: Sequence[str]) -> dict[str, list[str]]:
    out = {}
    for q in qids:
        ranked = fusion.fuse({b: windows[b].get(q, []) for b in fusion.BRANCHES}, choice.technique, choice.weights,
                             choice.rank_constant)
        out[q] = [d.key for d in ranked]
    return out


def reranked(heads: Mapping[str, Sequence[tuple[str, float | None, float]]], rankings: Mapping[str, list[str]],
             weight: float) -> dict[str, list[str]]:
    """Each query's ranking with its head reordered by the blend (a head without rerank scores keeps its order)."""
    out = {}
    for q, ranking in rankings.items():
        head = list(heads.get(q) or [])
        if not head or any(r is None for _, r, _ in head):
            out[q] = ranking
            continue
        order = fusion.rerank_order(weight, [(d, float(r), f) for d, r, f in head])
        seen = set(order)
        out[q] = order + [d for d in ranking if d not in seen]
    return out


def per_query(qrels: Mapping[str, Mapping[str, int]], rankings: Mapping[str, list[str]]) -> dict[str, float]:
    from ir.metrics import evaluate

    return evaluate(qrels, rankings, ("ndcg@10",)).per_query["ndcg@10"]


def _mean(scores: Mapping[str, float]) -> float:
    return sum(scores.values()) / len(scores) if scores else 0.0


def choose(options: Sequence[Any], score: Callable[[Any], dict[str, float]], baseline: dict[str, float]
           ) -> tuple[Any, dict[str, float], dict[str, Any], list[tuple[Any, float]]]:
    """The option with the best mean (the first on ties), its per-query scores, the max-statistic test of it against
    ``baseline`` (corrected for having been picked as the best of ``options``) and the mean of every option."""
    from .significance import max_randomization_test

    scored = [(opt, score(opt)) for opt in options]
    table = [(opt, _mean(s)) for opt, s in scored]
    best, best_scores = scored[0]
    for opt, s in scored[1:]:
        if _mean(s) > _mean(best_scores) + 1e-9:
            best, best_scores = opt, s
    test = max_randomization_test({str(i): s for i, (_, s) in enumerate(scored)}, baseline)
    return best, best_scores, {k: test[k] for k in ("delta", "p_value", "candidates", "queries", "test")}, table


def significant(test: Mapping[str, Any]) -> bool:
    return test["delta"] > 0 and test["p_value"] < SIGNIFICANCE


def tune(client, dataset_dir: str | Path, index: str, *, split: str = "train", fraction: float = DEV_FRACTION,
         seed: int = DEV_SEED, rerank: bool = True, progress: bool = True) -> dict[str, Any]:
    """Measure and choose; returns the report with the ``record`` to write."""
    from ir.beir import Dataset

    ds = Dataset(dataset_dir)
    queries, qrels = dev_queries(ds, split, fraction, seed)
    qids = sorted(queries)
    started = time.time()
    windows = branch_windows(client, index, queries, progress=progress)
    options = candidates()
    default = options[0]
    plain = per_query(qrels, fused_rankings(windows, default, qids))
    best, best_scores, test, table = choose(options, lambda c: per_query(qrels, fused_rankings(windows, c, qids)),
                                            plain)
    chosen = best if best is not default and significant(test) else default
    chosen_scores = best_scores if chosen is best else plain
    report: dict[str, Any] = {
        "dataset": str(ds.path), "index": index, "split": split,
        "dev": {"fraction": fraction, "seed": seed, "queries": len(qids)},
        "rule": f"the best candidate replaces the evidence-free default only if it beats it on the dev queries at "
                f"p < {SIGNIFICANCE} (max-statistic paired randomization over all candidates, one-sided); rerank "
                "likewise against the chosen fusion, over the blend weights",
        "fusion": {"default": default.label, "default_ndcg@10": round(_mean(plain), 4), "best": best.label, "best_ndcg@10": round(_mean(best_scores), 4),
                   "best_vs_default": test, "chosen": chosen.label,
                   "candidates": {c.label: round(m, 4) for c, m in table}},
    }
    rerank_choice: dict[str, Any] = {"enabled": False}
    if rerank:
        heads = rerank_heads(client, index, queries, chosen, progress=progress)
        base = fused_rankings(windows, chosen, qids)
        scored = sum(1 for q in qids if heads.get(q) and all(r is not None for _, r, _ in heads[q]))
        w, w_scores, w_test, w_table = choose(RERANK_WEIGHTS, lambda w: per_query(qrels, reranked(heads, base, w)),
                                              chosen_scores)
        enabled = significant(w_test)
        rerank_choice = {"enabled": enabled, "weight": w} if enabled else {"enabled": False}
        report["rerank"] = {"queries_scored": scored, "fused_ndcg@10": round(_mean(chosen_scores), 4),
                            "best_weight": w, "best_ndcg@10": round(_mean(w_scores), 4), "best_vs_fused": w_test,
                            "enabled": enabled, "by_weight": {str(x): round(m, 4) for x, m in w_table}}
    report["seconds"] = round(time.time() - started, 1)
    report["record"] = {
        "version": EVIDENCE_VERSION,
        "fusion": chosen.ext(),
        "rerank": rerank_choice,
        "measured": {
            "by": "sesa tune", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "dataset": ds.name, "split": split, "dev_queries": len(qids),
            "fusion_ndcg@10": round(_mean(chosen_scores), 4), "default_ndcg@10": round(_mean(plain), 4),
            "fusion_vs_default": test if chosen is best else None,
            "rerank_vs_fusion": report.get("rerank", {}).get("best_vs_fused"),
        },
    }
    return report


# --- the record in the index ---------------------------------------------------------------------------------


def evidence_path(prefix: str) -> tuple[str, str, str]:
    conv = schemas.conventions()
    return conv["index_meta_key"], conv["index_evidence_key"], prefix


def _update_evidence(client, index: str, prefix: str | None, change: Callable[[dict], bool]) -> list[str]:
    """Apply ``change`` to ``_meta.<sesa>.<evidence>`` of every concrete index behind ``index`` and put the whole
    ``_meta`` back (a put mapping replaces all of it, so the rest - the models the ingest guard checks - is kept);
    ``change`` says whether it changed anything. Returns the indices written."""
    meta_key, evidence_key, _ = evidence_path(prefix or schemas.conventions()["default_target_prefix"])
    written = []
    for name, body in client.indices.get_mapping(index=index).items():
        meta = dict((body.get("mappings") or {}).get("_meta") or {})
        sesa = dict(meta.get(meta_key) or {})
        evidence = dict(sesa.get(evidence_key) or {})
        if not change(evidence):
            continue
        sesa[evidence_key] = evidence
        meta[meta_key] = sesa
        client.indices.put_mapping(index=name, body={"_meta": meta})
        written.append(name)
    return written


def write_record(client, index: str, record: Mapping[str, Any], prefix: str | None = None) -> list[str]:
    """Put ``record`` at ``_meta.<sesa>.<evidence>.<prefix>`` of every concrete index behind ``index``."""
    prefix = prefix or schemas.conventions()["default_target_prefix"]
    return _update_evidence(client, index, prefix, lambda evidence: evidence.update({prefix: dict(record)}) is None)


def clear_record(client, index: str, prefix: str | None = None) -> list[str]:
    """Remove the record of ``prefix`` (back to the evidence-free default); the rest of ``_meta`` stays."""
    prefix = prefix or schemas.conventions()["default_target_prefix"]
    return _update_evidence(client, index, prefix, lambda evidence: evidence.pop(prefix, None) is not None)


def read_record(client, index: str, prefix: str | None = None) -> dict[str, Any] | None:
    prefix = prefix or schemas.conventions()["default_target_prefix"]
    meta_key, evidence_key, _ = evidence_path(prefix)
    for body in client.indices.get_mapping(index=index).values():
        meta = (body.get("mappings") or {}).get("_meta") or {}
        record = ((meta.get(meta_key) or {}).get(evidence_key) or {}).get(prefix)
        if record:
            return record
    return None


def _cmd_tune(args: argparse.Namespace) -> int:
    from ..cluster.stack import opensearch_client
    from ..ingest import resolve_cluster_url
    from ..search import cluster_has_reranker
    from .cli import default_index

    client = opensearch_client(resolve_cluster_url(args.cluster))
    index = args.index or default_index(args.dataset)
    if not client.indices.exists(index=index):
        raise SesaError(f"index {index} does not exist: ingest the dataset first (`sesa ingest` or `sesa eval`)")
    if args.clear:
        names = clear_record(client, index, args.target_prefix)
        print(f"evidence removed from {', '.join(names)}" if names else f"{index} carries no evidence record")
        return 0
    rerank = not args.no_rerank and cluster_has_reranker(client)
    report = tune(client, args.dataset, index, split=args.split, fraction=args.dev_fraction, seed=args.dev_seed,
                  rerank=rerank, progress=not args.no_progress)
    f = report["fusion"]
    print(f"dev queries: {report['dev']['queries']} of qrels/{args.split}.tsv (fraction {args.dev_fraction}, "
          f"seed {args.dev_seed})")
    print(f"fusion: default ({f['default']}) {f['default_ndcg@10']:.4f}; best {f['best']} {f['best_ndcg@10']:.4f} "
          f"(Δ {f['best_vs_default']['delta']:+.4f}, p {f['best_vs_default']['p_value']:.4f}) -> {f['chosen']}")
    if "rerank" in report:
        r = report["rerank"]
        print(f"rerank: fused {r['fused_ndcg@10']:.4f}; weight {r['best_weight']} {r['best_ndcg@10']:.4f} "
              f"(Δ {r['best_vs_fused']['delta']:+.4f}, p {r['best_vs_fused']['p_value']:.4f}; "
              f"{r['queries_scored']} of {report['dev']['queries']} queries scored) -> "
              f"{'on' if r['enabled'] else 'off'}")
    else:
        print("rerank: not measured (" + ("--no-rerank" if args.no_rerank else "the server has no reranker") + ")")
    if args.dry_run:
        print("dry run: nothing written; the record would be " + json.dumps(report["record"]))
    else:
        names = write_record(client, index, report["record"], args.target_prefix)
        print(f"written to _meta of {', '.join(names)}: the search pipeline now uses it for this index")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"report: {args.out}")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("tune", help="measure which signals help this index on its judged training queries and "
                                           "record the choice where the search pipeline reads it")
    p.add_argument("dataset", metavar="DATASET_DIR", help="BEIR folder with qrels/<split>.tsv (judged training queries)")
    p.add_argument("--index", help="index to tune (default sesa-<folder name>)")
    p.add_argument("--split", default="train", help="judged split to hold queries out of (default train; never test)")
    p.add_argument("--dev-fraction", type=float, default=DEV_FRACTION,
                   help=f"share of the split held out (default {DEV_FRACTION}: the queries training did not see)")
    p.add_argument("--dev-seed", type=int, default=DEV_SEED, help=f"seed of the held-out split (default {DEV_SEED})")
    p.add_argument("--no-rerank", action="store_true", help="do not measure the reranker (it stays off)")
    p.add_argument("--target-prefix", help="the sesa fields' prefix (default: conventions.json's)")
    p.add_argument("--dry-run", action="store_true", help="measure and report, write nothing")
    p.add_argument("--clear", action="store_true", help="remove the index's record (back to the evidence-free default)")
    p.add_argument("--cluster", metavar="URL", help="OpenSearch URL (default: the node `sesa up` started)")
    p.add_argument("--out", type=Path, help="write the report (JSON) here")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_tune)

