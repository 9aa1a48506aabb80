"""Which fusion rule should be the evidence-free default? Measured on the mean of all shared sets (issue 19).

Through the real cluster, each branch of the pipeline (BM25, k-NN, concepts) is searched once per judged query
(its top 100 with raw scores, as the plugin fuses them), and for the "exact" variants once more restricted to the
union of the windows, so every candidate has its exact score in every branch. The rules are then applied offline:

- ``minmax``: the plugin's min-max over each branch's own window (a document a branch did not return counts 0);
- ``minmax_union``: min-max over the union, with the exact score of every candidate in every branch;
- ``rrf``: reciprocal ranks (60) over the windows;
- ``zscore``: the reference's ``z_score``: (s - min) / sd over each window (a missing document counts 0, as the
  window's last);
- ``minmax_conf``: min-max, each branch weighted by its confidence in this query: the mean gap between its top
  score and its 10th, relative to the gap between its top and its last (a flat window - every document alike to
  the branch - gets little weight);

all with BM25 and dense at 0.5 / 0.5 and the concept branch at 0 (the evidence-free default). The rule that wins
on the mean of the sets without losing more than 0.003 on any becomes the default; the table is in the README.

Run (the stack up, each dataset ingested into sesa-<name> by `sesa eval`):
``python -m research.fusion_study ../shared/data/scifact ../shared/data/cranfield ... --out eval-results/fusion-study.json``
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from ir import fusion
from ir.metrics import evaluate

Window = list[tuple[str, float]]
BRANCHES = ("bm25", "dense")
WEIGHTS = {"bm25": 0.5, "dense": 0.5}


def exact_scores(client, index: str, queries: Mapping[str, str], windows: Mapping[str, Mapping[str, Window]]
                 ) -> dict[str, dict[str, dict[str, float]]]:
    """``{branch: {qid: {doc id: raw score}}}`` for every document of the union of the branch windows."""
    from integration.evaluation.tuning import REQUEST_TIMEOUT_S
    from integration.search import run_search

    out: dict[str, dict[str, dict[str, float]]] = {b: {} for b in BRANCHES}
    for qid, text in queries.items():
        union = sorted({d for b in BRANCHES for d, _ in windows[b].get(qid, [])})
        for b in BRANCHES:
            res = run_search(client, index, text, mode=b, size=len(union), explain=False, source_fields=[],
                             filter_query={"ids": {"values": union}}, request_timeout=REQUEST_TIMEOUT_S)
            out[b][qid] = {h["_id"]: float(h["_score"]) for h in res["hits"]["hits"]}
    return out


def _minmax(scores: Sequence[float]) -> list[float]:
    return fusion.min_max(list(scores), fusion.DEFAULT_MIN_RANGE)


def rule_minmax(w: Mapping[str, Window], _exact) -> list[str]:
    return [d.key for d in fusion.fuse({b: w[b] for b in BRANCHES}, "min_max", WEIGHTS)]


def rule_rrf(w: Mapping[str, Window], _exact) -> list[str]:
    return [d.key for d in fusion.fuse({b: w[b] for b in BRANCHES}, "rrf", WEIGHTS)]


def _combine(per_branch: Mapping[str, Mapping[str, float]], weights: Mapping[str, float]) -> list[str]:
    docs = set().union(*[set(v) for v in per_branch.values()])
    total = sum(weights.values()) or 1.0
    score = {d: sum(weights[b] * per_branch[b].get(d, 0.0) for b in per_branch) / total for d in docs}
    return sorted(docs, key=lambda d: (-score[d], d))


def rule_minmax_union(w: Mapping[str, Window], exact: Mapping[str, Mapping[str, float]]) -> list[str]:
    per = {}
    for b in BRANCHES:
        items = sorted(exact[b].items())
        norm = _minmax([s for _, s in items]) if items else []
        per[b] = dict(zip([d for d, _ in items], norm))
    return _combine(per, WEIGHTS)


def rule_zscore(w: Mapping[str, Window], _exact) -> list[str]:
    return [d.key for d in fusion.fuse({b: w[b] for b in BRANCHES}, "z_score", WEIGHTS)]


def confidence(window: Window, k: int = 10) -> float:
    """How much the branch separates its top from the rest: (s1 - s_k) / (s1 - s_last), in [0, 1]."""
    s = [x for _, x in window]
    if len(s) < 2 or s[0] == s[-1]:
        return 0.0
    return (s[0] - s[min(k, len(s)) - 1]) / (s[0] - s[-1])


def rule_minmax_conf(w: Mapping[str, Window], _exact) -> list[str]:
    conf = {b: confidence(w[b]) for b in BRANCHES}
    if sum(conf.values()) <= 0:
        return rule_minmax(w, _exact)
    weights = {b: WEIGHTS[b] * (0.5 + conf[b]) for b in BRANCHES}  # never below half the base weight
    return [d.key for d in fusion.fuse({b: w[b] for b in BRANCHES}, "min_max", weights)]


RULES = {"minmax": rule_minmax, "minmax_union": rule_minmax_union, "rrf": rule_rrf, "zscore": rule_zscore,
         "minmax_conf": rule_minmax_conf}


def study(client, dataset_dir: str, split: str, index: str, progress: bool) -> dict:
    from integration.evaluation.tuning import branch_windows
    from ir.beir import Dataset

    ds = Dataset(dataset_dir)
    texts, qrels = ds.judged_queries(split)
    windows = branch_windows(client, index, texts, progress=progress)
    exact = exact_scores(client, index, texts, windows)
    out = {"dataset": ds.name, "split": split, "queries": len(texts)}
    bm25 = evaluate(qrels, {q: [d for d, _ in windows["bm25"][q]] for q in texts}, ("ndcg@10",)).mean["ndcg@10"]
    out["bm25"] = round(bm25, 4)
    for name, rule in RULES.items():
        rankings = {q: rule({b: windows[b].get(q, []) for b in fusion.BRANCHES},
                            {b: exact[b].get(q, {}) for b in BRANCHES}) for q in texts}
        out[name] = round(evaluate(qrels, rankings, ("ndcg@10",)).mean["ndcg@10"], 4)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m research.fusion_study", description=__doc__.split("\n")[0])
    p.add_argument("datasets", nargs="+", help="BEIR folders, each ingested into sesa-<name> (DIR[:split])")
    p.add_argument("--out", type=Path)
    p.add_argument("--cluster")
    args = p.parse_args(argv)
    from integration.cluster.stack import opensearch_client
    from integration.evaluation.cli import default_index
    from integration.ingest import resolve_cluster_url

    client = opensearch_client(resolve_cluster_url(args.cluster))
    rows = []
    for spec in args.datasets:
        path, _, split = spec.partition(":")
        row = study(client, path, split or "test", default_index(path), progress=sys.stderr.isatty())
        print(json.dumps(row), flush=True)
        rows.append(row)
    names = list(RULES)
    mean = {n: round(sum(r[n] for r in rows) / len(rows), 4) for n in names + ["bm25"]}
    gain = {n: round(sum(r[n] / r["bm25"] - 1 for r in rows) / len(rows), 4) for n in names}
    worst = {n: round(min(r[n] - r["minmax"] for r in rows), 4) for n in names}
    summary = {"mean_ndcg@10": mean, "mean_gain_over_bm25": gain, "worst_delta_vs_minmax": worst}
    print(json.dumps(summary))
    if args.out:
        args.out.write_text(json.dumps({"rows": rows, "summary": summary}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
