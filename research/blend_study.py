"""How should a reranker's score be combined with the first stage? Offline study of blend forms.

Each form's weight is chosen on the reranker's own dev queries (the held-out training queries of its
run); the test collections only report the result, so the study cannot tune on them. The reranker
scores each query's top ``depth`` once; every form and weight then reuses those scores.

Forms (``ce`` = cross-encoder logits over the top ``depth``, ``f`` = first-stage scores):

* ``minmax``: ``a * minmax(ce) + (1 - a) * minmax(f)``, what ``sesa_rerank.rerank_weight`` does;
* ``z``:      ``a * z(ce) + (1 - a) * z(f)``;
* ``raw``:    ``minmax(f) + a * ce``, the logit on its own scale, so a query whose logits hardly differ
  moves little;
* ``rrf``:    ``a / (60 + rank(ce)) + (1 - a) / (60 + rank(f))``.

Run: ``python -m research.blend_study --reranker models/sesa-reranker-minilm-l6-scifact
--dataset ../shared/data/scifact --eval ../shared/data/cranfield --eval ../shared/data/adi``
(about 12 minutes on 2 cores: the reranker scores every query once).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from model_building.training.reranker import blend_minmax

BLEND_FORMS = ("minmax", "z", "raw", "rrf")


def _z(x: np.ndarray) -> np.ndarray:
    sd = x.std()
    return (x - x.mean()) / sd if sd > 0 else np.zeros_like(x)


def _ranks(x: np.ndarray) -> np.ndarray:
    r = np.empty(len(x))
    r[np.argsort(-x, kind="stable")] = np.arange(1, len(x) + 1)
    return r


def blend_scores(form: str, a: float, ce: np.ndarray, first: np.ndarray) -> np.ndarray:
    """One query's blended scores (``ce`` and ``first`` aligned, first-stage order).

    ``minmax`` is what ``sesa_rerank.rerank_weight`` serves (``reranker.blend_minmax``); the others were
    studied and not adopted: ``z`` blends z-scores, ``raw`` adds ``a`` times the logit to min-max(first) (a query whose logits
    hardly differ moves little), ``rrf`` blends reciprocal ranks (constant 60).
    """
    from model_building.training.retrieval import min_max_window

    ce, first = np.asarray(ce, dtype=np.float64), np.asarray(first, dtype=np.float64)
    if form == "minmax":
        return blend_minmax(a, ce, first)
    if form == "z":
        return a * _z(ce) + (1 - a) * _z(first)
    if form == "raw":
        return min_max_window(first, 0.0) + a * ce
    if form == "rrf":
        return a / (60 + _ranks(ce)) + (1 - a) / (60 + _ranks(first))
    raise ValueError(f"unknown blend form {form!r}; one of {sorted(BLEND_FORMS)}")


# the weights each form is tried with on dev (the forms: blend_scores above)
FORMS: dict[str, list[float]] = {
    "minmax": [i / 10 for i in range(11)],
    "z": [i / 10 for i in range(11)],
    "raw": [0.0, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0],
    "rrf": [i / 10 for i in range(11)],
}


def logit_stats(raw: dict) -> dict[str, float]:
    """Median over queries of the top logit and of the logits' spread: how confident the reranker looks."""
    tops = [float(np.max(v[1])) for v in raw.values() if len(v[1])]
    sds = [float(np.std(v[1])) for v in raw.values() if len(v[1])]
    return {"top_logit_median": round(float(np.median(tops)), 2) if tops else float("nan"),
            "logit_sd_median": round(float(np.median(sds)), 2) if sds else float("nan")}


def study(sets: dict[str, dict[str, Any]], dev: str, depths: Sequence[int]) -> list[dict[str, Any]]:
    """Per form and depth: the weight best on ``dev`` (ties to the larger) and each set's nDCG@10 change.

    ``sets[name]`` holds ``first`` (query -> (doc indices, scores)), ``raw`` (query -> (indices, logits)
    over the first ``max(depths)``), ``qrels`` and ``doc_ids``.
    """
    from model_building.training.reranker import interpolate
    from model_building.training.retrieval import evaluate

    def ndcg(name: str, run: dict) -> float:
        return evaluate(sets[name]["qrels"], run, sets[name]["doc_ids"])["ndcg@10"]

    base = {n: ndcg(n, {q: (np.asarray(i[:max(depths)]), np.asarray(s[:max(depths)]))
                         for q, (i, s) in v["first"].items()}) for n, v in sets.items()}
    rows = []
    for form, grid in FORMS.items():
        for depth in depths:
            on_dev = {a: ndcg(dev, interpolate(sets[dev]["first"], sets[dev]["raw"], a, depth, partial(blend_scores, form))) for a in grid}
            best = max(grid, key=lambda a: (on_dev[a], a))
            delta = {n: round(ndcg(n, interpolate(v["first"], v["raw"], best, depth, partial(blend_scores, form))) - base[n], 4)
                     for n, v in sets.items() if n != dev}
            rows.append({"form": form, "depth": depth, "weight": best, "dev": round(on_dev[best], 4),
                         "delta_ndcg@10": delta})
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    from model_building.training.data import load_beir
    from model_building.training.embeddings import EmbeddingCache, load_server_encoder
    from model_building.training.reranker import RerankerTrainConfig, load_runtime, rerank_run
    from model_building.training.reranker_pipeline import dev_queries, hybrid_first_stage

    p = argparse.ArgumentParser(prog="python -m research.blend_study", description=__doc__.split("\n")[0])
    p.add_argument("--reranker", required=True, help="reranker dir (with the manifest of its training run)")
    p.add_argument("--dataset", required=True, help="its training dataset (dev queries from its train split)")
    p.add_argument("--eval", action="append", default=[], metavar="DIR", help="test collections (repeat)")
    p.add_argument("--depth", type=int, action="append", help="rerank depths to compare (default 20 and 50)")
    p.add_argument("--cache-dir")
    args = p.parse_args(argv)
    depths = sorted(set(args.depth or [20, 50]))
    manifest = json.loads((Path(args.reranker) / "manifest.json").read_text(encoding="utf-8"))
    cfg = RerankerTrainConfig.from_manifest(manifest)
    cache = EmbeddingCache(load_server_encoder(), args.cache_dir)
    rt = load_runtime(args.reranker, int(manifest.get("max_tokens", 256)))
    sets: dict[str, dict[str, Any]] = {}
    train_ds = load_beir(args.dataset)
    _, dev_q = dev_queries(train_ds, cfg)
    todo = [("dev", train_ds, {q: train_ds.split("train")[q] for q in dev_q})]
    for d in [args.dataset] + list(args.eval):
        ds = train_ds if d == args.dataset else load_beir(d)
        todo.append((f"{ds.name}-{ds.eval_split}", ds, ds.judged(ds.eval_split)))
    for name, ds, qrels in todo:
        qids = sorted(qrels)
        first = hybrid_first_stage(ds, cache, qids)
        _, raw = rerank_run(rt, first, ds.queries, ds.doc_texts, max(depths))
        sets[name] = {"first": first, "raw": raw, "qrels": qrels, "doc_ids": ds.doc_ids}
        print(f"scored {name}: {len(qids)} queries", file=sys.stderr, flush=True)
    for name, v in sets.items():
        print(json.dumps({"set": name, "queries": len(v["qrels"]), **logit_stats(v["raw"])}))
    for row in study(sets, "dev", depths):
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
